"""Stand-ins shared by the models' tests: a version spec and tiny procedurally drawn images.

``StandInSpec`` has what ``trainables.data.VersionSpec`` offers the models (dataset, name,
factor_names, factor_sizes, num_combinations, combination_factors()). ``draw_sprites`` draws one
binary shape per image (square, disc or diamond) at one of 3 x 3 position bins with a jittered size
and offset (the nuisances), vectorised with torch and seeded.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from trainables.config import TrialConfig


class StandInSpec:
    def __init__(self, dataset: str, name: str, factor_names: tuple[str, ...], factor_sizes: tuple[int, ...]):
        self.dataset = dataset
        self.name = name
        self.factor_names = factor_names
        self.factor_sizes = factor_sizes
        self.num_combinations = int(np.prod(factor_sizes))

    def combination_factors(self) -> np.ndarray:
        grids = np.meshgrid(*[np.arange(s) for s in self.factor_sizes], indexing="ij")
        return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int64)


DSPRITES_V2 = StandInSpec("dsprites", "dsprites:v2", ("shape", "posX", "posY"), (3, 3, 3))
SHAPES3D_V2 = StandInSpec("shapes3d", "shapes3d:v2", ("object_hue", "shape"), (10, 4))


def stand_in_dataset(spec: StandInSpec = DSPRITES_V2, num_channels: int = 1) -> SimpleNamespace:
    return SimpleNamespace(spec=spec, num_channels=num_channels)


def random_factors(n: int, spec: StandInSpec, generator: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randint(s, (n,), generator=generator) for s in spec.factor_sizes], dim=1)


def draw_sprites(factors: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float32 [N, 1, 64, 64] in {0, 1}; factors [N, 3] = (shape, posX bin, posY bin)."""
    n = factors.shape[0]
    shape, px, py = factors[:, 0], factors[:, 1], factors[:, 2]
    radius = 5.0 + 4.0 * torch.rand(n, generator=generator)
    cx = 14.0 + 18.0 * px + torch.randint(-3, 4, (n,), generator=generator)
    cy = 14.0 + 18.0 * py + torch.randint(-3, 4, (n,), generator=generator)
    grid = torch.arange(64, dtype=torch.float32)
    dx = (grid[None, None, :] - cx[:, None, None]).abs() / radius[:, None, None]
    dy = (grid[None, :, None] - cy[:, None, None]).abs() / radius[:, None, None]
    square = torch.maximum(dx, dy) <= 1
    disc = dx.square() + dy.square() <= 1
    diamond = dx + dy <= 1.2
    masks = torch.stack([square, disc, diamond], dim=1)            # [N, 3, 64, 64]
    chosen = masks[torch.arange(n), shape]
    return chosen.float().unsqueeze(1)


def draw_coloured(factors: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float32 [N, 3, 64, 64]; factors [N, 2] = (object hue of 10, shape of 4) on a grey floor."""
    n = factors.shape[0]
    hue = factors[:, 0].float() / 10.0
    shape_factors = torch.stack([factors[:, 1] % 3, torch.ones(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)], 1)
    mask = draw_sprites(shape_factors, generator)                    # [N, 1, 64, 64]
    colour = torch.stack([hue, 1.0 - hue, 0.5 + 0.4 * (factors[:, 1] == 3).float()], dim=1)[:, :, None, None]
    floor = torch.full((n, 3, 64, 64), 0.3)
    return floor * (1 - mask) + colour * mask


def trial_config(model: str, **changes) -> TrialConfig:
    return TrialConfig(model=model, **changes)
