"""Hand-Written Formulas (HWF, Li et al. 2020): the single symbols of the release, or a generated stand-in.

The release is a folder holding ``Handwritten_Math_Symbols/<symbol>/*.jpg`` (45x45 grayscale, dark
ink on a light background) beside ``expr_train.json`` / ``expr_test.json``; only the single-symbol
images are read. Symbol folders are the digits ``0``..``9``, ``+``, ``-`` and ``times`` (``div`` is
in the release but is no value of any version, so it is skipped).

Without the release, :func:`generate_hwf` writes a folder in that layout from scikit-learn's bundled
handwritten digits (``load_digits``: 1,797 8x8 images by 43 writers), upscaled and drawn in a
writer-like style (stroke width, slant, size), plus +, - and x drawn as wobbly pen strokes in the same
styles; each symbol is cropped to its bounding box, scaled to fill most of the frame and centred, as
the release's symbols are. Images are held inverted (ink = 255) so that noise and the decoder see ink on black,
like dSprites.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from trainables.errors import WeakdisError

SYMBOLS_DIR = "Handwritten_Math_Symbols"
EXPR_FILES = ("expr_train.json", "expr_test.json")
SYMBOLS: tuple[str, ...] = tuple("0123456789") + ("+", "-", "times")
SKIPPED_SYMBOLS = ("div",)
IMAGE_SIZE = 45
RENDERINGS = 3             # each load_digits image drawn in this many writer styles
OPERATOR_IMAGES = 540      # per operator, about as many as each digit has (180 x RENDERINGS)
# part of the cache folder's name: a change to the generated images must not reuse an older cache
GENERATOR_VERSION = "v2"


def _pil():
    # pillow is installed as a dependency of matplotlib; it reads and writes the release's JPEGs
    from PIL import Image

    return Image


# --------------------------------------------------------------------------------------- reading


def check_folder(root: str | os.PathLike) -> Path:
    """The symbols folder of an HWF release at ``root``; WeakdisError naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise WeakdisError(f"{root}: no such HWF folder; expected a directory holding {SYMBOLS_DIR}/ and "
                           f"{', '.join(EXPR_FILES)}")
    symbols = root / SYMBOLS_DIR
    if not symbols.is_dir():
        raise WeakdisError(f"{root}: has no {SYMBOLS_DIR}/ folder; expected {SYMBOLS_DIR}/<symbol>/*.jpg "
                           f"with symbols {', '.join(SYMBOLS)}")
    missing = [name for name in EXPR_FILES if not (root / name).is_file()]
    if missing:
        raise WeakdisError(f"{root}: {', '.join(missing)} missing; expected {', '.join(EXPR_FILES)} beside {SYMBOLS_DIR}/")
    for name in EXPR_FILES:
        try:
            entries = json.loads((root / name).read_text())
        except (OSError, ValueError) as error:
            raise WeakdisError(f"{root / name}: not readable JSON ({error}); expected a list of formula entries") from None
        if not isinstance(entries, list) or any(not isinstance(e, dict) or "img_paths" not in e for e in entries[:10]):
            raise WeakdisError(f"{root / name}: expected a JSON list of entries with 'img_paths', 'expr' and 'res'")
    return symbols


def list_images(root: str | os.PathLike) -> tuple[list[Path], np.ndarray]:
    """The symbol images of a release (sorted by symbol, then file name) and their symbol index."""
    symbols = check_folder(root)
    paths: list[Path] = []
    labels: list[int] = []
    for folder in sorted(p for p in symbols.iterdir() if p.is_dir()):
        if folder.name in SKIPPED_SYMBOLS:
            continue
        if folder.name not in SYMBOLS:
            raise WeakdisError(f"{folder}: unknown symbol {folder.name!r}; expected one of "
                               f"{', '.join(SYMBOLS + SKIPPED_SYMBOLS)}")
        files = sorted(folder.glob("*.jpg"))
        paths += files
        labels += [SYMBOLS.index(folder.name)] * len(files)
    if not paths:
        raise WeakdisError(f"{symbols}: holds no <symbol>/*.jpg image; expected symbols {', '.join(SYMBOLS)}")
    return paths, np.asarray(labels, dtype=np.int64)


