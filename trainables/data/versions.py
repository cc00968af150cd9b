"""Dataset versions: which factors are relevant, how their classes are binned, which rows are kept.

The table (design notes, section 2) is our definition; the papers name only the counts.
A relevant factor maps each file class to a value index through a lookup table in which -1 means
"this class is dropped" (dSprites v2 keeps posX/posY only in three bins of five classes). Nuisance
factors vary freely unless a row filter restricts them (the ``-ref`` versions of dSprites).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainables.data.factors import DSPRITES, HWF, SHAPES3D, DatasetLayout, get_layout
from trainables.errors import WeakdisError


def combination_index(factor_values: np.ndarray, factor_sizes) -> np.ndarray:
    """int64 [N]: row-major index of each row of ``factor_values [N, K]`` (last factor fastest)."""
    values = np.asarray(factor_values, dtype=np.int64)
    return np.ravel_multi_index(tuple(values.T), tuple(factor_sizes)).astype(np.int64)


@dataclass(frozen=True)
class RelevantFactor:
    """A relevant factor: its name, the file column it reads and the class -> value lookup."""

    name: str
    column: int
    lookup: tuple[int, ...]     # value index of each file class, -1 = row dropped

    @property
    def size(self) -> int:
        return max(self.lookup) + 1


@dataclass(frozen=True)
class VersionSpec:
    """One ``dataset:version``: relevant factors (row-major, last fastest) and row filters."""

    dataset: str
    name: str
    relevant: tuple[RelevantFactor, ...]
    row_filters: tuple[tuple[int, tuple[int, ...]], ...] = ()   # (file column, kept classes)
    description: str = ""

    @property
    def layout(self) -> DatasetLayout:
        return get_layout(self.dataset)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.relevant)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(f.size for f in self.relevant)

    @property
    def num_combinations(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def num_channels(self) -> int:
        return self.layout.num_channels

    @property
    def image_size(self) -> int:
        return self.layout.image_size

    def combination_factors(self) -> np.ndarray:
        """int64 [num_combinations, K]: the factor values of each combination (last fastest)."""
        grids = np.meshgrid(*[np.arange(s) for s in self.factor_sizes], indexing="ij")
        return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int64)

    def combination_index(self, factors: np.ndarray) -> np.ndarray:
        """int64 [n]: row-major combination index of relevant-factor values [n, K]."""
        return combination_index(factors, self.factor_sizes)

    def select(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which rows of file classes [n, 6] the version keeps (bool [n]) and their factors [m, K]."""
        classes = np.asarray(classes, dtype=np.int64)
        keep = np.ones(len(classes), dtype=bool)
        for column, allowed in self.row_filters:
            keep &= np.isin(classes[:, column], allowed)
        values = np.empty((len(classes), len(self.relevant)), dtype=np.int64)
        for k, factor in enumerate(self.relevant):
            values[:, k] = np.asarray(factor.lookup, dtype=np.int64)[classes[:, factor.column]]
            keep &= values[:, k] >= 0
        return keep, values[keep]

    def official_rows(self) -> np.ndarray:
        """int64: the official row indices (sorted) of every image this version keeps."""
        layout = self.layout
        keep, _ = self.select(layout.all_classes())
        return np.flatnonzero(keep).astype(np.int64)


def _identity(layout: DatasetLayout, name: str) -> RelevantFactor:
    column = layout.factor_index(name)
    return RelevantFactor(name, column, tuple(range(layout.factors[column].size)))


def _binned(layout: DatasetLayout, name: str, bins: tuple[tuple[int, int], ...]) -> RelevantFactor:
    """Classes in the inclusive ranges ``bins`` map to the bin's index; the rest are dropped."""
    column = layout.factor_index(name)
    lookup = [-1] * layout.factors[column].size
    for value, (low, high) in enumerate(bins):
        for cls in range(low, high + 1):
            lookup[cls] = value
    return RelevantFactor(name, column, tuple(lookup))


POSITION_BINS = ((0, 4), (13, 17), (27, 31))
ORIENTATION_BINS = tuple((8 * b, 8 * b + 7) for b in range(5))
SCALE_BINS_3D = ((0, 2), (3, 5), (6, 7))

