"""Mutual Information Gap (Chen et al. 2018), as disentanglement_lib computes it."""
from __future__ import annotations

import numpy as np

from analysis.metrics._checks import as_random_state, check_pair, require_dims, varying_factors
from analysis.metrics.information import (
    discrete_entropy,
    discrete_mutual_information,
    histogram_discretize,
)


def mutual_information_gap(mutual_information: np.ndarray, entropies: np.ndarray) -> np.ndarray:
    """[K] gap between the two largest entries of each column of ``mutual_information`` [D, K],
    divided by the factor's entropy."""
    top_two = -np.sort(-mutual_information, axis=0)[:2]
    return (top_two[0] - top_two[1]) / entropies


def mig(codes, factors, *, num_bins: int = 20, random_state) -> dict[str, float]:
    """MIG of ``codes`` [N, D] for ``factors`` [N, K] (integer classes).

    Each code dimension is discretised into ``num_bins`` equal-width bins over its own range; the
    discrete mutual information (nats) with each factor is computed; for each factor the gap between
    the two most informative dimensions is divided by the factor's entropy; the result is the mean
    over factors. Constant factors (zero entropy) are skipped with a warning. Deterministic:
    ``random_state`` is accepted for a uniform signature and not used.
    """
    as_random_state(random_state)
    codes, factors = check_pair(codes, factors)
    require_dims(codes, 2, "mig")
    factors = factors[:, varying_factors(factors, "mig")]
    mutual_information = discrete_mutual_information(histogram_discretize(codes, num_bins), factors)
    gaps = mutual_information_gap(mutual_information, discrete_entropy(factors))
    return {"mig": float(np.mean(gaps))}
