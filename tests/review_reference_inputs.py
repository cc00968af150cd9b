"""The seeded inputs on which tests/data/review_reference.json records the metrics review's reference code
(ubisoft-laforge-disentanglement-metrics); ``tests/test_metrics_review_reference.py`` scores the same inputs."""
from __future__ import annotations

import numpy as np


def _factors(rng: np.random.RandomState, sizes, num_points: int) -> np.ndarray:
    return np.stack([rng.randint(size, size=num_points) for size in sizes], axis=1)


def _scaled(factors: np.ndarray, sizes) -> np.ndarray:
    return (factors + 0.5) / np.asarray(sizes, dtype=float)


def review_reference_inputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (codes float [N, D], factors int [N, K]); 3-5 factors of different sizes, 500-1000 points."""
    out = {}
    rng = np.random.RandomState(0)
    factors = _factors(rng, (3, 5, 8), 600)
    out["perfect"] = (factors.astype(np.float64), factors)

    rng = np.random.RandomState(1)
    sizes = (2, 4, 6, 10)
    factors = _factors(rng, sizes, 1000)
    rotation = np.linalg.qr(rng.randn(4, 4))[0]
    codes = (_scaled(factors, sizes) + 0.05 * rng.randn(1000, 4)) @ rotation
    out["rotated_noisy"] = (np.concatenate([codes, rng.randn(1000, 2)], axis=1), factors)

    rng = np.random.RandomState(2)
    factors = _factors(rng, (3, 4, 7), 500)
    out["noise"] = (rng.randn(500, 5), factors)

    # a constant dimension before informative ones, and a collapsed one (std 0.01 < Z-var's 0.05 threshold)
    rng = np.random.RandomState(3)
    sizes = (2, 3, 4, 5, 6)
    factors = _factors(rng, sizes, 800)
    codes = _scaled(factors, sizes) + 0.03 * rng.randn(800, 5)
    codes = np.concatenate([codes[:, :1], np.full((800, 1), 0.7), 0.01 * rng.randn(800, 1), codes[:, 1:]], axis=1)
    out["constant_dim"] = (codes, factors)
    return out
