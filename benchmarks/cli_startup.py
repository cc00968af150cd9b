"""Start-up time of the command line: `weakdis --help`, `weakdis sweep --list`, `weakdis train --help`.

    python benchmarks/cli_startup.py [--repeat 5]

Each command runs in a fresh process (as a user types it); prints the median and the best wall time
of each, and which heavy modules the top-level help imported (none is the goal: torch and Ray are
imported only by the subcommand that runs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WEAKDIS = str(Path(sys.executable).parent / "weakdis")
COMMANDS = (["--help"], ["sweep", "--list"], ["train", "--help"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
    for argv in COMMANDS:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run([WEAKDIS, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - started)
        print(f"weakdis {' '.join(argv):<16} median {statistics.median(times):6.2f} s  best {min(times):6.2f} s")
    probe = ("import sys\nfrom search.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
             "print(sorted(m for m in ('torch', 'ray', 'optuna', 'numpy', 'pandas') if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"heavy modules imported by `weakdis --help`: {heavy}")


if __name__ == "__main__":
    main()
