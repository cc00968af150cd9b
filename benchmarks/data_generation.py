"""Time and peak memory of generating the full dSprites (.npz) and Shapes3D (.h5) files.

    python benchmarks/data_generation.py [--out DIR] [--datasets dsprites shapes3d] [--max-images N]

Each dataset is generated in its own child process (``weakdis data generate``) so that its peak
resident memory is measured alone (os.wait4's ru_maxrss). Prints one line per dataset: seconds
(wall and CPU), peak memory and the file size. Files go to a temporary directory unless --out.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUFFIX = {"dsprites": ".npz", "shapes3d": ".h5"}


def measure(dataset: str, out_dir: Path, max_images: int | None) -> dict:
    out = out_dir / f"{dataset}-benchmark{SUFFIX[dataset]}"
    command = [sys.executable, "-m", "search.cli", "data", "generate", dataset, "--out", str(out)]
    if max_images:
        command += ["--max-images", str(max_images)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"generating {dataset} failed: {' '.join(command)}")
    return {
        "dataset": dataset,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,      # Linux reports KiB
        "file_mb": out.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temp dir)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(SUFFIX), default=["dsprites", "shapes3d"])
    parser.add_argument("--max-images", type=int, default=None, help="generate a subset (default: full size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out or Path(scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
        for dataset in args.datasets:
            r = measure(dataset, out_dir, args.max_images)
            print(f"{r['dataset']:<9} {r['seconds']:7.1f} s wall  {r['cpu_seconds']:7.1f} s cpu  "
                  f"peak {r['peak_mb']:7.0f} MB  file {r['file_mb']:8.1f} MB")


if __name__ == "__main__":
    main()
