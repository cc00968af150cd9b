"""Disentanglement, Completeness and Informativeness (Eastwood & Williams 2018), as
disentanglement_lib computes them, plus a fast histogram-boosting variant."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from analysis.metrics._checks import as_random_state, check_train_test, varying_factors

DCI_METHODS = ("exact", "fast")
_SMOOTHING = 1e-11


@dataclass(frozen=True)
class FactorFit:
    """What one factor's classifier contributes: importances [D] and accuracies."""

    importances: np.ndarray
    train_accuracy: float
    test_accuracy: float


def _entropy_rows(probabilities: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row (normalised to sum 1) in log base ``base``, as ``scipy.stats.entropy``."""
    p = probabilities / probabilities.sum(axis=1, keepdims=True)
    return -np.sum(p * np.log(p), axis=1) / np.log(base)


def disentanglement_per_code(importance_matrix: np.ndarray) -> np.ndarray:
    """[D] 1 - entropy (base K) of each code's importances over factors, smoothed by +1e-11.
    With a single factor every code is trivially disentangled (1)."""
    num_factors = importance_matrix.shape[1]
    if num_factors == 1:
        return np.ones(importance_matrix.shape[0])
    return 1.0 - _entropy_rows(importance_matrix + _SMOOTHING, num_factors)


def completeness_per_factor(importance_matrix: np.ndarray) -> np.ndarray:
    """[K] 1 - entropy (base D) of each factor's importances over codes, smoothed by +1e-11.
    With a single code dimension every factor is trivially complete (1)."""
    num_codes = importance_matrix.shape[0]
    if num_codes == 1:
        return np.ones(importance_matrix.shape[1])
    return 1.0 - _entropy_rows(importance_matrix.T + _SMOOTHING, num_codes)


def _weights(importance_matrix: np.ndarray, axis: int) -> np.ndarray:
    if importance_matrix.sum() == 0.0:  # nothing is important: weigh uniformly
        importance_matrix = np.ones_like(importance_matrix)
    return importance_matrix.sum(axis=axis) / importance_matrix.sum()


def disentanglement_score(importance_matrix: np.ndarray) -> float:
    """Per-code disentanglement weighted by each code's share of the total importance."""
    importance_matrix = np.asarray(importance_matrix, dtype=np.float64)
    return float(np.sum(disentanglement_per_code(importance_matrix) * _weights(importance_matrix, 1)))


def completeness_score(importance_matrix: np.ndarray) -> float:
    """Per-factor completeness weighted by each factor's share of the total importance."""
    importance_matrix = np.asarray(importance_matrix, dtype=np.float64)
    return float(np.sum(completeness_per_factor(importance_matrix) * _weights(importance_matrix, 0)))


def _fit_exact(codes_train, labels_train, codes_test, labels_test, seed: int) -> FactorFit:
    model = GradientBoostingClassifier(random_state=seed).fit(codes_train, labels_train)
    return FactorFit(
        importances=np.abs(model.feature_importances_),
        train_accuracy=float(np.mean(model.predict(codes_train) == labels_train)),
        test_accuracy=float(np.mean(model.predict(codes_test) == labels_test)),
    )


# The fast variant: histogram gradient boosting (features binned into at most 255 quantile bins,
# trees grown on histograms, all in compiled code), with split gains summed per feature as the
# importance. Settings chosen for agreement with the exact DCI; see docs/metrics.md.
FAST_BOOSTING_PARAMS = dict(
    max_iter=100,
    learning_rate=0.1,
    max_leaf_nodes=8,
    min_samples_leaf=1,
    early_stopping=False,
)


def hist_gradient_boosting_importances(model: HistGradientBoostingClassifier, num_features: int) -> np.ndarray:
    """[D] total split gain of each feature over every tree of a fitted model, normalised to sum 1
    (zeros if no tree split)."""
    importances = np.zeros(num_features)
    for trees_of_iteration in model._predictors:
        for tree in trees_of_iteration:
            splits = tree.nodes[tree.nodes["is_leaf"] == 0]
            np.add.at(importances, splits["feature_idx"], splits["gain"])
    total = importances.sum()
    return importances / total if total > 0 else importances


def _fit_fast(codes_train, labels_train, codes_test, labels_test, seed: int) -> FactorFit:
    model = HistGradientBoostingClassifier(random_state=seed, **FAST_BOOSTING_PARAMS)
    model.fit(codes_train, labels_train)
    return FactorFit(
        importances=hist_gradient_boosting_importances(model, codes_train.shape[1]),
        train_accuracy=float(np.mean(model.predict(codes_train) == labels_train)),
        test_accuracy=float(np.mean(model.predict(codes_test) == labels_test)),
    )


def dci_importance(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    *,
    random_state,
    method: str = "exact",
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Importance matrix [D, K'] and per-factor train / test accuracies [K'] over the K' varying
    factors (constant factors are skipped with a warning)."""
    if method not in DCI_METHODS:
        raise ValueError(f"dci method must be one of {DCI_METHODS}, got {method!r}")
    seed = int(as_random_state(random_state).randint(np.iinfo(np.int32).max))
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    kept = varying_factors(factors_train, "dci")
    fit = _fit_exact if method == "exact" else _fit_fast
    # Factors with many classes cost the most: start them first so the workers stay balanced.
    order = sorted(kept, key=lambda k: -np.unique(factors_train[:, k]).size)
    fits = Parallel(n_jobs=n_jobs)(
        delayed(fit)(codes_train, factors_train[:, k], codes_test, factors_test[:, k], seed) for k in order
    )
    by_factor = dict(zip(order, fits))
    fits = [by_factor[k] for k in kept]
    importance_matrix = np.stack([f.importances for f in fits], axis=1)
    train_accuracy = np.array([f.train_accuracy for f in fits])
    test_accuracy = np.array([f.test_accuracy for f in fits])
    return importance_matrix, train_accuracy, test_accuracy


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    *,
    random_state,
    method: str = "exact",
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (train and test accuracy).

    ``method="exact"``: one ``GradientBoostingClassifier`` (default settings, ``random_state`` drawn
    from ``random_state``) per factor on the raw codes; importances = ``feature_importances_``.
    ``method="fast"``: a ``HistGradientBoostingClassifier`` per factor with split-gain importances
    (agreement with the exact method is measured in docs/metrics.md and tested).
    ``n_jobs``: factors fitted in parallel by joblib (None = one process, -1 = all cores).
    """
    importance_matrix, train_accuracy, test_accuracy = dci_importance(
        codes_train,
        factors_train,
        codes_test,
        factors_test,
        random_state=random_state,
        method=method,
        n_jobs=n_jobs,
    )
    return {
        "disentanglement": disentanglement_score(importance_matrix),
        "completeness": completeness_score(importance_matrix),
        "informativeness_train": float(np.mean(train_accuracy)),
        "informativeness_test": float(np.mean(test_accuracy)),
    }
