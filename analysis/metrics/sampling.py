"""Drawing points from a ground-truth dataset and encoding them in batches, as the study does.

A *ground-truth dataset* is any object with ``factor_sizes`` (values per factor),
``sample_factors(n, random_state) -> int [n, K]`` and
``sample_observations_from_factors(factors, random_state) -> observations [n, ...]``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from analysis.metrics._checks import _to_numpy, as_random_state


class GroundTruthDataset(Protocol):
    factor_sizes: Any

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray: ...

    def sample_observations_from_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> Any: ...


def _representation_array(output: Any, rows: int, name: str) -> np.ndarray:
    array = _to_numpy(output)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name} must return an array [batch, D] for a batch of {rows}, got shape {array.shape}")
    return array


def _stack(parts: list[Any]) -> Any:
    if isinstance(parts[0], Mapping):
        return {key: None if parts[0][key] is None else np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _collect(output: Any, rows: int) -> Any:
    if isinstance(output, Mapping):
        return {
            key: None if value is None else _representation_array(value, rows, f"represent()[{key!r}]")
            for key, value in output.items()
        }
    return _representation_array(output, rows, "represent")


def sample_points(
    dataset: GroundTruthDataset,
    represent: Callable[[Any], Any],
    num_points: int,
    random_state: np.random.RandomState,
    batch_size: int = 64,
) -> tuple[Any, np.ndarray]:
    """(representations [num_points, D], factors int [num_points, K]) drawn batch by batch: for each
    batch, ``sample_factors`` then ``sample_observations_from_factors`` then ``represent``."""
    if int(num_points) < 1 or int(batch_size) < 1:
        raise ValueError(f"num_points and batch_size must be positive, got {num_points} and {batch_size}")
    representations, factors = [], []
    for start in range(0, int(num_points), int(batch_size)):
        rows = min(int(batch_size), int(num_points) - start)
        batch_factors = np.asarray(dataset.sample_factors(rows, random_state))
        observations = dataset.sample_observations_from_factors(batch_factors, random_state)
        representations.append(_collect(represent(observations), rows))
        factors.append(batch_factors)
    return _stack(representations), np.concatenate(factors).astype(np.int64)


def sample_representations(
    dataset: GroundTruthDataset,
    represent: Callable[[Any], Any],
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    batch_size: int = 64,
    random_state,
) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """``(codes_train, factors_train, codes_test, factors_test)``: ``num_train`` then ``num_test``
    points from one random stream, encoded ``batch_size`` at a time.

    ``represent(observations)`` returns codes [batch, D] (numpy or torch), or a dict of them (e.g.
    ``{"factors": ..., "codes": ...}``, values may be None); then the codes come back as a dict of
    arrays with the same keys, so one pass encodes every representation.
    """
    random_state = as_random_state(random_state)
    codes_train, factors_train = sample_points(dataset, represent, num_train, random_state, batch_size)
    codes_test, factors_test = sample_points(dataset, represent, num_test, random_state, batch_size)
    return codes_train, factors_train, codes_test, factors_test
