"""Image grids of a trained model, as uint8 RGB arrays [H, W, 3], and a PNG writer.

- ``reconstruction_grid(model, dataset, n, seed)``: two rows, ``n`` seeded test images above their
  reconstructions.
- ``prior_means_grid(model)``: the decoded mean of every mixture component, row-major in the
  order of ``component_factors``; above ``max_components`` components (shapes3d:v5's 12,000) one
  factor varied at a time instead: one row per factor, the others held at their first value. For
  M-AE (one mixture per factor) a code is the concatenation of one component mean per factor
  partition: all combinations when there are at most ``max_images`` of them, otherwise one factor
  varied at a time.
- ``relation_grid(model, dataset, n, seed)``: one row per seeded test image: the input, its
  reconstruction, then the decoding of each relation applied once to its code (columns in the
  order of ``model.relations``). For binary relations (HWF, Figure 9): one row per seeded pair of
  test digits a, b: a, b, then the decoding of ReL(z_a, z_b, r) for each relation ("2 + 3 -> 5").
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from trainables.errors import WeakdisError
from trainables.models.capabilities import HasMixturePrior, HasRelationalLearner

PAD = 2


def tile(images: torch.Tensor | np.ndarray, columns: int, pad: int = PAD) -> np.ndarray:
    """Images [N, C, H, W] in [0, 1] (C = 1 or 3) -> one uint8 RGB grid with ``columns`` columns."""
    array = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"tile: expected images of shape [N, 1 or 3, H, W], got {array.shape}")
    n, channels, height, width = array.shape
    columns = max(1, min(columns, n)) if n else 1
    rows = max(1, -(-n // columns))
    grid = np.ones((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        grid[y:y + height, x:x + width] = np.clip(array[i], 0, 1).transpose(1, 2, 0)
    return np.round(grid * 255).astype(np.uint8)


def save_png(grid: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 [H, W, 3] grid as a PNG file."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(target, grid)
    return target


def _test_images(dataset: Any, n: int, seed: int) -> torch.Tensor:
    test = dataset.splits["test"]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(test), generator=generator)[: min(n, len(test))]
    return dataset.batch(test.cpu()[order].to(dataset.images.device))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruction_grid(model: torch.nn.Module, dataset: Any, n: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` test images (top row) and their reconstructions (bottom row)."""
    x = _test_images(dataset, n, seed).to(_device(model))
    return tile(torch.cat([x, model.reconstruct(x).float()]), columns=len(x))


def _one_factor_at_a_time(sizes: Sequence[int], base: Sequence[int]) -> tuple[list[tuple[int, ...] | None], int]:
    """One row per factor, that factor's values in turn and the others at ``base``; rows padded
    with None (a blank tile) to the largest factor's size, which is the number of columns."""
    columns = max(sizes)
    choices: list[tuple[int, ...] | None] = []
    for factor, size in enumerate(sizes):
        choices += [tuple(v if k == factor else int(base[k]) for k in range(len(sizes))) for v in range(size)]
        choices += [None] * (columns - size)
    return choices, columns


def _prior_codes(prior: Any, max_images: int, max_components: int) -> tuple[list[torch.Tensor | None], int]:
    """(a code [D] or None for a blank tile, per tile; columns) to decode for ``prior_means_grid``."""
    if getattr(prior, "priors", None) is not None:   # a modular prior: one mixture per partition
        means = [torch.as_tensor(p.means).float() for p in prior.priors]
        slices: Sequence[slice] = prior.slices
        width = max(s.stop for s in slices)
        counts = [len(m) for m in means]
        if int(np.prod(counts)) <= max_images:
            choices: list[tuple[int, ...] | None] = list(itertools.product(*(range(c) for c in counts)))
            columns = counts[-1]
        else:
            choices, columns = _one_factor_at_a_time(counts, [0] * len(counts))
        codes: list[torch.Tensor | None] = []
        for choice in choices:
            code = None
            if choice is not None:
                code = torch.zeros(width)
                for factor, value in enumerate(choice):
                    code[slices[factor]] = means[factor][value]
            codes.append(code)
        return codes, columns
    means = torch.as_tensor(prior.means).float()
    if getattr(prior, "component_factors", None) is None:
        return list(means), len(means)
    factors = np.asarray(torch.as_tensor(prior.component_factors).cpu())
    sizes = factors.max(0) + 1
    if len(means) <= max_components:
        return list(means), int(sizes[-1])
    index = {tuple(row): c for c, row in enumerate(factors.tolist())}
    choices, columns = _one_factor_at_a_time(sizes.tolist(), factors[0])
    return [None if choice is None else means[index[choice]] for choice in choices], columns


