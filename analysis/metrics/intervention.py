"""Intervention-based scores: the beta-VAE metric (Higgins et al. 2017) and the FactorVAE metric
(Kim & Mnih 2018), as disentanglement_lib computes them.

Both draw from a ground-truth dataset (see ``analysis.metrics.sampling``) in exactly
disentanglement_lib's order of random draws, but encode many training samples per ``encode`` call
(the encoder must map each row independently, e.g. a network in eval mode), which gives the same
numbers in far fewer calls.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from analysis.metrics._checks import _to_numpy, as_random_state, check_codes
from analysis.metrics.sampling import GroundTruthDataset

ENCODE_ROWS = 1024  # observations per encode call when batching the samples


def _encode(encode: Callable[[Any], Any], observations: np.ndarray) -> np.ndarray:
    codes = check_codes(_to_numpy(encode(observations)), "encode(observations)")
    if codes.shape[0] != len(observations):
        raise ValueError(f"encode returned {codes.shape[0]} rows for {len(observations)} observations")
    return codes


def _encode_in_chunks(encode, observations: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [_encode(encode, observations[start : start + ENCODE_ROWS]) for start in range(0, len(observations), ENCODE_ROWS)]
    )


def _check_sizes(batch_size: int, **counts: int) -> None:
    if int(batch_size) < 2:
        raise ValueError(f"batch_size must be at least 2 (a variance needs two points), got {batch_size}")
    for name, value in counts.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive number of points, got {value}")


def _samples_per_chunk(batch_size: int, observations_per_sample: int) -> int:
    return max(1, ENCODE_ROWS // (batch_size * observations_per_sample))


def _factor_vae_votes(
    dataset: GroundTruthDataset,
    encode,
    batch_size: int,
    num_points: int,
    random_state: np.random.RandomState,
    global_variances: np.ndarray,
    active_dims: np.ndarray,
) -> np.ndarray:
    """[K, D] votes: how often fixing factor k made dimension d the least (relative) variant one."""
    num_factors = len(dataset.factor_sizes)
    active_index = np.flatnonzero(active_dims)
    votes = np.zeros((num_factors, global_variances.size), dtype=np.int64)
    chunk = _samples_per_chunk(batch_size, 1)
    for start in range(0, num_points, chunk):
        fixed, observations = [], []
        for _ in range(min(chunk, num_points - start)):
            factor_index = random_state.randint(num_factors)
            factors = np.array(dataset.sample_factors(batch_size, random_state))
            factors[:, factor_index] = factors[0, factor_index]
            fixed.append(factor_index)
            observations.append(_to_numpy(dataset.sample_observations_from_factors(factors, random_state)))
        codes = _encode(encode, np.concatenate(observations)).reshape(len(fixed), batch_size, -1)
        local_variances = np.var(codes[:, :, active_index], axis=1, ddof=1)
        least = active_index[np.argmin(local_variances / global_variances[active_index], axis=1)]
        np.add.at(votes, (np.array(fixed), least), 1)
    return votes


def _majority_vote_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def factor_vae_score(
    dataset: GroundTruthDataset,
    encode: Callable[[Any], Any],
    *,
    random_state,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE metric: majority-vote accuracy of predicting the fixed factor from the code
    dimension with the least variance (relative to its global variance) in a batch where that factor
    is fixed. Dimensions whose global standard deviation is below ``prune_threshold`` are pruned;
    if all are, every score is 0. ``num_active_dims`` counts the dimensions kept (disentanglement_lib
    reports the total number of dimensions there, a known slip)."""
    random_state = as_random_state(random_state)
    _check_sizes(batch_size, num_train=num_train, num_eval=num_eval, num_variance_estimate=num_variance_estimate)
    factors = np.asarray(dataset.sample_factors(num_variance_estimate, random_state))
    observations = _to_numpy(dataset.sample_observations_from_factors(factors, random_state))
    global_variances = np.var(_encode_in_chunks(encode, observations), axis=0, ddof=1)
    active_dims = np.sqrt(global_variances) >= prune_threshold
    if not active_dims.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train_votes = _factor_vae_votes(
        dataset, encode, batch_size, num_train, random_state, global_variances, active_dims
    )
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = _factor_vae_votes(dataset, encode, batch_size, num_eval, random_state, global_variances, active_dims)
    return {
        "train_accuracy": _majority_vote_accuracy(train_votes, classifier),
        "eval_accuracy": _majority_vote_accuracy(eval_votes, classifier),
        "num_active_dims": int(active_dims.sum()),
    }


def _beta_vae_points(
    dataset: GroundTruthDataset, encode, batch_size: int, num_points: int, random_state: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Features [num_points, D] (mean absolute code difference of pairs sharing one factor) and the
    shared factor's index [num_points]."""
    num_factors = len(dataset.factor_sizes)
    labels = np.empty(num_points, dtype=np.int64)
    features = []
    chunk = _samples_per_chunk(batch_size, 2)
    for start in range(0, num_points, chunk):
        observations = []
        count = min(chunk, num_points - start)
        for offset in range(count):
            index = random_state.randint(num_factors)
            factors_first = np.array(dataset.sample_factors(batch_size, random_state))
            factors_second = np.array(dataset.sample_factors(batch_size, random_state))
            factors_second[:, index] = factors_first[:, index]
            observations.append(_to_numpy(dataset.sample_observations_from_factors(factors_first, random_state)))
            observations.append(_to_numpy(dataset.sample_observations_from_factors(factors_second, random_state)))
            labels[start + offset] = index
        codes = _encode(encode, np.concatenate(observations)).reshape(count, 2, batch_size, -1)
        features.append(np.mean(np.abs(codes[:, 0] - codes[:, 1]), axis=1))
    return np.concatenate(features), labels


def beta_vae_score(
    dataset: GroundTruthDataset,
    encode: Callable[[Any], Any],
    *,
    random_state,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
) -> dict[str, float]:
    """beta-VAE metric: accuracy of a default LogisticRegression predicting which factor a batch of
    pairs shares from the mean absolute difference of their codes (train and held-out eval)."""
    random_state = as_random_state(random_state)
    _check_sizes(batch_size, num_train=num_train, num_eval=num_eval)
    train_points, train_labels = _beta_vae_points(dataset, encode, batch_size, num_train, random_state)
    model = LogisticRegression(random_state=random_state)
    with warnings.catch_warnings():
        # The definition uses LogisticRegression's defaults (100 lbfgs iterations) as they are.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_points, train_labels)
    train_accuracy = float(np.mean(model.predict(train_points) == train_labels))
    eval_points, eval_labels = _beta_vae_points(dataset, encode, batch_size, num_eval, random_state)
    return {"train_accuracy": train_accuracy, "eval_accuracy": float(model.score(eval_points, eval_labels))}
