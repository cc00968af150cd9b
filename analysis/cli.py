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
    from analysis.report import UDR_FILE, analyze, udr_sentence

    formats = tuple(part.strip().lower() for part in args.formats.split(",") if part.strip())
    allowed = {"png", "pdf", "svg"}
    if not formats or not set(formats) <= allowed:
        raise ValueError(f"--formats {args.formats!r} is invalid; expected a comma-separated subset of png, pdf, svg")
    from trainables.logs import is_quiet

    quiet = is_quiet()
    output = analyze(args.run_dirs, args.out, images=not args.no_images, formats=formats, udr=not args.no_udr,
                     log=None if quiet else (lambda message: print(message, flush=True)))
    counts = ", ".join(f"{count} {status}" for status, count in output.status_counts.items() if count)
    print(f"trials: {counts}")
    for note in output.missing:
        print(f"missing: {note}", file=sys.stderr)
    if output.udr is not None:
        print(f"UDR ranking beside DCI's ({output.out_dir / UDR_FILE}):")
        print(output.udr.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
        print(f"udr: {udr_sentence(output.udr_correlations)}")
    print(f"report: {output.report}")
    return 0


