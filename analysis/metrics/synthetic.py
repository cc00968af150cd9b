"""Seeded synthetic codes of known structure over a factor grid, for tests and benchmarks."""
from __future__ import annotations

import numpy as np

from analysis.metrics._checks import as_random_state

SYNTHETIC_KINDS = ("disentangled", "mixed", "entangled", "noisy", "factor_values")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES3D_FACTOR_SIZES = (10, 10, 10, 8, 4, 15)


def synthetic_codes(
    kind: str, factor_sizes, num_points: int, *, random_state, num_collapsed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """``(codes [N, D], factors int [N, K])`` with factors drawn uniformly from the grid.

    - ``disentangled``: code k = factor k scaled to [0, 1] plus N(0, 0.03) noise, then
      ``num_collapsed`` near-constant dimensions (N(0, 0.02), like a VAE's collapsed units);
    - ``mixed``: as disentangled with dimensions (0, 1) and (2, 3) rotated by 0.5 rad;
    - ``entangled``: as disentangled, all dimensions rotated by a random orthogonal matrix;
    - ``noisy``: as disentangled with N(0, 0.15) noise (factors hard to recover);
    - ``factor_values``: the factor values themselves (an AbsAE / M-AE representation after
      ``codes_to_factors``) with 5% of the rows replaced by random values.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind must be one of {SYNTHETIC_KINDS}, got {kind!r}")
    rng = as_random_state(random_state)
    sizes = np.asarray(factor_sizes)
    factors = np.stack([rng.randint(size, size=num_points) for size in sizes], axis=1)
    if kind == "factor_values":
        codes = factors.astype(np.float64)
        wrong = rng.uniform(size=num_points) < 0.05
        codes[wrong] = np.stack([rng.randint(size, size=int(wrong.sum())) for size in sizes], axis=1)
        return codes, factors
    noise = 0.15 if kind == "noisy" else 0.03
    values = (factors + 0.5) / sizes + noise * rng.randn(num_points, sizes.size)
    codes = np.concatenate([values, 0.02 * rng.randn(num_points, num_collapsed)], axis=1)
    if kind == "mixed":
        rotation = np.eye(codes.shape[1])
        c, s = np.cos(0.5), np.sin(0.5)
        for first in (0, 2):
            rotation[first : first + 2, first : first + 2] = [[c, -s], [s, c]]
        codes = codes @ rotation
    elif kind == "entangled":
        rotation, _ = np.linalg.qr(rng.randn(codes.shape[1], codes.shape[1]))
        codes = codes @ rotation
    return codes, factors
