"""``weakdis analyze RUN_DIR [RUN_DIR ...] [--out DIR]``: figures, frontier, tables and report.html."""
from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  weakdis analyze runs/quickstart-20261123-101500          writes runs/quickstart-.../analysis/report.html
  weakdis analyze runs/a runs/b --out comparison           several runs, with a `run` column
  weakdis analyze runs/try1 --no-images --formats png      quicker: no image grids, PNG only
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a sweep's run directory (<storage>/<name>); several are combined with a `run` column")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write (default: RUN_DIR/analysis for one run, ./weakdis-out/analysis for several)")
    parser.add_argument("--no-images", action="store_true",
                        help="skip the image grids decoded from the best checkpoints (faster; no dataset needed)")
    parser.add_argument("--formats", default="png,pdf", metavar="LIST",
                        help="figure file formats, comma-separated (default: png,pdf)")
    parser.add_argument("--no-udr", action="store_true",
                        help="skip UDR (Duan et al.): the unsupervised ranking of trials that differ only in seed, "
                             "which encodes test images with every checkpoint")


def run(args: argparse.Namespace) -> int:
    from analysis.report import analyze

    formats = tuple(part.strip().lower() for part in args.formats.split(",") if part.strip())
    allowed = {"png", "pdf", "svg"}
    if not formats or not set(formats) <= allowed:
        raise ValueError(f"--formats {args.formats!r} is invalid; expected a comma-separated subset of png, pdf, svg")
    from trainables.logs import is_quiet

    quiet = is_quiet()
    output = analyze(args.run_dirs, args.out, images=not args.no_images, formats=formats,
                     log=None if quiet else (lambda message: print(message, flush=True)))
    counts = ", ".join(f"{count} {status}" for status, count in output.status_counts.items() if count)
    print(f"trials: {counts}")
    for note in output.missing:
        print(f"missing: {note}", file=sys.stderr)
    print(f"report: {output.report}")
    if not args.no_udr:
        _report_udr(args.run_dirs, output.out_dir, formats)
    return 0


def _report_udr(run_dirs: list[str], out_dir, formats: tuple[str, ...]) -> None:
    """Print UDR's ranking beside DCI's and their Spearman correlation; write udr.csv and the plot."""
    from analysis.plots import MissingDataError, save_figure, udr_vs_metric
    from analysis.results import load_results
    from analysis.udr import hyperparameter_groups, udr, udr_vs_metric as correlation

    import pandas as pd

    from weakdis.errors import WeakdisError

    results = pd.concat([load_results(run_dir) for run_dir in run_dirs], ignore_index=True)
    if not {"status", "checkpoint", "dci"} <= set(results.columns):
        print("udr: skipped (the results have no status, checkpoint or dci column)")
        return
    finished = results[results["status"].isin(["finished", "stopped_early"]) & results["checkpoint"].notna()]
    if finished.empty or hyperparameter_groups(finished).value_counts().max() < 2:
        print("udr: skipped (no two finished trials share hyperparameters and differ only in seed)")
        return
    try:
        scores = udr(finished)
    except (WeakdisError, OSError) as error:
        print(f"missing: UDR ({error})", file=sys.stderr)
        return
    table = finished[["trial_id", "model", "seed", "dci"]].merge(scores, on="trial_id")
    table["dci_rank"] = table["dci"].rank(ascending=False, method="min")
    table = table.sort_values("udr_rank")
    table.drop(columns="group").to_csv(out_dir / "udr.csv", index=False)
    print("UDR ranking beside DCI's (udr.csv):")
    print(table[["trial_id", "model", "seed", "udr", "udr_rank", "dci", "dci_rank"]].to_string(index=False))
    stats = correlation(finished, scores, "dci")
    print(f"udr: Spearman correlation of UDR and DCI over {int(stats['trials'])} trials: {stats['spearman']:.3f}")
    try:
        fig = udr_vs_metric(finished, scores, "dci")
    except MissingDataError as error:
        print(f"missing: UDR vs DCI plot ({error})", file=sys.stderr)
        return
    save_figure(fig, str(out_dir / "udr_vs_dci"), formats)
