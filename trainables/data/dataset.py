"""A version's subset in memory as uint8 tensors: splits, supervision, noisy batches, ground truth."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.data.formats import read_images, read_labels
from trainables.data.versions import VersionSpec, get_version
from trainables.errors import WeakdisError
from weakdis.seeds import derive_seed

LABELLED_SAMPLINGS = ("uniform", "stratified")

SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.1), ("test", 0.2))
SPLIT_NAMES = tuple(name for name, _ in SPLIT_FRACTIONS)
NOISE_KINDS = ("none", "bernoulli", "gaussian", "mixed")
# "mixed": the authors' augmentation, one clean copy of each image beside three Gaussian and three
# dropout copies, drawn per image on the fly.
MIXED_NOISE_SHARES = (1 / 7, 3 / 7, 3 / 7)   # clean, gaussian, bernoulli


@dataclass(frozen=True)
class NoiseConfig:
    """On-the-fly augmentation of a batch.

    ``bernoulli``: every pixel (all channels together) is set to 0 with probability ``p``.
    ``gaussian``: N(0, std^2) noise is added to the foreground pixels (any channel > 0), then
    clamped to [0, 1]; the background of dSprites stays black.
    ``mixed``: each image is left clean (1/7), gets the Gaussian noise (3/7) or the dropout (3/7),
    the shares of the authors' dataset of one clean and six noisy copies per image.
    """

    kind: str = "none"
    p: float = 0.1
    std: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise WeakdisError(f"noise kind {self.kind!r} is invalid; expected one of {', '.join(NOISE_KINDS)}")
        if not 0.0 <= self.p <= 1.0:
            raise WeakdisError(f"noise p={self.p!r} is invalid; expected a probability in [0, 1]")
        if not (self.std >= 0.0 and np.isfinite(self.std)):
            raise WeakdisError(f"noise std={self.std!r} is invalid; expected a finite number >= 0")

    @classmethod
    def from_level(cls, kind: str, level: float) -> "NoiseConfig":
        """``TrialConfig.noise`` / ``noise_level``: the level is the dropout p or the Gaussian std."""
        return cls(kind=kind, p=level if kind in ("bernoulli", "mixed") else 0.1,
                   std=level if kind in ("gaussian", "mixed") else 0.1)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise WeakdisError(f"device {device!r} is invalid; expected 'cpu', 'cuda', 'cuda:N' or 'auto'") from None


def make_splits(num_images: int, seed: int) -> dict[str, torch.Tensor]:
    """Seeded 70/10/20 split of range(num_images): train and val get floor(fraction * N)."""
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(num_images, generator=generator)
    n_train = int(SPLIT_FRACTIONS[0][1] * num_images)
    n_val = int(SPLIT_FRACTIONS[1][1] * num_images)
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


class WeakDataset:
    """The images of one version in memory (uint8 [N, C, 64, 64]) with their factors.

    Tensors live on ``device``; a batch is an index gather there followed by a float conversion.
    """

    def __init__(
        self,
        spec: VersionSpec,
        images: torch.Tensor,
        factors: np.ndarray | torch.Tensor,
        all_factors: np.ndarray | torch.Tensor,
        *,
        seed: int = 0,
        source: str | os.PathLike | None = None,
    ) -> None:
        size = getattr(spec, "image_size", 64)
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (spec.num_channels, size, size):
            raise ValueError(f"images must be uint8 [N, {spec.num_channels}, {size}, {size}], got {images.dtype} {tuple(images.shape)}")
        self.spec = spec
        self.source = None if source is None else Path(source)
        self.seed = int(seed)
        self.images = images
        self.factors = torch.as_tensor(np.asarray(factors, dtype=np.int64)).to(images.device)
        self.all_factors = torch.as_tensor(np.asarray(all_factors, dtype=np.int64)).to(images.device)
        combinations = spec.combination_index(self.factors.cpu().numpy())
        self.combinations = torch.as_tensor(combinations).to(images.device)
        self.splits = {name: idx.to(images.device) for name, idx in make_splits(len(images), seed).items()}
        # dSprites files hold {0, 1}; Shapes3D files 0..255
        self.pixel_scale = 1.0 if spec.dataset == "dsprites" else 1.0 / 255.0    # HWF: 0..255 too
        order = np.argsort(combinations, kind="stable")
        counts = np.bincount(combinations, minlength=spec.num_combinations)
        self._rows_by_combination = order
        self._combination_counts = counts
        self._combination_starts = np.cumsum(counts) - counts
        self._stand_in: np.ndarray | None = None
        self._pair_groups: tuple | None = None

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"WeakDataset({self.spec.name}, images={len(self)}, combinations present="
                f"{int((self._combination_counts > 0).sum())}/{self.spec.num_combinations}, device={self.device})")

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.spec.factor_sizes

    def to(self, device: str | torch.device) -> "WeakDataset":
        device = resolve_device(device)
        self.images = self.images.to(device)
        self.factors = self.factors.to(device)
        self.all_factors = self.all_factors.to(device)
        self.combinations = self.combinations.to(device)
        self.splits = {name: idx.to(device) for name, idx in self.splits.items()}
        return self

    # ------------------------------------------------------------------ training

    def labelled_indices(self, tau: int, seed: int, sampling: str = "uniform") -> torch.Tensor:
        """int64 [tau]: tau distinct training images drawn with ``seed`` (the labelled samples).

        ``sampling="uniform"``: uniformly without replacement. ``"stratified"``: first one image of
        each relevant-factor combination present in the training split (of ``tau`` of them, chosen
        at random, when tau is smaller), then the rest uniformly among the other images; so that
        every prior component has a labelled sample whenever ``tau`` allows it.
        """
        train = self.splits["train"]
        if not isinstance(tau, (int, np.integer)) or tau < 0:
            raise WeakdisError(f"tau={tau!r} is invalid; expected a number of labelled samples >= 0")
        if sampling not in LABELLED_SAMPLINGS:
            raise WeakdisError(f"tau_sampling={sampling!r} is invalid; expected one of {', '.join(LABELLED_SAMPLINGS)}")
        if tau > len(train):
            raise WeakdisError(
                f"tau={tau} labelled samples requested, but the training split of {self.spec.name} holds only "
                f"{len(train)} images; expected tau <= {len(train)} (use more images or a smaller tau)"
            )
        generator = torch.Generator().manual_seed(derive_seed(int(seed), f"labelled/{sampling}"))
        order = torch.randperm(len(train), generator=generator)
        if sampling == "uniform":
            pick = order[: int(tau)]
        else:
            combinations = self.combinations[train].cpu()[order]
            _, by_combination = torch.sort(combinations, stable=True)
            sorted_combinations = combinations[by_combination]
            first = torch.ones(len(combinations), dtype=torch.bool)
            first[1:] = sorted_combinations[1:] != sorted_combinations[:-1]
            one_each = by_combination[first]                       # positions in `order`, one per combination
            one_each = one_each[torch.randperm(len(one_each), generator=generator)][: int(tau)]
            rest = torch.ones(len(order), dtype=torch.bool)
            rest[one_each] = False
            fill = torch.nonzero(rest).flatten()[: int(tau) - len(one_each)]
            pick = order[torch.cat([one_each, fill])]
        return train[pick.to(train.device)]

    def sample_indices(self, split: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """int64 [n]: dataset indices drawn uniformly (with replacement) from a split, on the device."""
        if split not in self.splits:
            raise WeakdisError(f"split {split!r} is unknown; expected one of {', '.join(SPLIT_NAMES)}")
        pool = self.splits[split]
        if len(pool) == 0:
            raise WeakdisError(f"the {split} split of {self.spec.name} is empty ({len(self)} images in all)")
        device = generator.device if generator is not None else pool.device
        picks = torch.randint(len(pool), (int(n),), generator=generator, device=device)
        return pool[picks.to(pool.device)]

    def batch(
        self,
        indices: torch.Tensor,
        *,
        noise: NoiseConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """float32 [B, C, 64, 64] in [0, 1]: a gather on the device, then the optional noise."""
        x = self.images[indices.to(self.device)].float()
        if self.pixel_scale != 1.0:
            x.mul_(self.pixel_scale)
        if noise is None or noise.kind == "none":
            return x
        if generator is not None and generator.device.type != x.device.type:
            raise WeakdisError(f"the noise generator is on {generator.device}; expected one on {x.device}")
        def dropout() -> torch.Tensor:
            return x * (torch.rand((x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device) >= noise.p)

        def jitter() -> torch.Tensor:
            foreground = (x > 0).any(dim=1, keepdim=True)
            noise_values = torch.randn(x.shape, generator=generator, device=x.device) * noise.std
            return (x + noise_values * foreground).clamp_(0.0, 1.0)

        if noise.kind == "bernoulli":
            return dropout()
        if noise.kind == "gaussian":
            return jitter()
        dropped, jittered = dropout(), jitter()
        shares = torch.tensor(MIXED_NOISE_SHARES, device=x.device)
        kind = torch.multinomial(shares, x.shape[0], replacement=True, generator=generator).view(-1, 1, 1, 1)
        return torch.where(kind == 0, x, torch.where(kind == 1, jittered, dropped))

    def paired_batch(self, indices: torch.Tensor, factor: str | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, x') float: each image and one that shares every file factor but ``factor`` (a name of
        the file layout; None = ``orientation``, e.g. Shapes3D views), drawn at random among those
        present; an image with no such partner in the file is paired with itself."""
        factor = factor or "orientation"
        names = [f.name for f in self.spec.layout.factors]
        if factor not in names:
            raise WeakdisError(f"pair_factor={factor!r} is invalid for {self.spec.name}; expected one of {', '.join(names)}")
        column = names.index(factor)
        if self._pair_groups is None or self._pair_groups[0] != column:
            classes = self.all_factors.cpu().numpy()
            others = np.delete(classes, column, axis=1)
            _, group = np.unique(others, axis=0, return_inverse=True)
            group = group.reshape(-1)
            order = np.argsort(group, kind="stable")
            counts = np.bincount(group)
            self._pair_groups = (column, group, order, counts, np.cumsum(counts) - counts)
        _, group, order, counts, starts = self._pair_groups
        rows = indices.cpu().numpy()
        g = group[rows]
        uniform = torch.rand(len(rows), generator=generator, device=generator.device if generator else "cpu")
        offsets = np.floor(uniform.cpu().numpy() * counts[g]).astype(np.int64)
        partners = torch.as_tensor(order[starts[g] + offsets], device=self.device)
        return self.batch(indices), self.batch(partners)

    def predictor_labels(self, indices: torch.Tensor) -> torch.Tensor:
        """int64 [B, K]: labels for a factor predictor, the relevant-factor values."""
        return self.factors[indices.to(self.device)]

    # ------------------------------------------------------------------ ground truth for the metrics

    def sample_factors(self, n: int, random_state) -> np.ndarray:
        """np.int64 [n, K]: each relevant factor drawn uniformly, independently."""
        draw = getattr(random_state, "integers", None) or random_state.randint
        return np.stack([np.asarray(draw(0, size, size=int(n))) for size in self.factor_sizes], axis=1).astype(np.int64)

    def sample_observations_from_factors(self, factors: np.ndarray, random_state) -> np.ndarray:
        """np.float32 [n, C, 64, 64]: for each row of factors, a random image with those factors.

        Nuisance factors vary at random among the matching images. A combination that has no image
        (possible in a small generated subset) is stood in for by the present combination that
        agrees with it on the most factors.
        """
        factors = np.asarray(factors, dtype=np.int64)
        sizes = np.asarray(self.factor_sizes)
        if factors.ndim != 2 or factors.shape[1] != len(sizes) or (factors < 0).any() or (factors >= sizes).any():
            raise ValueError(f"factors must be int [n, {len(sizes)}] with values below {tuple(sizes)}")
        wanted = self.spec.combination_index(factors)
        if (self._combination_counts[wanted] == 0).any():
            wanted = self._stand_ins()[wanted]
        uniform = getattr(random_state, "random", None) or random_state.random_sample
        offsets = np.floor(np.asarray(uniform(len(wanted))) * self._combination_counts[wanted]).astype(np.int64)
        rows = self._rows_by_combination[self._combination_starts[wanted] + offsets]
        images = self.batch(torch.as_tensor(rows, device=self.device))
        return images.cpu().numpy().astype(np.float32, copy=False)

    def _stand_ins(self) -> np.ndarray:
        if self._stand_in is None:
            combos = self.spec.combination_factors()
            present = np.flatnonzero(self._combination_counts > 0)
            stand_in = np.arange(len(combos))
            missing = np.flatnonzero(self._combination_counts == 0)
            for start in range(0, len(missing), 512):
                chunk = missing[start:start + 512]
                agree = (combos[chunk][:, None, :] == combos[present][None, :, :]).sum(axis=2)
                stand_in[chunk] = present[np.argmax(agree, axis=1)]
            self._stand_in = stand_in
        return self._stand_in


