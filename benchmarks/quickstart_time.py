"""Wall time of the README's quickstart, run as written: `weakdis sweep` (six trials on an embedded
local Ray, generated dSprites), in a fresh directory with an empty data cache, as a new user runs it.

    python benchmarks/quickstart_time.py [--num-samples N] [--keep DIR]

Prints the command, the machine's CPU count and load average before the run, the wall time (data
generation included), and each trial's status. The README promises "a few minutes on 2 CPU cores";
tests/test_search_quickstart.py runs the same command for its results, not its time.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_sweep_command() -> str:
    """The `weakdis sweep ...` part of the README's quickstart-command block."""
    # .ci/readme-block is what CI reads the README's blocks with
    block = subprocess.run([str(ROOT / ".ci" / "readme-block"), "quickstart-command"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    if not block:
        raise SystemExit("README.md has no quickstart-command block")
    command = block.split("&&")[-1].strip()
    if not command.startswith("weakdis sweep"):
        raise SystemExit(f"the README's quickstart ends in {command!r}, not a `weakdis sweep` command")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=None, help="append --num-samples N (default: as written)")
    parser.add_argument("--keep", type=Path, default=None, help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    command = readme_sweep_command()
    if args.num_samples is not None:
        command += f" --num-samples {args.num_samples}"
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="weakdis-quickstart-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WEAKDIS_DATA": str(workdir / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"command: {command}\ncpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} dir={workdir}", flush=True)
    started = time.perf_counter()
    with open(workdir / "quickstart.log", "w") as log:
        returncode = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    print(f"wall time {seconds:.0f} s ({seconds / 60:.1f} min), exit status {returncode}")
    results = sorted((workdir / "runs").glob("quickstart-*/results.parquet"))
    if results:
        import pandas as pd

        frame = pd.read_parquet(results[-1])
        print(frame[["model", "status", "step", "recon_error", "dci"]].to_string(index=False))
    else:
        print(f"no results.parquet; see {workdir / 'quickstart.log'}")
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
