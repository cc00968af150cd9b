"""Rotated and coloured digits: the explicit-disentanglement paper's Rotated and Colored MNIST.

- ``rotdigits:v1``: each digit rotated by an angle uniform in [-60, 60] degrees. Factors: ``digit``
  (10) and ``rotation`` (12 bins of 10 degrees). Pairs: the same digit at a fresh rotation. Predictor
  label: left or right (angle < 0 or >= 0).
- ``colordigits:v1``: a grey digit multiplied by an RGB colour. In the train and val splits each
  class has a mean colour plus N(0, 0.05^2) jitter; in the test split colours are uniform over
  classes. Factors: ``digit`` and ``red`` / ``green`` / ``blue`` (each channel quantised to four
  values, which are also the predictor's labels). Pairs: the same digit in a fresh uniform colour.

Digits come from the MNIST IDX files when ``data_path`` names a directory holding them (gzipped or
not), else from scikit-learn's bundled 8x8 handwritten digits upscaled to 28x28 (:func:`sklearn_digits`).
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainables.data.dataset import WeakDataset, make_splits, resolve_device
from trainables.data.versions import RelevantFactor, VersionSpec
from trainables.errors import WeakdisError

DIGIT_SIZE = 28
MAX_ANGLE = 60.0
ROTATION_BINS = 12
COLOUR_LEVELS = 4
COLOUR_JITTER = 0.05
COLOUR_RANGE = (0.2, 1.0)     # darker colours would hide the digit
MNIST_FILES = (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
GENERATED_TEST_DIGITS = 297    # of scikit-learn's 1797 in the generated t10k files (MNIST's 1:6)


@dataclass(frozen=True)
class DigitsSpec(VersionSpec):
    """A digits version: factors are columns of its own ``all_factors`` (no official file layout)."""

    channels: int = 1
    image_size: int = DIGIT_SIZE
    predictor_classes: tuple[int, ...] = ()    # classes of each predictor label head
    pair_factor: str = ""
    factor_dim: int = 1                        # the explicit models' default size of y
    predictor_weight: float = 1.0              # predvae's default lambda_pred (measured, docs/reproduction.md)

    @property
    def layout(self):
        raise WeakdisError(f"{self.name} has no official file layout; it is built from digit images")

    @property
    def num_channels(self) -> int:
        return self.channels


def _identity_factor(name: str, column: int, size: int) -> RelevantFactor:
    return RelevantFactor(name, column, tuple(range(size)))


DIGIT_VERSIONS: dict[str, DigitsSpec] = {
    "rotdigits:v1": DigitsSpec(
        "rotdigits", "rotdigits:v1",
        (_identity_factor("digit", 0, 10), _identity_factor("rotation", 1, ROTATION_BINS)),
        description="digit 10 x rotation in [-60, 60] degrees (12 bins)", channels=1,
        predictor_classes=(2,), pair_factor="rotation", predictor_weight=10.0),
    "colordigits:v1": DigitsSpec(
        "colordigits", "colordigits:v1",
        (_identity_factor("digit", 0, 10), *(_identity_factor(c, i + 1, COLOUR_LEVELS)
                                               for i, c in enumerate(("red", "green", "blue")))),
        description="digit 10 x colour (4 levels per channel); class-biased colours in train, uniform in test",
        channels=3, predictor_classes=(COLOUR_LEVELS,) * 3, pair_factor="colour", factor_dim=3),
}
DIGIT_DATASETS = tuple(spec.dataset for spec in DIGIT_VERSIONS.values())


# ------------------------------------------------------------------------------------------ sources

def sklearn_digits(size: int = DIGIT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten 8x8 digits upscaled (bilinear) into ``size`` x ``size`` with
    an MNIST-like margin (digit box = 20/28 of the side): uint8 [N, size, size] and int64 labels [N]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    inner = max(1, round(size * 20 / 28))
    scaled = F.interpolate(small, size=(inner, inner), mode="bilinear", align_corners=False)
    margin = (size - inner) // 2
    out = F.pad(scaled, (margin, size - inner - margin, margin, size - inner - margin))
    images = (out[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return images, bunch.target.astype(np.int64)


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """An IDX file (gzipped or not) of unsigned bytes with ``ndim`` dimensions (3: images, 1: labels)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise WeakdisError(f"{path}: cannot be read ({error}); expected an MNIST IDX file") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != ndim:
        raise WeakdisError(f"{path}: header {data[:4].hex() or '(empty)'} is not an IDX file of unsigned bytes "
                           f"with {ndim} dimension(s); expected magic 000008{ndim:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise WeakdisError(f"{path}: truncated header ({len(data)} bytes); expected {header} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise WeakdisError(f"{path}: {len(data)} bytes for shape {shape}; expected {expected} bytes "
                           "(truncated or wrong file)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise WeakdisError(f"{directory}: no {stem} or {stem}.gz; expected the MNIST IDX files in this directory")


def _mnist_parts(directory: str | os.PathLike) -> list[tuple[Path, np.ndarray, Path, np.ndarray]]:
    """(image file, images uint8 [n, 28, 28], label file, labels) of the training and test IDX files,
    each read and checked once."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise WeakdisError(f"data_path={str(directory)!r} is not a directory; expected one holding the MNIST IDX files")
    parts = []
    for image_stem, label_stem in MNIST_FILES:
        image_path, label_path = _find(directory, image_stem), _find(directory, label_stem)
        x, y = read_idx(image_path, 3), read_idx(label_path, 1)
        if x.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise WeakdisError(f"{image_path}: images of {x.shape[1:]}; expected 28 x 28")
        if len(x) != len(y):
            raise WeakdisError(f"{label_path}: {len(y)} labels for {len(x)} images in {image_path}; expected as many")
        if y.max(initial=0) > 9:
            raise WeakdisError(f"{label_path}: label {int(y.max())}; expected digits 0-9")
        parts.append((image_path, x, label_path, y))
    return parts


def _joined(parts: list[tuple[Path, np.ndarray, Path, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([x for _, x, _, _ in parts]),
            np.concatenate([y.astype(np.int64) for _, _, _, y in parts]))


def mnist_digits(directory: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST training and test digits of a directory of IDX files: uint8 [N, 28, 28], int64 [N]."""
    return _joined(_mnist_parts(directory))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write uint8 ``array`` as an IDX file of unsigned bytes (gzipped when ``path`` ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def _mnist_paths(directory: Path) -> list[Path | None]:
    """The four IDX files of a directory in MNIST_FILES order (None where absent)."""
    found: list[Path | None] = []
    for stems in MNIST_FILES:
        for stem in stems:
            try:
                found.append(_find(directory, stem))
            except WeakdisError:
                found.append(None)
    return found


def is_mnist_folder(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds at least one of the MNIST IDX files (then it is read as MNIST)."""
    directory = Path(directory)
    return directory.is_dir() and any(path is not None for path in _mnist_paths(directory))


def generate_mnist_files(out: str | os.PathLike, *, compress: bool = False) -> Path:
    """Write scikit-learn's digits exactly as the digit versions use them (:func:`sklearn_digits`) as
    the four MNIST IDX files in a new folder ``out``, the last ``GENERATED_TEST_DIGITS`` in the t10k
    files; returns ``out``. Loading ``out`` as ``data_path`` gives the same dataset as no ``data_path``:
    the loader joins train and t10k and makes its own seeded splits."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WeakdisError(f"--out {out} exists and is not an empty directory; expected a new folder for the MNIST IDX files")
    if not out.parent.exists():
        raise WeakdisError(f"--out {out}: the directory {out.parent} does not exist")
    images, labels = sklearn_digits()
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        import shutil

        shutil.rmtree(partial)
    partial.mkdir()
    cut = len(images) - GENERATED_TEST_DIGITS
    suffix = ".gz" if compress else ""
    for (image_stem, label_stem), rows in zip(MNIST_FILES, (slice(0, cut), slice(cut, None))):
        write_idx(partial / (image_stem + suffix), images[rows])
        write_idx(partial / (label_stem + suffix), labels[rows].astype(np.uint8))
    if out.exists():
        out.rmdir()
    partial.rename(out)
    return out


def describe_mnist_folder(directory: str | os.PathLike) -> str:
    """Validate a directory of MNIST IDX files (every file read) and summarise it."""
    directory = Path(directory)
    parts = _mnist_parts(directory)
    images, labels = _joined(parts)
    lines = [f"folder:   {directory} (MNIST IDX files)"]
    for image_path, x, label_path, y in parts:
        for path, array in ((image_path, x), (label_path, y)):
            lines.append(f"          {path.name:<28} {path.stat().st_size:>10,} bytes  {' x '.join(map(str, array.shape))}")
    counts = np.bincount(labels, minlength=10)
    lines.append(f"images:   {len(images)} x {images.shape[1:]} uint8, values {int(images.min())}..{int(images.max())} "
                 "(every image read)")
    lines.append("digits:   " + ", ".join(f"{d}: {c}" for d, c in enumerate(counts)))
    reference, reference_labels = sklearn_digits()
    same = images.shape == reference.shape and np.array_equal(images, reference) and np.array_equal(labels, reference_labels)
    lines.append("source:   " + ("scikit-learn's digits as weakdis uses them without data_path (weakdis data generate)"
                                 if same else "not scikit-learn's digits (real MNIST or other IDX files)"))
    splits = make_splits(len(images), 0)
    lines.append("versions: (splits of seed 0; rotations and colours are drawn from the trial's seed)")
    for name, spec in DIGIT_VERSIONS.items():
        lines.append(f"          {name:<16} {len(images):>7} images: train {len(splits['train'])}, "
                     f"val {len(splits['val'])}, test {len(splits['test'])}; {spec.description}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ rendering

def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Float images [B, C, H, W] rotated counter-clockwise by ``degrees`` [B] about their centre."""
    theta = torch.deg2rad(degrees.float())
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    matrix = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(matrix, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_bin(degrees: torch.Tensor) -> torch.Tensor:
    width = 2 * MAX_ANGLE / ROTATION_BINS
    return ((degrees + MAX_ANGLE) / width).floor().clamp(0, ROTATION_BINS - 1).long()


def colour_levels(colours: torch.Tensor) -> torch.Tensor:
    return (colours * COLOUR_LEVELS).floor().clamp(0, COLOUR_LEVELS - 1).long()


def uniform_colours(n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
    low, high = COLOUR_RANGE
    return low + (high - low) * torch.rand((n, 3), generator=generator, device=device)


def class_mean_colours(seed: int) -> torch.Tensor:
    """[10, 3]: each digit class's mean colour in the biased training data."""
    return uniform_colours(10, torch.Generator().manual_seed(int(seed) + 7919))


class DigitsDataset(WeakDataset):
    """A digits version in memory: the rendered images plus the grey source digits they were made
    from (``base``), so that pairs can be rendered on the fly."""

    def __init__(self, spec: DigitsSpec, base: torch.Tensor, labels: torch.Tensor, style: torch.Tensor,
                 *, seed: int = 0, source: str | os.PathLike | None = None) -> None:
        self.base = base                    # uint8 [N, 1, S, S]
        self.style = style                  # rotdigits: angle [N]; colordigits: colour [N, 3]
        self.class_labels = labels          # int64 [N]: the digit
        images = self._render(base.float() / 255.0, style)
        factors = self._factors(labels, style)
        super().__init__(spec, (images * 255).round().to(torch.uint8), factors.numpy(), factors.numpy(),
                         seed=seed, source=source)

    def _render(self, grey: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.spec_dataset == "rotdigits":
            return rotate(grey, style).clamp(0, 1)
        return grey * style[:, :, None, None]

    def _factors(self, labels: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.spec_dataset == "rotdigits":
            return torch.stack([labels, rotation_bin(style)], 1)
        return torch.cat([labels[:, None], colour_levels(style)], 1)

    @property
    def spec_dataset(self) -> str:
        return "rotdigits" if self.style.ndim == 1 else "colordigits"

    def to(self, device: str | torch.device) -> "DigitsDataset":
        super().to(device)
        device = resolve_device(device)
        self.base, self.style, self.class_labels = (t.to(device) for t in (self.base, self.style, self.class_labels))
        return self

    def paired_batch(self, indices: torch.Tensor, factor: str | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, x') float [B, C, S, S]: each image and the same digit with a fresh value of the pair
        factor (rotation uniform in [-60, 60]; colour uniform)."""
        wanted = self.spec.pair_factor
        if factor not in (None, wanted):
            raise WeakdisError(f"pair_factor={factor!r} is invalid for {self.spec.name}; expected {wanted!r}")
        indices = indices.to(self.device)
        x = self.batch(indices)
        n = len(indices)
        device = generator.device if generator is not None else self.device
        if self.spec_dataset == "rotdigits":
            style = ((torch.rand(n, generator=generator, device=device) * 2 - 1) * MAX_ANGLE).to(self.device)
        else:
            style = uniform_colours(n, generator, device).to(self.device)
        grey = self.base[indices].float() / 255.0
        x_pair = (self._render(grey, style) * 255).round() / 255.0
        return x, x_pair

    def predictor_labels(self, indices: torch.Tensor) -> torch.Tensor:
        """int64 [B, H]: the factor prediction labels (rotation left/right; colour levels per channel)."""
        style = self.style[indices.to(self.device)]
        if self.spec_dataset == "rotdigits":
            return (style >= 0).long()[:, None]
        return colour_levels(style)


def load_digits_dataset(spec: DigitsSpec, path: str | os.PathLike | None = None, *, device="cpu", seed: int = 0,
                        max_images: int | None = None, data_seed: int | None = None) -> DigitsDataset:
    """Build ``spec`` from MNIST files in directory ``path`` (None: scikit-learn's digits); every
    source digit appears once. ``max_images`` keeps a seeded subset; ``data_seed`` (None = ``seed``)
    seeds the subset and the rotations / colours, ``seed`` the splits."""
    rows_seed = seed if data_seed is None else data_seed
    grey, labels = sklearn_digits(spec.image_size) if path is None else mnist_digits(path)
    rng = np.random.default_rng(rows_seed)
    if max_images is not None and int(max_images) < len(grey):
        pick = np.sort(rng.choice(len(grey), size=int(max_images), replace=False))
        grey, labels = grey[pick], labels[pick]
    base = torch.from_numpy(np.ascontiguousarray(grey))[:, None]
    labels_t = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    n = len(base)
    if spec.dataset == "rotdigits":
        style = (torch.rand(n, generator=generator) * 2 - 1) * MAX_ANGLE
    else:
        style = uniform_colours(n, generator)    # the test split's colours
        biased = torch.cat([make_splits(n, seed)["train"], make_splits(n, seed)["val"]])
        jitter = torch.randn((len(biased), 3), generator=generator) * COLOUR_JITTER
        style[biased] = (class_mean_colours(rows_seed)[labels_t[biased]] + jitter).clamp(0, 1)
    dataset = DigitsDataset(spec, base, labels_t, style, seed=seed, source=path)
    return dataset.to(device)
