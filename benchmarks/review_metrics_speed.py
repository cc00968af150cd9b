"""Seconds of each of the metrics review's twelve metrics (``analysis.metrics.review``) on one set of points.

    python benchmarks/review_metrics_speed.py                      # 10,000 points, shapes3d:v3's grid
    python benchmarks/review_metrics_speed.py --kinds disentangled entangled --num-points 5000
    python benchmarks/review_metrics_speed.py --grid five --n-jobs 2   # five factors, both cores

Prints, per synthetic representation (analysis.metrics.synthetic), each metric's value, wall seconds
and CPU seconds of this process (its threads included) and the totals; the issue's target is all
twelve on 10,000 points in under 30 s on 2 cores.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.metrics import review
from analysis.metrics.synthetic import DSPRITES_FACTOR_SIZES, SHAPES3D_FACTOR_SIZES, synthetic_codes

# The default is a version's grid; "five" is the five-factor case of benchmarks/RESULTS.md. On the full
# dSprites / Shapes3D grids Z-max variance fixes the position-like factors to one of num_bins bins.
GRIDS = {"shapes3d-v3": (10, 4, 3), "dsprites-v3": (3, 3, 3, 5), "five": (3, 6, 10, 8, 5),
         "dsprites": DSPRITES_FACTOR_SIZES, "shapes3d": SHAPES3D_FACTOR_SIZES}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="shapes3d-v3")
    parser.add_argument("--kinds", nargs="+", default=["disentangled", "entangled"])
    parser.add_argument("--num-points", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="threads for the metrics that take n_jobs (sap, dci_random_forest); numbers unchanged")
    args = parser.parse_args(argv)
    sizes = GRIDS[args.grid]
    print(f"grid {args.grid} {sizes}, {args.num_points} points")
    for kind in args.kinds:
        codes, factors = synthetic_codes(kind, sizes, args.num_points, random_state=args.seed)
        total = cpu_total = 0.0
        for name in review.REVIEW_METRICS:
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                extra = {"n_jobs": args.n_jobs} if name in ("sap", "dci_random_forest") else {}
                value = getattr(review, name)(codes, factors, random_state=args.seed, **extra)
            except ValueError as error:
                print(f"{kind:<14}{name:<20}  ValueError: {error}")
                continue
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            total += seconds
            cpu_total += cpu
            if isinstance(value, dict):
                value = np.mean(list(value.values()))
            print(f"{kind:<14}{name:<20}{value:>9.4f}{seconds:>9.2f} s{cpu:>9.2f} s CPU")
        print(f"{kind:<14}{'all twelve':<20}{'':>9}{total:>9.2f} s{cpu_total:>9.2f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