@torch.no_grad()
def prior_means_grid(model: torch.nn.Module, max_images: int = 64, max_components: int = 2048) -> np.ndarray:
    """The decoded mean of each prior component (see the module docstring for large mixtures and M-AE)."""
    prior = model.prior if isinstance(model, HasMixturePrior) else None
    if prior is None:
        raise WeakdisError(f"prior_means_grid: model {type(model).__name__} has no mixture prior")
    codes, columns = _prior_codes(prior, max_images, max_components)
    device = _device(model)
    present = [code for code in codes if code is not None]
    decoded = torch.cat([torch.sigmoid(model.decode(chunk.to(device)).float()).cpu()
                         for chunk in torch.stack(present).split(256)])
    tiles = torch.ones(len(codes), *decoded.shape[1:])                # blank tiles: the grid's white
    tiles[[i for i, code in enumerate(codes) if code is not None]] = decoded
    return tile(tiles, columns=columns)


@torch.no_grad()
def relation_grid(model: torch.nn.Module, dataset: Any, n: int = 4, seed: int = 0) -> np.ndarray:
    """Rows: input, reconstruction, then each relation of ``model.relations`` applied once."""
    if not isinstance(model, HasRelationalLearner) or not model.relations:
        raise WeakdisError(f"relation_grid: model {type(model).__name__} has no relational learner")
    device = _device(model)
    if getattr(model, "relation_arity", 1) == 2:
        return _binary_relation_grid(model, dataset, n, seed, device)
    x = _test_images(dataset, n, seed).to(device)
    z = model.encode(x)
    columns = [x, torch.sigmoid(model.decode(z).float())]
    for index in range(len(model.relations)):
        relation = torch.full((len(x),), index, dtype=torch.int64, device=device)
        columns.append(torch.sigmoid(model.decode(model.relational_model(z, relation)).float()))
    stacked = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: one row per input image
    return tile(stacked, columns=len(columns))


@torch.no_grad()
def factor_interpolation_grid(model: torch.nn.Module, dataset: Any, n: int = 4, steps: int = 8,
                              seed: int = 0) -> np.ndarray:
    """The explicit-disentanglement paper's Figure 2: one row per seeded test pair (x, x') that
    differs only in the chosen factor (``dataset.paired_batch``): x, then the decodings of x's z with
    y moved linearly from y(x) to y(x') in ``steps`` steps, then x'. Only the factor should change
    along a row. For models with a factored code (``config.latent_dim`` z dimensions first)."""
    device = _device(model)
    test = dataset.splits["test"]
    generator = torch.Generator(device=dataset.images.device).manual_seed(seed)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[: min(n, len(test))]
    x, x_pair = (t.to(device) for t in dataset.paired_batch(test.cpu()[order].to(test.device), None, generator))
    code, code_pair = model.encode(x), model.encode(x_pair)
    latent = model.config.latent_dim
    weights = torch.linspace(0, 1, steps, device=device)
    rows = []
    for i in range(len(x)):
        codes = code[i].repeat(steps, 1)
        codes[:, latent:] = (1 - weights[:, None]) * code[i, latent:] + weights[:, None] * code_pair[i, latent:]
        decoded = torch.sigmoid(model.decode(codes).float())
        rows.append(torch.cat([x[i:i + 1], decoded, x_pair[i:i + 1]]))
    return tile(torch.cat(rows), columns=steps + 2)


def _binary_relation_grid(model: torch.nn.Module, dataset: Any, n: int, seed: int, device) -> np.ndarray:
    test = dataset.splits["test"].cpu()
    digits = test[(dataset.factors.cpu()[test, 0] < 10)]
    generator = torch.Generator().manual_seed(seed)
    pick = digits[torch.randint(len(digits), (2, n), generator=generator)]
    a, b = (dataset.batch(p.to(dataset.images.device)).to(device) for p in pick)
    z_a, z_b = model.encode(a), model.encode(b)
    columns = [a, b]
    for index in range(len(model.relations)):
        relation = torch.full((n,), index, dtype=torch.int64, device=device)
        columns.append(torch.sigmoid(model.decode(model.relational_model(z_a, relation, z_b)).float()))
    return tile(torch.stack(columns, dim=1).flatten(0, 1), columns=len(columns))