def load_dataset(
    version: str | VersionSpec,
    path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    max_images: int | None = None,
    generate_images: int | None = None,
    data_seed: int | None = None,
) -> WeakDataset:
    """Load a version's images from an official-format file into memory.

    ``path=None`` uses the cache ($WEAKDIS_DATA, default ~/.cache/weakdis): a generated file of
    ``generate_images`` of the version's rows (seeded by ``seed``; None = all of them), made once.
    ``max_images`` keeps a seeded random subset of the selected rows (None = all).
    ``data_seed`` seeds which rows are generated and kept (None = ``seed``); ``seed`` seeds the
    splits. Trials of one sweep share ``data_seed`` so that every seed sees the same images.
    """
    rows_seed = seed if data_seed is None else data_seed
    spec = version if isinstance(version, VersionSpec) else get_version(version)
    target = resolve_device(device)
    if max_images is not None and int(max_images) < 1:
        raise WeakdisError(f"max_images={max_images!r} is invalid; expected an integer >= 1 or None")
    if spec.dataset == "hwf":
        from trainables.data.hwf import load_hwf

        return load_hwf(spec, path, device=target, seed=seed, max_images=max_images, data_seed=rows_seed)
    if getattr(spec, "image_size", 64) != 64:
        from trainables.data.digits import load_digits_dataset

        return load_digits_dataset(spec, path, device=target, seed=seed,
                                   max_images=max_images if max_images is not None else generate_images,
                                   data_seed=data_seed)
    if path is None:
        from trainables.data.generate import cached_file

        path = cached_file(spec.dataset, version=spec.name, max_images=generate_images, seed=rows_seed)
    contents = read_labels(path, spec.dataset)
    keep, factors = spec.select(contents.classes)
    positions = np.flatnonzero(keep)
    if len(positions) == 0:
        raise WeakdisError(
            f"{path}: none of its {contents.num_rows} images belongs to {spec.name} ({spec.description}); "
            "expected a file holding that version's rows"
        )
    if max_images is not None and max_images < len(positions):
        pick = np.sort(np.random.default_rng(rows_seed).choice(len(positions), size=int(max_images), replace=False))
        positions, factors = positions[pick], factors[pick]
    images = torch.from_numpy(read_images(contents, positions, channels_first=True))
    if spec.dataset == "dsprites" and len(images) and int(images.max()) > 1:
        raise WeakdisError(f"{path}: 'imgs' holds the value {int(images.max())}; expected dSprites pixels in {{0, 1}}")
    return WeakDataset(spec, images.to(target), factors, contents.classes[positions], seed=seed, source=path)
