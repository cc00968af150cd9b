"""The factor grids of the official dSprites and Shapes3D files, and label value <-> class mapping."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainables.errors import WeakdisError

DATASET_NAMES = ("dsprites", "shapes3d", "hwf")


@dataclass(frozen=True)
class Factor:
    """One generative factor: its name and the label value of each class (class = index)."""

    name: str
    values: tuple[float, ...]
    value_names: tuple[str, ...] | None = None   # e.g. shape names

    @property
    def size(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class DatasetLayout:
    """The official file layout of one dataset: factors in file-column order, last varying fastest."""

    name: str
    factors: tuple[Factor, ...]
    num_channels: int
    image_key: str
    label_key: str            # float label values: latents_values / labels
    class_key: str | None     # int classes stored beside them (dSprites only)
    image_size: int = 64      # square images of this many pixels a side

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(f.size for f in self.factors)

    @property
    def num_images(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image as stored in the official file."""
        side = (self.image_size, self.image_size)
        return side if self.num_channels == 1 else side + (3,)

    def factor_index(self, name: str) -> int:
        try:
            return self.factor_names.index(name)
        except ValueError:
            raise WeakdisError(
                f"{self.name} has no factor {name!r}; expected one of {', '.join(self.factor_names)}"
            ) from None

    def values_table(self) -> list[np.ndarray]:
        return [np.asarray(f.values, dtype=np.float64) for f in self.factors]

    def all_classes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """int64 [n, K]: the factor classes of official row indices (all rows when None)."""
        if rows is None:
            rows = np.arange(self.num_images, dtype=np.int64)
        return np.stack(np.unravel_index(np.asarray(rows, dtype=np.int64), self.factor_sizes), axis=1).astype(
            np.int64
        )

    def row_index(self, classes: np.ndarray) -> np.ndarray:
        """int64 [n]: the official row index of factor classes [n, K] (inverse of all_classes)."""
        return np.ravel_multi_index(tuple(np.asarray(classes).T), self.factor_sizes).astype(np.int64)

    def class_values(self, classes: np.ndarray) -> np.ndarray:
        """float64 [n, K]: label values of factor classes [n, K]."""
        classes = np.asarray(classes, dtype=np.int64)
        return np.stack([table[classes[:, k]] for k, table in enumerate(self.values_table())], axis=1)

    def values_to_classes(self, values: np.ndarray, *, source: str, atol: float = 1e-4) -> np.ndarray:
        """Map label values [n, K] to class indices; WeakdisError for a value off the factor grid."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.factors):
            raise WeakdisError(
                f"{source}: labels have shape {values.shape}; expected (N, {len(self.factors)})"
            )
        classes = np.empty(values.shape, dtype=np.int64)
        for k, (factor, table) in enumerate(zip(self.factors, self.values_table())):
            column = values[:, k]
            # The grids are sorted and evenly spaced, so the nearest class is a rounding away.
            nearest = np.clip(np.searchsorted(table, column), 0, len(table) - 1)
            below = np.clip(nearest - 1, 0, len(table) - 1)
            pick_below = np.abs(column - table[below]) < np.abs(column - table[nearest])
            nearest = np.where(pick_below, below, nearest)
            bad = ~(np.abs(column - table[nearest]) <= atol)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise WeakdisError(
                    f"{source}: row {row} has {factor.name}={column[row]:.6g}, which is not on the "
                    f"{factor.name} grid; expected one of {_format_values(factor.values)} "
                    f"({int(bad.sum())} bad rows)"
                )
            classes[:, k] = nearest
        return classes

    def check_classes(self, classes: np.ndarray, *, source: str) -> np.ndarray:
        """Validate int class indices [n, K] against the factor sizes."""
        classes = np.asarray(classes)
        if classes.ndim != 2 or classes.shape[1] != len(self.factors):
            raise WeakdisError(f"{source}: classes have shape {classes.shape}; expected (N, {len(self.factors)})")
        for k, factor in enumerate(self.factors):
            column = classes[:, k]
            bad = (column < 0) | (column >= factor.size)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise WeakdisError(
                    f"{source}: row {row} has {factor.name} class {int(column[row])}; "
                    f"expected 0..{factor.size - 1}"
                )
        return classes.astype(np.int64, copy=False)


def _format_values(values: tuple[float, ...]) -> str:
    if len(values) <= 10:
        return "[" + ", ".join(f"{v:g}" for v in values) + "]"
    return f"[{values[0]:g}, {values[1]:g}, ..., {values[-1]:g}] ({len(values)} values)"


def _linspace(start: float, stop: float, num: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(start, stop, num))


DSPRITES = DatasetLayout(
    name="dsprites",
    factors=(
        Factor("color", (1.0,), ("white",)),
        Factor("shape", (1.0, 2.0, 3.0), ("square", "ellipse", "heart")),
        Factor("scale", _linspace(0.5, 1.0, 6)),
        Factor("orientation", _linspace(0.0, 2 * np.pi, 40)),
        Factor("posX", _linspace(0.0, 1.0, 32)),
        Factor("posY", _linspace(0.0, 1.0, 32)),
    ),
    num_channels=1,
    image_key="imgs",
    label_key="latents_values",
    class_key="latents_classes",
)

SHAPES3D = DatasetLayout(
    name="shapes3d",
    factors=(
        Factor("floor_hue", _linspace(0.0, 0.9, 10)),
        Factor("wall_hue", _linspace(0.0, 0.9, 10)),
        Factor("object_hue", _linspace(0.0, 0.9, 10)),
        Factor("scale", _linspace(0.75, 1.25, 8)),
        Factor("shape", (0.0, 1.0, 2.0, 3.0), ("cube", "cylinder", "sphere", "capsule")),
        Factor("orientation", _linspace(-30.0, 30.0, 15)),
    ),
    num_channels=3,
    image_key="images",
    label_key="labels",
    class_key=None,
)

# HWF (trainables.data.hwf): a folder of symbol images, not a factor grid; one factor, the symbol
# (digits 0-9, then +, -, times), whose "rows" are the symbol classes.
HWF = DatasetLayout(
    name="hwf",
    factors=(Factor("symbol", _linspace(0.0, 12.0, 13), tuple("0123456789") + ("+", "-", "times")),),
    num_channels=1,
    image_key="Handwritten_Math_Symbols",
    label_key="Handwritten_Math_Symbols",
    class_key=None,
    image_size=45,
)

LAYOUTS = {"dsprites": DSPRITES, "shapes3d": SHAPES3D, "hwf": HWF}


def get_layout(dataset: str) -> DatasetLayout:
    try:
        return LAYOUTS[dataset]
    except KeyError:
        raise WeakdisError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASET_NAMES)}") from None
