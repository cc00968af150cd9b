"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from analysis.metrics._checks import as_random_state, check_train_test, varying_factors
from analysis.metrics.information import discrete_mutual_information, histogram_discretize


def modularity_from_mutual_information(mutual_information: np.ndarray) -> float:
    """Mean over code dimensions of 1 - (sum of the non-maximal squared MI) / ((K - 1) max squared MI).

    A dimension with no information about any factor scores 0. With a single factor every informative
    dimension is trivially modular and scores 1 (the formula would divide by K - 1 = 0).
    """
    squared = np.square(mutual_information)
    largest = squared.max(axis=1)
    num_factors = squared.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if num_factors > 1:
            per_dim = 1.0 - (squared.sum(axis=1) - largest) / (largest * (num_factors - 1.0))
        else:
            per_dim = np.ones_like(largest)
    per_dim[largest == 0.0] = 0.0
    return float(np.mean(per_dim))


def _macro_roc_auc(labels: np.ndarray, classes: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC over the classifier's classes that occur (and do not fill) ``labels``.

    Equal to disentanglement_lib's macro ROC-AUC on multilabel-binarised labels whenever every class
    is present; classes missing from ``labels`` (where AUC is undefined) are left out.
    """
    scores = []
    for column, value in enumerate(classes):
        positive = labels == value
        if 0 < positive.sum() < labels.size:
            scores.append(roc_auc_score(positive, probabilities[:, column]))
    return float(np.mean(scores)) if scores else float("nan")


def _explicitness_per_factor(
    codes_train: np.ndarray, labels_train: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray
) -> tuple[float, float]:
    with warnings.catch_warnings():
        # The definition uses LogisticRegression's defaults (100 lbfgs iterations) as they are.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression().fit(codes_train, labels_train)
    train = _macro_roc_auc(labels_train, classifier.classes_, classifier.predict_proba(codes_train))
    test = _macro_roc_auc(labels_test, classifier.classes_, classifier.predict_proba(codes_test))
    return train, test


def modularity_explicitness(
    codes_train, factors_train, codes_test, factors_test, *, num_bins: int = 20, random_state
) -> dict[str, float]:
    """Modularity (from the discrete MI of the binned training codes) and explicitness (mean ROC-AUC
    of one default LogisticRegression per factor on the standardised codes, train and test).

    Codes are standardised with the training mean and standard deviation; a constant training
    dimension is only centred (its std is taken as 1) instead of producing NaN. Constant factors
    are skipped with a warning. Deterministic: ``random_state`` is accepted and not used.
    """
    as_random_state(random_state)
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    kept = varying_factors(factors_train, "modularity_explicitness")
    factors_train, factors_test = factors_train[:, kept], factors_test[:, kept]
    mutual_information = discrete_mutual_information(
        histogram_discretize(codes_train, num_bins), factors_train
    )
    mean = codes_train.mean(axis=0)
    std = codes_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    normalised_train = (codes_train - mean) / std
    normalised_test = (codes_test - mean) / std
    scores = np.array(
        [
            _explicitness_per_factor(normalised_train, factors_train[:, k], normalised_test, factors_test[:, k])
            for k in range(factors_train.shape[1])
        ]
    )
    return {
        "modularity": modularity_from_mutual_information(mutual_information),
        "explicitness_train": float(np.mean(scores[:, 0])),
        "explicitness_test": float(np.mean(scores[:, 1])),
    }
