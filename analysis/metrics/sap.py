"""Separated Attribute Predictability (Kumar et al. 2018), as disentanglement_lib computes it."""
from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.svm import LinearSVC

from analysis.metrics._checks import as_random_state, check_train_test, require_dims, varying_factors


def _discrete_scores_for_factor(
    codes_train: np.ndarray, labels_train: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray, seed: int
) -> np.ndarray:
    """[D] test accuracy of a linear SVM on each single code dimension."""
    scores = np.empty(codes_train.shape[1])
    for dim in range(codes_train.shape[1]):
        classifier = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
        classifier.fit(codes_train[:, dim : dim + 1], labels_train)
        scores[dim] = np.mean(classifier.predict(codes_test[:, dim : dim + 1]) == labels_test)
    return scores


def continuous_score_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """[D, K] squared correlation between each code dimension and each factor (0 where a code
    dimension's variance is at most 1e-12)."""
    centred_codes = codes - codes.mean(axis=0)
    centred_factors = factors - factors.mean(axis=0)
    ddof = codes.shape[0] - 1
    covariance = centred_codes.T @ centred_factors / ddof
    code_variance = np.square(centred_codes).sum(axis=0) / ddof
    factor_variance = np.square(centred_factors).sum(axis=0) / ddof
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.square(covariance) / (code_variance[:, None] * factor_variance[None, :])
    return np.where(code_variance[:, None] > 1e-12, scores, 0.0)


def top_two_gap(score_matrix: np.ndarray) -> float:
    """Mean over factors (columns) of the gap between the two largest scores."""
    ordered = np.sort(score_matrix, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def sap(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    *,
    continuous_factors: bool = False,
    random_state,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """SAP score: for each (code dimension, factor) a predictability score, then the mean over
    factors of the gap between the two best dimensions.

    Discrete factors (the default): the score is the test accuracy of a ``LinearSVC(C=0.01,
    class_weight="balanced")`` fitted on that single raw dimension of the training codes.
    ``continuous_factors=True``: the squared correlation on the training set (the test set is unused).
    Constant factors are skipped with a warning. ``n_jobs`` fits factors in parallel (joblib).
    """
    seed = int(as_random_state(random_state).randint(np.iinfo(np.int32).max))
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    require_dims(codes_train, 2, "sap")
    kept = varying_factors(factors_train, "sap")
    factors_train, factors_test = factors_train[:, kept], factors_test[:, kept]
    if continuous_factors:
        score_matrix = continuous_score_matrix(codes_train, factors_train.astype(np.float64))
    else:
        columns = Parallel(n_jobs=n_jobs)(
            delayed(_discrete_scores_for_factor)(
                codes_train, factors_train[:, k], codes_test, factors_test[:, k], seed
            )
            for k in range(factors_train.shape[1])
        )
        score_matrix = np.stack(columns, axis=1)
    return {"sap": top_two_gap(score_matrix)}
