"""Timings of the metrics at the study's sizes, and the agreement of the fast DCI with the exact one.

    python benchmarks/metrics_speed.py                     # dSprites grid, 10,000 / 5,000 points
    python benchmarks/metrics_speed.py --skip-exact        # fast metrics only (seconds)
    python benchmarks/metrics_speed.py --grid shapes3d --kinds disentangled mixed

Prints one row per synthetic representation (see analysis.metrics.synthetic): seconds for the
exact and the fast DCI (factors in parallel over --n-jobs processes), their D / C / I and the
largest absolute difference, then MIG, SAP and modularity timings.
"""
from __future__ import annotations

import argparse
import time


from analysis.metrics import dci, mig, modularity_explicitness, sap
from analysis.metrics.synthetic import (
    DSPRITES_FACTOR_SIZES,
    SHAPES3D_FACTOR_SIZES,
    SYNTHETIC_KINDS,
    synthetic_codes,
)

GRIDS = {"dsprites": DSPRITES_FACTOR_SIZES, "shapes3d": SHAPES3D_FACTOR_SIZES}
DCI_KEYS = ("disentanglement", "completeness", "informativeness_test")


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="dsprites")
    parser.add_argument("--kinds", nargs="+", choices=SYNTHETIC_KINDS, default=list(SYNTHETIC_KINDS))
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-exact", action="store_true", help="time the fast metrics only")
    args = parser.parse_args(argv)

    sizes = GRIDS[args.grid]
    print(f"grid {args.grid} {sizes}, {args.num_train} train / {args.num_test} test points, n_jobs={args.n_jobs}")
    header = f"{'codes':<14}{'method':<7}{'seconds':>9}" + "".join(f"{k[:15]:>17}" for k in DCI_KEYS)
    print(header)
    worst = 0.0
    for kind in args.kinds:
        codes, factors = synthetic_codes(kind, sizes, args.num_train + args.num_test, random_state=args.seed)
        split = (codes[: args.num_train], factors[: args.num_train], codes[args.num_train :], factors[args.num_train :])
        methods = ["fast"] if args.skip_exact else ["fast", "exact"]
        scores = {}
        for method in methods:
            scores[method], seconds = timed(dci, *split, random_state=args.seed, method=method, n_jobs=args.n_jobs)
            print(f"{kind:<14}{method:<7}{seconds:>9.1f}" + "".join(f"{scores[method][k]:>17.4f}" for k in DCI_KEYS), flush=True)
        if "exact" in scores:
            difference = max(abs(scores["fast"][k] - scores["exact"][k]) for k in DCI_KEYS)
            worst = max(worst, difference)
            print(f"{kind:<14}{'|diff|':<7}{'':>9}" + "".join(
                f"{abs(scores['fast'][k] - scores['exact'][k]):>17.4f}" for k in DCI_KEYS))
    if not args.skip_exact:
        print(f"largest |fast - exact| over D, C, I: {worst:.4f}")

    codes, factors = synthetic_codes("mixed", sizes, args.num_train + args.num_test, random_state=args.seed)
    split = (codes[: args.num_train], factors[: args.num_train], codes[args.num_train :], factors[args.num_train :])
    _, seconds = timed(mig, split[0], split[1], random_state=0)
    print(f"mig {seconds:.2f} s", flush=True)
    _, seconds = timed(sap, *split, random_state=0, n_jobs=args.n_jobs)
    print(f"sap {seconds:.2f} s", flush=True)
    _, seconds = timed(modularity_explicitness, *split, random_state=0)
    print(f"modularity_explicitness {seconds:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
