"""Histogram discretisation and discrete mutual information (the basis of MIG and modularity)."""
from __future__ import annotations

import numpy as np

from analysis.metrics._checks import check_codes, check_factors


def histogram_edges(codes: np.ndarray, num_bins: int) -> np.ndarray:
    """[D, num_bins + 1] equal-width bin edges over each dimension's own range, as ``np.histogram``
    makes them (a constant dimension gets the range [value - 0.5, value + 0.5])."""
    low, high = codes.min(axis=0), codes.max(axis=0)
    constant = low == high
    low = np.where(constant, low - 0.5, low)
    high = np.where(constant, high + 0.5, high)
    return np.linspace(low, high, num_bins + 1, axis=1)


def histogram_discretize(codes, num_bins: int = 20) -> np.ndarray:
    """Bin each code dimension into ``num_bins`` equal-width bins over its own range.

    Returns int64 [N, D] with values in 1..num_bins: the index ``np.digitize`` gives against the
    left edges (a value on an inner edge goes to the bin on its right; the maximum to the last bin).
    """
    codes = check_codes(codes)
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    edges = histogram_edges(codes, int(num_bins))
    binned = np.empty(codes.shape, dtype=np.int64)
    for dim in range(codes.shape[1]):
        binned[:, dim] = np.searchsorted(edges[dim, :-1], codes[:, dim], side="right")
    return binned


def _dense_labels(column: np.ndarray) -> tuple[np.ndarray, int]:
    values, inverse = np.unique(column, return_inverse=True)
    return inverse.reshape(-1), values.size


def discrete_entropy(factors) -> np.ndarray:
    """[K] entropy in nats of each factor column's empirical distribution."""
    factors = check_factors(factors)
    entropies = np.empty(factors.shape[1])
    for k, column in enumerate(factors.T):
        counts = np.unique(column, return_counts=True)[1]
        p = counts / column.size
        entropies[k] = -np.sum(p * np.log(p))
    return np.maximum(entropies, 0.0)


def discrete_mutual_information(discrete_codes, factors) -> np.ndarray:
    """[D, K] mutual information in nats between each discrete code column and each factor column.

    One joint histogram per factor covers every code dimension at once (a single ``bincount``).
    """
    discrete_codes = check_factors(discrete_codes, "discrete_codes")
    factors = check_factors(factors)
    if discrete_codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"discrete_codes has {discrete_codes.shape[0]} rows but factors has {factors.shape[0]}"
        )
    num_points, num_dims = discrete_codes.shape
    dense = [_dense_labels(column) for column in discrete_codes.T]
    code_labels = np.stack([labels for labels, _ in dense], axis=1)  # [N, D]
    num_code_values = max(size for _, size in dense)
    offsets = np.arange(num_dims) * num_code_values
    mutual_information = np.zeros((num_dims, factors.shape[1]))
    for k, column in enumerate(factors.T):
        factor_labels, num_factor_values = _dense_labels(column)
        flat = (code_labels + offsets) * num_factor_values + factor_labels[:, None]
        joint = np.bincount(flat.reshape(-1), minlength=num_dims * num_code_values * num_factor_values)
        joint = joint.reshape(num_dims, num_code_values, num_factor_values) / num_points
        p_code = joint.sum(axis=2, keepdims=True)
        p_factor = joint.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / (p_code * p_factor)), 0.0)
        terms[np.abs(terms) < np.finfo(float).eps] = 0.0
        mutual_information[:, k] = np.clip(terms.sum(axis=(1, 2)), 0.0, None)
    return mutual_information
