"""``weakdis data {generate,download,info}``: make, fetch and inspect dataset files."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from trainables.errors import WeakdisError

DATASETS = ("dsprites", "shapes3d")
DIGITS = ("rotdigits", "colordigits")
GENERATED = DATASETS + ("hwf",) + DIGITS


EPILOG = """\
examples:
  weakdis data generate dsprites --out dsprites.npz            all 737,280 sprites, official .npz layout
  weakdis data generate shapes3d --out 3dshapes.h5             all 480,000 scenes, official .h5 layout
  weakdis data generate shapes3d --out s.h5 --version v3 --max-images 20000 --seed 0
  weakdis data download shapes3d --dir ~/data                  the official file, resumable, checksummed
  weakdis data info 3dshapes.h5                                validate and summarise a file
  weakdis data generate hwf --out hwf                          an HWF-layout folder from sklearn's digits
  weakdis data info hwf                                        an HWF folder (generated or the release)
  weakdis data generate rotdigits --out mnist                  MNIST IDX files of the digits rotdigits / colordigits use
  weakdis data info mnist                                      a folder of MNIST IDX files (generated or real)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="data_command", metavar="{generate,download,info}")
    actions.required = True

    generate = actions.add_parser(
        "generate", help="render a dataset file in the official format",
        description="Render dSprites (.npz) or Shapes3D (.h5) procedurally, in the official layout; "
                    "write an HWF-layout folder, or for rotdigits / colordigits the four MNIST IDX files of "
                    "scikit-learn's digits upscaled to 28x28 (exactly what those versions use without "
                    "data_path). Progress: a bar on a terminal, a line every 10 s otherwise (stderr).",
        formatter_class=formatter,
        epilog="examples:\n  weakdis data generate dsprites --out dsprites.npz\n"
               "  weakdis data generate shapes3d --out 3dshapes.h5 --version v3 --max-images 20000\n"
               "  weakdis data generate rotdigits --out mnist --gzip\n",
    )
    generate.add_argument("dataset", choices=GENERATED)
    generate.add_argument("--out", required=True, type=Path,
                          help="file to write (replaced atomically); for hwf, rotdigits, colordigits a new folder")
    generate.add_argument("--version", default=None,
                          help="only the rows this version needs, e.g. v2 or dsprites:v2 (default: all rows)")
    generate.add_argument("--max-images", type=int, default=None,
                          help="a seeded random subset of this many rows, kept in official order")
    generate.add_argument("--seed", type=int, default=0, help="seed of the row subset (default 0)")
    generate.add_argument("--gzip", action="store_true", help="rotdigits / colordigits: write .gz IDX files")

    download = actions.add_parser(
        "download", help="fetch the official file (resumable, checksum-verified)",
        description="Fetch the official dSprites / Shapes3D file, resuming a partial download.",
        formatter_class=formatter,
        epilog="examples:\n  weakdis data download shapes3d --dir ~/data\n"
               "  weakdis data download dsprites --dir ~/data --url https://mirror.example/dsprites.npz\n",
    )
    download.add_argument("dataset", choices=DATASETS)
    download.add_argument("--dir", required=True, type=Path, help="directory to put the file in")
    download.add_argument("--url", default=None, help="a mirror to fetch from instead of the official URL")
    download.add_argument("--sha256", default=None, help="expected sha256 (default: the published checksum)")

    info = actions.add_parser("info", help="validate a dataset file and summarise it",
                              description="Validate a dSprites .npz / Shapes3D .h5 file, an HWF folder or a folder "
                                          "of MNIST IDX files and print a summary.",
                              formatter_class=formatter,
                              epilog="examples:\n  weakdis data info 3dshapes.h5\n"
                                     "  weakdis data info dsprites.npz --quick\n"
                                     "  weakdis data info mnist\n")
    info.add_argument("path", type=Path, help="a .npz / .h5 file, an HWF folder or a folder of MNIST IDX files")
    info.add_argument("--quick", action="store_true", help="check labels and layout only, not every image")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "generate":
        return _generate(args)
    if args.data_command == "download":
        from trainables.data.download import download
        from trainables.logs import is_quiet

        path = download(args.dataset, args.dir, url=args.url, sha256=args.sha256,
                        progress=None if is_quiet() else "stderr")
        print(path)
        return 0
    if args.path.is_dir():
        from trainables.data.digits import describe_mnist_folder, is_mnist_folder
        from trainables.data.hwf import SYMBOLS_DIR, describe_folder

        if is_mnist_folder(args.path):
            print(describe_mnist_folder(args.path))
            return 0
        if not (args.path / SYMBOLS_DIR).is_dir():
            raise WeakdisError(f"{args.path}: neither an HWF folder (no {SYMBOLS_DIR}/) nor MNIST IDX files (no "
                               "train-images-idx3-ubyte[.gz]); expected one of them")

        print(describe_folder(args.path))
        return 0
    print(describe_file(args.path, check_images=not args.quick))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from trainables.data.generate import generate_file
    from trainables.logs import is_quiet
    from trainables.progress import WorkProgress

    started = time.perf_counter()
    quiet = is_quiet()
    if args.gzip and args.dataset not in DIGITS:
        raise WeakdisError(f"--gzip applies to rotdigits / colordigits only, not {args.dataset}")
    if args.dataset == "hwf":
        from trainables.data.hwf import generate_hwf

        if args.version is not None or args.max_images is not None:
            raise WeakdisError("--version / --max-images do not apply to hwf; expected only --out and --seed "
                               "(a version selects its symbols when the folder is loaded)")
        path = generate_hwf(args.out, seed=args.seed)
        if not quiet:
            print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
        return 0
    if args.dataset in DIGITS:
        from trainables.data.digits import generate_mnist_files

        if args.version is not None or args.max_images is not None or args.seed != 0:
            raise WeakdisError(f"--version / --max-images / --seed do not apply to {args.dataset}; expected only "
                               "--out (and --gzip): the files hold every scikit-learn digit, and rotations and "
                               "colours are drawn from the trial's seed when the folder is loaded")
        path = generate_mnist_files(args.out, compress=args.gzip)
        if not quiet:
            print(f"wrote {path} (MNIST IDX files of the {args.dataset} digits; train with --set data_path={path}) "
                  f"in {time.perf_counter() - started:.1f} s")
        return 0
    progress = (lambda done, total: None) if quiet else WorkProgress(f"generating {args.dataset}", stream=sys.stderr)
    try:
        path = generate_file(args.dataset, args.out, version=args.version, max_images=args.max_images,
                             seed=args.seed, progress=progress)
    finally:
        if not quiet:
            progress.close()
    if not quiet:
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    return 0