def read_image(path: Path) -> np.ndarray:
    """uint8 [45, 45], ink = 255 (the file's grayscale inverted); WeakdisError if unreadable."""
    Image = _pil()
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
            if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
                gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            pixels = np.asarray(gray, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as error:
        raise WeakdisError(f"{path}: unreadable image ({error}); expected a grayscale JPEG of a handwritten symbol") from None
    return 255 - pixels


def read_hwf(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 45, 45] (ink = 255) and int64 symbol indices [N] of a release folder."""
    paths, labels = list_images(root)
    return np.stack([read_image(p) for p in paths]), labels


# --------------------------------------------------------------------------------------- generating


def _styles(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] writer styles: stroke width (px), slant (shear) and size (the longer side, px)."""
    return np.stack([rng.uniform(0.6, 1.6, n), rng.uniform(-0.35, 0.35, n), rng.uniform(36.0, 41.0, n)], axis=1)


def _centred(ink: np.ndarray) -> np.ndarray:
    """``ink`` (at most 45x45) in the middle of an empty 45x45 canvas."""
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    top, left = (IMAGE_SIZE - ink.shape[0]) // 2, (IMAGE_SIZE - ink.shape[1]) // 2
    canvas[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    return canvas


def _place(ink: np.ndarray, style: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink in [0, 1] on a 45x45 canvas: slanted by ``style`` (with a little per-image jitter around
    the writer's style), cropped to its bounding box, scaled so that its longer side is the style's
    size, centred as the release's symbols are, and drawn with the style's pen width."""
    from scipy import ndimage

    width, slant, size = style + rng.normal(0, [0.15, 0.05, 1.0])
    canvas = _centred(ink)
    center = (IMAGE_SIZE - 1) / 2
    # output (r, c) reads input matrix @ (r, c) + offset: shear rows into columns for the slant
    matrix = np.array([[1.0, 0.0], [slant, 1.0]])
    canvas = ndimage.affine_transform(canvas, matrix, offset=np.array([center, center]) - matrix @ [center, center], order=1)
    rows, cols = np.nonzero(canvas > 0.3)
    crop = canvas[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    canvas = _centred(np.clip(ndimage.zoom(crop, min(size, IMAGE_SIZE - 4) / max(crop.shape), order=1), 0.0, 1.0))
    sigma = max(width, 0.6) / 2
    canvas = ndimage.gaussian_filter(canvas, sigma) * (1.0 + sigma)
    return np.clip(1.6 * canvas - 0.15, 0.0, 1.0)


def _digit_ink(image: np.ndarray) -> np.ndarray:
    """A load_digits 8x8 image (0..16) upscaled to a 30x30 stroke skeleton in [0, 1]."""
    from scipy import ndimage

    big = ndimage.zoom(image / 16.0, 30 / 8, order=3)
    return np.clip((big - 0.5) * 3.0, 0.0, 1.0)


def _operator_ink(symbol: str, rng: np.random.Generator) -> np.ndarray:
    """A 34x34 pen drawing of +, - or x: wobbly strokes with uneven lengths and tilt."""
    size = 34
    canvas = np.zeros((size, size))
    c = (size - 1) / 2

    def stroke(angle: float, half: float, shift: tuple[float, float]) -> None:
        t = np.linspace(-half, half, 200)
        bend = rng.normal(0, 0.8) * (t / half) ** 2 + rng.normal(0, 0.25, 1)
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        points = c + np.asarray(shift) + t[:, None] * direction + bend[:, None] * normal
        rows = np.clip(np.round(points[:, 1]).astype(int), 0, size - 1)
        cols = np.clip(np.round(points[:, 0]).astype(int), 0, size - 1)
        canvas[rows, cols] = 1.0

    tilt = rng.normal(0, 0.08)
    if symbol in ("+", "-"):
        stroke(tilt, rng.uniform(9, 13), (rng.normal(0, 0.8), rng.normal(0, 0.8)))
    if symbol == "+":
        stroke(np.pi / 2 + rng.normal(0, 0.1), rng.uniform(9, 13), (rng.normal(0, 0.8), rng.normal(0, 0.8)))
    if symbol == "times":
        for angle in (np.pi / 4, 3 * np.pi / 4):
            stroke(angle + rng.normal(0, 0.12), rng.uniform(8, 11), (rng.normal(0, 0.6), rng.normal(0, 0.6)))
    from scipy import ndimage

    # about as wide as the digits' upscaled strokes once both are scaled to the symbol size
    return ndimage.grey_dilation(canvas, size=(2, 2))


def generate_images(seed: int = 0, operators: int = OPERATOR_IMAGES,
                    renderings: int = RENDERINGS) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 45, 45] (ink = 255) and symbol indices [N]: each of load_digits' 1,797 digits
    drawn ``renderings`` times, and ``operators`` images of each of +, - and x, each image in one of
    43 writer styles. The first rendering of a digit is in its pseudo-writer's style, the others in
    randomly drawn ones; images come rendering by rendering, digits in load_digits' order."""
    from sklearn.datasets import load_digits

    if int(renderings) < 1:
        raise WeakdisError(f"renderings={renderings!r} is invalid; expected an integer >= 1")
    rng = np.random.default_rng(seed)
    digits = load_digits()
    styles = _styles(43, rng)
    # load_digits carries no writer ids; consecutive images share a pseudo-writer
    writer = np.arange(len(digits.images)) * 43 // len(digits.images)
    images, labels = [], []
    for rendering in range(int(renderings)):
        chosen = writer if rendering == 0 else rng.integers(43, size=len(writer))
        images += [_place(_digit_ink(img), styles[w], rng) for img, w in zip(digits.images, chosen)]
        labels += list(digits.target.astype(np.int64))
    for symbol in ("+", "-", "times"):
        for _ in range(int(operators)):
            images.append(_place(_operator_ink(symbol, rng), styles[rng.integers(43)], rng))
            labels.append(SYMBOLS.index(symbol))
    return (np.round(np.stack(images) * 255).astype(np.uint8), np.asarray(labels, dtype=np.int64))


def generate_hwf(out: str | os.PathLike, *, seed: int = 0, operators: int = OPERATOR_IMAGES) -> Path:
    """Write a folder laid out like the HWF release (symbol JPEGs, and expression files of single
    symbols); returns it. ``out`` must not exist or be an empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WeakdisError(f"--out {out} exists and is not an empty directory; expected a new folder for the HWF layout")
    if not out.parent.exists():
        raise WeakdisError(f"--out {out}: the directory {out.parent} does not exist")
    Image = _pil()
    images, labels = generate_images(seed, operators)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        import shutil

        shutil.rmtree(partial)
    entries = []
    counts = np.zeros(len(SYMBOLS), dtype=int)
    for image, label in zip(images, labels):
        symbol = SYMBOLS[label]
        folder = partial / SYMBOLS_DIR / symbol
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{symbol}_{counts[label]:05d}.jpg"
        counts[label] += 1
        Image.fromarray(255 - image, mode="L").save(folder / name, quality=95)
        value = {"+": "+", "-": "-", "times": "*"}.get(symbol, symbol)
        entries.append({"img_paths": [f"{symbol}/{name}"], "expr": value,
                        "res": int(symbol) if symbol.isdigit() else None})
    order = np.random.default_rng(seed).permutation(len(entries))
    cut = int(0.8 * len(entries))
    for name, part in zip(EXPR_FILES, (order[:cut], order[cut:])):
        (partial / name).write_text(json.dumps([entries[i] for i in sorted(part)]))
    partial.rename(out) if not out.exists() else (out.rmdir(), partial.rename(out))
    return out


def describe_folder(root: str | os.PathLike) -> str:
    """Validate an HWF folder (every image read) and summarise it."""
    paths, labels = list_images(root)
    images = np.stack([read_image(p) for p in paths])
    counts = np.bincount(labels, minlength=len(SYMBOLS))
    lines = [
        f"folder:   {Path(root)} (HWF layout: {SYMBOLS_DIR}/<symbol>/*.jpg, {', '.join(EXPR_FILES)})",
        f"images:   {len(images)} x {images.shape[1:]} uint8 ink, values {int(images.min())}..{int(images.max())} (every image read)",
        "symbols:  " + ", ".join(f"{s}: {c}" for s, c in zip(SYMBOLS, counts)),
        "versions:",
    ]
    from trainables.data.versions import VERSIONS

    for name, spec in VERSIONS.items():
        if spec.dataset == "hwf":
            keep, factors = spec.select(labels[:, None])
            lines.append(f"          {name:<16} {int(keep.sum()):>7} images, "
                         f"{len(np.unique(factors))}/{spec.num_combinations} combinations")
    return "\n".join(lines)


__all__ = ["SYMBOLS", "IMAGE_SIZE", "check_folder", "list_images", "read_image", "read_hwf",
           "generate_images", "generate_hwf", "describe_folder", "cached_folder", "load_hwf"]


def cached_folder(seed: int = 0) -> Path:
    """The generated HWF folder in the data cache ($WEAKDIS_DATA), generated once under a lock."""
    from trainables.data.generate import _file_lock, cache_dir

    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeakdisError(f"cannot create the data cache {directory} ({error}); set WEAKDIS_DATA to a writable directory") from None
    path = directory / f"hwf-generated-{GENERATOR_VERSION}-seed{int(seed)}"
    if not path.exists():
        with _file_lock(path.with_name(path.name + ".lock")):
            if not path.exists():
                generate_hwf(path, seed=seed)
    return path


def load_hwf(spec, path=None, *, device="cpu", seed: int = 0, max_images: int | None = None,
             data_seed: int = 0):
    """A WeakDataset of an HWF version from a release folder (``path``) or the generated one in the cache."""
    import torch

    from trainables.data.dataset import WeakDataset

    root = cached_folder(data_seed) if path is None else Path(path)
    images, symbols = read_hwf(root)
    keep, factors = spec.select(symbols[:, None])
    positions = np.flatnonzero(keep)
    if max_images is not None and max_images < len(positions):
        pick = np.sort(np.random.default_rng(data_seed).choice(len(positions), size=int(max_images), replace=False))
        positions, factors = positions[pick], factors[pick]
    tensor = torch.from_numpy(np.ascontiguousarray(images[positions][:, None]))
    return WeakDataset(spec, tensor.to(device), factors, symbols[positions][:, None], seed=seed, source=root)


def count_rows(spec, path: str | os.PathLike | None = None) -> int:
    """How many images of HWF version ``spec`` a folder holds (the generated one when ``path`` is None)."""
    if path is None:
        from sklearn.datasets import load_digits

        symbols = np.concatenate([np.tile(load_digits().target, RENDERINGS),
                                  np.repeat(np.arange(10, len(SYMBOLS)), OPERATOR_IMAGES)])
    else:
        symbols = list_images(Path(path).expanduser())[1]
    return int(spec.select(np.asarray(symbols)[:, None])[0].sum())
