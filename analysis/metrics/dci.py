"""Disentanglement, Completeness and Informativeness (Eastwood & Williams 2018), as
disentanglement_lib computes them, plus a fast histogram-boosting variant."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

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


# The fast variant: histogram gradient boosting (codes binned into at most 255 quantile bins, trees
# grown on histograms in compiled code) with trees shaped like GradientBoostingClassifier's (depth 3,
# no leaf-size limit, no L2 penalty, 100 iterations at learning rate 0.1). Its split gains are
# Newton (hessian-weighted) gains, which weigh splits differently from the exact importances, so
# the importances are recomputed as the exact method defines them: for every split, the decrease in
# squared error of the residuals (y - p) the tree was fitted to, replayed iteration by iteration.
FAST_BOOSTING_PARAMS = dict(
    max_iter=100,
    learning_rate=0.1,
    max_depth=3,
    max_leaf_nodes=None,
    min_samples_leaf=1,
    l2_regularization=0.0,
    early_stopping=False,
)


def _stacked_trees(trees) -> dict[str, np.ndarray]:
    """The nodes of one iteration's trees (one per class) as flat arrays with global indices; a
    leaf's children are itself, so routing can run a fixed number of levels."""
    sizes = [tree.nodes.size for tree in trees]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    nodes = np.concatenate([tree.nodes for tree in trees])
    tree_offset = np.repeat(offsets, sizes)
    is_leaf = nodes["is_leaf"].astype(bool)
    own_index = np.arange(nodes.size, dtype=np.intp)
    return {
        "roots": offsets,
        "is_leaf": is_leaf,
        "feature": np.where(is_leaf, 0, nodes["feature_idx"]).astype(np.intp),
        "threshold": np.where(is_leaf, np.inf, nodes["num_threshold"]),
        "left": np.where(is_leaf, own_index, nodes["left"].astype(np.intp) + tree_offset),
        "right": np.where(is_leaf, own_index, nodes["right"].astype(np.intp) + tree_offset),
        "depth": nodes["depth"].astype(np.intp),
        "value": nodes["value"].astype(np.float64),
    }


def replayed_importances(model: HistGradientBoostingClassifier, codes: np.ndarray, labels: np.ndarray):
    """[D] squared-error decrease of the fitted residuals per feature, summed over every split of a
    fitted model's trees and normalised to sum 1 (zeros if no tree split), and the training
    predictions [N] (the argmax of the replayed raw scores)."""
    classes = model.classes_
    num_points, num_features = codes.shape
    binary = model.n_trees_per_iteration_ == 1
    targets = (labels[:, None] == (classes[None, 1:] if binary else classes[None, :])).astype(np.float64)
    raw = np.tile(np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, -1), (num_points, 1))
    rows = np.arange(num_points)[:, None]
    importances = np.zeros(num_features)
    for trees in model._predictors:
        if binary:
            residuals = targets - 1.0 / (1.0 + np.exp(-raw))
        else:
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            residuals = targets - shifted / shifted.sum(axis=1, keepdims=True)
        tree = _stacked_trees(trees)
        node = np.broadcast_to(tree["roots"], residuals.shape)  # [N, trees]
        for _ in range(int(tree["depth"].max())):
            go_left = codes[rows, tree["feature"][node]] <= tree["threshold"][node]
            node = np.where(go_left, tree["left"][node], tree["right"][node])
        raw += tree["value"][node]
        num_nodes = tree["is_leaf"].size
        sums = np.bincount(node.ravel(), residuals.ravel(), minlength=num_nodes)
        counts = np.bincount(node.ravel(), minlength=num_nodes).astype(np.float64)
        splits = np.flatnonzero(~tree["is_leaf"])
        for depth in np.unique(tree["depth"][splits])[::-1]:  # children before parents
            level = splits[tree["depth"][splits] == depth]
            sums[level] = sums[tree["left"][level]] + sums[tree["right"][level]]
            counts[level] = counts[tree["left"][level]] + counts[tree["right"][level]]
        left, right = tree["left"][splits], tree["right"][splits]
        with np.errstate(divide="ignore", invalid="ignore"):
            decrease = (
                sums[left] ** 2 / counts[left] + sums[right] ** 2 / counts[right] - sums[splits] ** 2 / counts[splits]
            )
        importances += np.bincount(tree["feature"][splits], np.nan_to_num(decrease), minlength=num_features)
    total = importances.sum()
    predicted = classes[(raw[:, 0] > 0).astype(int)] if binary else classes[np.argmax(raw, axis=1)]
    return (importances / total if total > 0 else importances), predicted


def _fit_fast(codes_train, labels_train, codes_test, labels_test, seed: int) -> FactorFit:
    model = HistGradientBoostingClassifier(random_state=seed, **FAST_BOOSTING_PARAMS)
    # One thread per fit: factors already run in parallel, and OpenMP threads that wait on each
    # other on a busy machine cost more than they save.
    with threadpool_limits(1):
        model.fit(codes_train, labels_train)
    importances, predicted_train = replayed_importances(model, codes_train, labels_train)
    return FactorFit(
        importances=importances,
        train_accuracy=float(np.mean(predicted_train == labels_train)),
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
    ``method="fast"``: a ``HistGradientBoostingClassifier`` per factor with GBC-shaped trees, the
    importances replayed as the exact method defines them (squared-error decrease of the fitted
    residuals); agreement with the exact method is measured in docs/metrics.md and tested.
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