def describe_file(path: str | Path, *, check_images: bool = True) -> str:
    """Validate a dataset file (layout, labels, optionally every image) and summarise it."""
    from trainables.data.formats import iter_image_chunks, read_labels
    from trainables.data.versions import VERSIONS

    path = Path(path)
    contents = read_labels(path)
    layout = contents.layout
    lines = [
        f"file:     {path} ({path.stat().st_size / 1e6:.1f} MB)",
        f"dataset:  {layout.name} ({'npz' if layout.name == 'dsprites' else 'HDF5'}; keys: {', '.join(contents.keys)})",
    ]
    image_text = f"{contents.num_rows} x {contents.image_shape[1:]} {contents.image_dtype}"
    if check_images:
        low, high = 255, 0
        for chunk in iter_image_chunks(contents):
            low, high = min(low, int(chunk.min())), max(high, int(chunk.max()))
        if layout.name == "dsprites" and high > 1:
            raise WeakdisError(f"{path}: 'imgs' holds the value {high}; expected dSprites pixels in {{0, 1}}")
        image_text += f", pixel values {low}..{high} (every image read)"
    lines.append(f"images:   {image_text}")
    unique_rows = len(np.unique(layout.row_index(contents.classes)))
    grid = "the complete factor grid" if unique_rows == layout.num_images else "a subset of the factor grid"
    lines.append(f"rows:     {unique_rows} distinct of the official {layout.num_images} ({grid})")
    lines.append("factors:  name          size  present  values")
    for k, factor in enumerate(layout.factors):
        present = len(np.unique(contents.classes[:, k]))
        values = ", ".join(f"{v:.4g}" for v in factor.values) if factor.size <= 10 else (
            f"{factor.values[0]:.4g}, {factor.values[1]:.4g}, ..., {factor.values[-1]:.4g} (evenly spaced)"
        )
        names = f" ({', '.join(factor.value_names)})" if factor.value_names else ""
        lines.append(f"          {factor.name:<13} {factor.size:>4}  {present:>7}  {values}{names}")
    lines.append("versions:")
    for name, spec in VERSIONS.items():
        if spec.dataset != layout.name:
            continue
        keep, factors = spec.select(contents.classes)
        combos = len(np.unique(spec.combination_index(factors))) if len(factors) else 0
        lines.append(f"          {name:<16} {int(keep.sum()):>7} images, {combos}/{spec.num_combinations} combinations")
    return "\n".join(lines)
