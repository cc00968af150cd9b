"""Input checks shared by the metrics: shapes, dtypes, finiteness and seeds."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np



def as_random_state(random_state: Any) -> np.random.RandomState:
    """An int seed -> a fresh ``RandomState``; a ``RandomState`` is used (and advanced) as is."""
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise ValueError(
        f"random_state must be an int seed or a numpy RandomState, got {random_state!r}"
    )


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensors, without importing torch
        array = array.detach().cpu()
        if str(array.dtype) in ("torch.bfloat16", "torch.float16"):  # numpy has no bfloat16
            array = array.float()
        array = array.numpy()
    return np.asarray(array)


def check_codes(codes: Any, name: str = "codes") -> np.ndarray:
    """float64 [N, D], finite; the error names the first bad row."""
    array = _to_numpy(codes)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [num_points, num_dims], got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(array[row, col]) else "inf"
        raise ValueError(f"{name} contain {kind} at row {row} (dimension {col})")
    return array


def check_factors(factors: Any, name: str = "factors") -> np.ndarray:
    """int64 [N, K] of class indices (integer-valued floats are accepted)."""
    array = _to_numpy(factors)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array [num_points, num_factors] of class indices, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64, copy=False)
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} must hold integer class indices, got {array[row, col]!r} at row {row} (factor {col})"
            )
        return array.astype(np.int64)
    raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")


def check_pair(codes: Any, factors: Any, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    codes_name, factors_name = f"codes{suffix}", f"factors{suffix}"
    codes_array = check_codes(codes, codes_name)
    factors_array = check_factors(factors, factors_name)
    if codes_array.shape[0] != factors_array.shape[0]:
        raise ValueError(
            f"{codes_name} has {codes_array.shape[0]} rows but {factors_name} has {factors_array.shape[0]}"
        )
    return codes_array, factors_array


def check_train_test(
    codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    codes_train, factors_train = check_pair(codes_train, factors_train, "_train")
    codes_test, factors_test = check_pair(codes_test, factors_test, "_test")
    if codes_train.shape[1] != codes_test.shape[1]:
        raise ValueError(
            f"codes_train has {codes_train.shape[1]} dimensions but codes_test has {codes_test.shape[1]}"
        )
    if factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError(
            f"factors_train has {factors_train.shape[1]} factors but factors_test has {factors_test.shape[1]}"
        )
    return codes_train, factors_train, codes_test, factors_test


def varying_factors(factors: np.ndarray, metric: str) -> np.ndarray:
    """Indices of the factors that take more than one value.

    A constant factor carries no information (zero entropy; a classifier cannot be fitted on one
    class), so every metric skips it with a warning, and fails when no factor is left.
    """
    num_values = np.array([np.unique(column).size for column in factors.T])
    constant = np.flatnonzero(num_values < 2)
    if constant.size == factors.shape[1]:
        raise ValueError(
            f"{metric}: every factor is constant (a single value each); nothing to measure"
        )
    if constant.size:
        warnings.warn(
            f"{metric}: factor(s) {constant.tolist()} take a single value and are skipped",
            RuntimeWarning,
            stacklevel=3,
        )
    return np.flatnonzero(num_values >= 2)


def require_dims(codes: np.ndarray, minimum: int, metric: str) -> None:
    if codes.shape[1] < minimum:
        raise ValueError(
            f"{metric} needs codes with at least {minimum} dimensions (a gap between the two best), "
            f"got {codes.shape[1]}"
        )
