"""One line per trial directory under OUTDIR (what benchmarks/gpu_check.sh wrote): its last evaluation.

    python benchmarks/gpu_check_results.py OUTDIR
"""
from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

COLUMNS = [("step", "step", "{:.0f}"), ("train_seconds", "train s", "{:.0f}"), ("recon_error", "recon", "{:.4f}"),
           ("dci", "DCI", "{:.3f}"), ("mig", "MIG", "{:.3f}"), ("sap", "SAP", "{:.3f}"),
           ("clustering_accuracy_a0", "clust a0", "{:.3f}"), ("accepted_ratio_a0.5", "acc a0.5", "{:.3f}"),
           ("accepted_ratio_a0.9", "acc a0.9", "{:.3f}"), ("relation_accuracy_d1_a0", "rel d1", "{:.3f}"),
           ("relation_accuracy_d10_a0", "rel d10", "{:.3f}")]


def last_evaluation(run: Path) -> tuple[dict, str]:
    """metrics.json of a finished trial, else the last history.csv row of one running or stopped."""
    if (run / "metrics.json").is_file():
        return json.loads((run / "metrics.json").read_text()), ""
    if (run / "history.csv").is_file():
        with open(run / "history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)}, "  (no metrics.json: running, or stopped)"
    return {}, f"  no evaluation (see {run.name}.log)"


def row(run: Path) -> str:
    metrics, remark = last_evaluation(run)
    cells = []
    for key, _, fmt in COLUMNS:
        value = metrics.get(key)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        cells.append(f"{'-' if missing else fmt.format(value):>9}")
    return f"{run.name:<14}" + "".join(cells) + remark


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    print(f"{'trial':<14}" + "".join(f"{label:>9}" for _, label, _ in COLUMNS))
    for run in sorted(p for p in out.iterdir() if p.is_dir()):
        print(row(run))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