_D, _S = DSPRITES, SHAPES3D
_REF_SCALES = (_D.factor_index("scale"), (2, 3, 4))    # the scale classes the authors' dSprites loader keeps
_DSPRITES_V2 = (_identity(_D, "shape"), _binned(_D, "posX", POSITION_BINS), _binned(_D, "posY", POSITION_BINS))
_DSPRITES_V3 = _DSPRITES_V2 + (_binned(_D, "orientation", ORIENTATION_BINS),)
_DSPRITES_V4 = _DSPRITES_V2 + (_identity(_D, "orientation"),)

VERSIONS: dict[str, VersionSpec] = {
    spec.name: spec
    for spec in (
        VersionSpec("dsprites", "dsprites:v2", _DSPRITES_V2,
                    description="shape 3 x posX 3 bins x posY 3 bins"),
        VersionSpec("dsprites", "dsprites:v2-ref", _DSPRITES_V2,
                    row_filters=(_REF_SCALES, (_D.factor_index("orientation"), (0, 1, 2, 37, 38, 39))),
                    description="v2, keeping only scale classes {2,3,4} and orientations {0,1,2,37,38,39}"),
        VersionSpec("dsprites", "dsprites:v3", _DSPRITES_V3,
                    description="v2 x orientation 5 bins of 8"),
        VersionSpec("dsprites", "dsprites:v4", _DSPRITES_V4,
                    description="v2 x orientation 40"),
        VersionSpec("dsprites", "dsprites:v3-ref", _DSPRITES_V3,
                    row_filters=(_REF_SCALES,),
                    description="v3, keeping only scale classes {2,3,4} (v2-ref's scales)"),
        VersionSpec("dsprites", "dsprites:v4-ref", _DSPRITES_V4,
                    row_filters=(_REF_SCALES,),
                    description="v4, keeping only scale classes {2,3,4} (v2-ref's scales)"),
        VersionSpec("shapes3d", "shapes3d:v2", (_identity(_S, "object_hue"), _identity(_S, "shape")),
                    description="object_hue 10 x shape 4"),
        VersionSpec("shapes3d", "shapes3d:v3",
                    (_identity(_S, "object_hue"), _identity(_S, "shape"), _binned(_S, "scale", SCALE_BINS_3D)),
                    description="object_hue 10 x shape 4 x scale 3 bins"),
        VersionSpec("shapes3d", "shapes3d:v5",
                    (_identity(_S, "floor_hue"), _identity(_S, "wall_hue"), _identity(_S, "object_hue"),
                     _identity(_S, "shape"), _binned(_S, "scale", SCALE_BINS_3D)),
                    description="floor_hue 10 x wall_hue 10 x object_hue 10 x shape 4 x scale 3 bins"),
        VersionSpec("dsprites", "dsprites:full", tuple(_identity(_D, f.name) for f in _D.factors),
                    description="all 6 factors with their own classes"),
        VersionSpec("shapes3d", "shapes3d:full", tuple(_identity(_S, f.name) for f in _S.factors),
                    description="all 6 factors with their own classes"),
        VersionSpec("hwf", "hwf:v1", (_identity(HWF, "symbol"),),
                    description="symbol 13 (digits 0-9, +, -, times)"),
        VersionSpec("hwf", "hwf:digits", (_binned(HWF, "symbol", tuple((d, d) for d in range(10))),),
                    description="symbol 10 (digits 0-9; operators dropped)"),
    )
}


def get_version(name: str) -> VersionSpec:
    """The VersionSpec of ``dataset:version``; WeakdisError naming the known versions otherwise."""
    from trainables.data.digits import DIGIT_VERSIONS   # imports trainables.data.dataset

    try:
        return {**VERSIONS, **DIGIT_VERSIONS}[str(name).strip()]
    except KeyError:
        raise WeakdisError(
            f"unknown dataset version {name!r}; expected one of {', '.join([*VERSIONS, *DIGIT_VERSIONS])}"
        ) from None
