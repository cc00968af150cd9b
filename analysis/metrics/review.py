"""The twelve metrics of "Measuring Disentanglement: A Review of Metrics" (Zaidi et al., arXiv:2012.09276).

Every function is ``name(codes, factors, *, num_bins=10, random_state=None, ...) -> float`` with
``codes`` float [N, D] and ``factors`` integer class indices [N, K] (discrete factors: the review's
``continuous_factors=False``). As in the review, codes are min-max normalised per dimension and, for
the information-based metrics, cut into ``num_bins`` equal-width bins over [0, 1]; mutual
information and entropies are in bits. ``random_state=None`` means seed 0 (so that a results column
is reproducible); pass an int or a ``RandomState`` to choose. Constant factors are skipped with a
warning (a ``ValueError`` when none is left); constant code dimensions score as carrying no
information. Where the review's code departs from its equations these functions follow the
equations: docs/metrics.md ("The review's metrics") lists where.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import KFold, check_cv, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import minmax_scale
from sklearn.tree import DecisionTreeClassifier

from analysis.metrics._checks import as_random_state, check_pair, varying_factors
from analysis.metrics.information import discrete_entropy, discrete_mutual_information
from analysis.metrics.modularity import modularity_from_mutual_information

LN2 = math.log(2.0)
LASSO_ALPHAS = (0.0001, 0.001, 0.01, 0.1, 0.2, 0.4, 0.8, 1.0)


# ------------------------------------------------------------------------------------------ helpers

def _inputs(codes, factors, metric: str, random_state) -> tuple[np.ndarray, np.ndarray, np.random.RandomState]:
    rng = as_random_state(0 if random_state is None else random_state)
    codes, factors = check_pair(codes, factors)
    factors = factors[:, varying_factors(factors, metric)]
    return codes, factors, rng


def minmax_normalise(codes: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1]; a constant column becomes 0."""
    # scikit-learn's x * (1 / span) - low / span, as the review's code: (x - low) / span can round a
    # value that lies on a bin edge into the other bin.
    return minmax_scale(np.asarray(codes, dtype=np.float64))


def bin_codes(codes: np.ndarray, num_bins: int) -> np.ndarray:
    """int64 [N, D] in 1..num_bins: min-max normalised codes in ``num_bins`` equal-width bins of [0, 1]
    (a value on an inner edge goes right; 1.0 to the last bin)."""
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    edges = np.linspace(0.0, 1.0, int(num_bins) + 1)[:-1]
    return np.digitize(minmax_normalise(codes), edges, right=False).astype(np.int64)


def mutual_information_bits(codes: np.ndarray, factors: np.ndarray, num_bins: int) -> np.ndarray:
    """[K, D] mutual information in bits between each factor and each binned code dimension."""
    return discrete_mutual_information(bin_codes(codes, num_bins), factors).T / LN2


def _top_two_gap(values: np.ndarray, axis: int) -> np.ndarray:
    ordered = np.sort(values, axis=axis)
    return np.take(ordered, -1, axis=axis) - np.take(ordered, -2, axis=axis)


def _scaled_accuracy(accuracy: float, num_factors: int) -> float:
    """Accuracy rescaled so that a uniform guess over the factors scores 0 and perfect scores 1."""
    chance = 1.0 / num_factors
    return float((accuracy - chance) / (1.0 - chance))


def _need_two_factors(factors: np.ndarray, metric: str) -> None:
    if factors.shape[1] < 2:
        raise ValueError(f"{metric} classifies which factor was fixed and needs at least 2 varying factors, "
                         f"got {factors.shape[1]}")


# -------------------------------------------------------------------------------- intervention-based

def _groups_for_fixed_factor(factors: np.ndarray, k: int) -> list[np.ndarray]:
    """Row indices of each value of factor ``k`` that occurs at least twice."""
    values, inverse, counts = np.unique(factors[:, k], return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(counts)[:-1])
    return [group for group in groups if group.size > 1]


def _groups_for_varied_factor(factors: np.ndarray, k: int, num_bins: int) -> list[np.ndarray]:
    """Row indices of each combination of the other factors that occurs at least twice; another factor
    with more than ``num_bins`` values is taken in ``num_bins`` equal-width bins of its range (the
    review code's discretisation of continuous factors), so that the points of a full grid such as
    dSprites' (3, 6, 40, 32, 32) share combinations."""
    others = np.delete(factors, k, axis=1)
    for j, column in enumerate(others.T):
        if np.unique(column).size > num_bins:
            others[:, j] = bin_codes(column[:, None].astype(np.float64), num_bins)[:, 0]
    _, inverse, counts = np.unique(others, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(counts)[:-1])
    return [group for group in groups if group.size > 1]


def _sample_batches(groups: list[np.ndarray], count: int, batch_size: int, rng: np.random.RandomState,
                    metric: str, k: int) -> np.ndarray:
    """int [count, batch_size] row indices: each batch from one group chosen uniformly at random. As in
    the review's code, the batches of a group are consecutive slices of a stream of its rows reshuffled
    on every pass, so a batch repeats a row only when the group is smaller than the batch (and then
    holds every row about equally often)."""
    if not groups:
        raise ValueError(f"{metric}: factor {k} has no group of at least two points to sample a batch from")
    chosen = rng.randint(len(groups), size=count)
    batches = np.empty((count, batch_size), dtype=np.int64)
    for g in np.unique(chosen):
        rows, group = np.flatnonzero(chosen == g), groups[g]
        passes = -(-rows.size * batch_size // group.size)
        stream = group[rng.random_sample((passes, group.size)).argsort(axis=1)].reshape(-1)
        batches[rows] = stream[:rows.size * batch_size].reshape(rows.size, batch_size)
    return batches


def _factor_per_sample(num_factors: int, num_train: int, num_eval: int, rng) -> np.ndarray:
    return rng.randint(num_factors, size=num_train + num_eval)


def _pairs_sharing_value(factors: np.ndarray, k: int, count: int, rng: np.random.RandomState,
                         metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Two int [count] arrays of row indices: pair i is two distinct points with the same value of factor
    ``k``, that value drawn uniformly (per pair) among the values that occur at least twice."""
    groups = _groups_for_fixed_factor(factors, k)
    if not groups:
        raise ValueError(f"{metric}: factor {k} has no value shared by two points to make a pair from")
    sizes = np.array([group.size for group in groups])
    members, starts = np.concatenate(groups), np.cumsum(sizes) - sizes
    chosen = rng.randint(len(groups), size=count)
    size = sizes[chosen]
    first = (rng.random_sample(count) * size).astype(np.int64)
    second = (first + 1 + (rng.random_sample(count) * (size - 1)).astype(np.int64)) % size
    return members[starts[chosen] + first], members[starts[chosen] + second]


def z_diff(codes, factors, *, num_bins: int = 10, random_state=None, batch_size: int = 200,
           num_train: int = 10000, num_eval: int = 5000, max_iter: int = 10000) -> float:
    """Z-diff (Higgins et al. 2017, the beta-VAE metric) on observed data.

    Each sample picks a factor k uniformly and ``batch_size`` pairs of distinct points that share a
    value of k (each pair its own value, drawn uniformly among the values that occur twice); its input
    is the mean absolute difference of the pairs' codes. A logistic regression predicts k; the score is
    its accuracy on ``num_eval`` held-out samples, rescaled so that chance (1/K) is 0. ``num_bins`` is
    unused (factors are already discrete).
    """
    codes, factors, rng = _inputs(codes, factors, "z_diff", random_state)
    _need_two_factors(factors, "z_diff")
    num_factors = factors.shape[1]
    targets = _factor_per_sample(num_factors, num_train, num_eval, rng)
    inputs = np.empty((targets.size, codes.shape[1]))
    for k in range(num_factors):
        rows = np.flatnonzero(targets == k)
        first, second = _pairs_sharing_value(factors, k, rows.size * batch_size, rng, "z_diff")
        for start in range(0, rows.size, 1000):
            pairs = slice(start * batch_size, (start + 1000) * batch_size)
            difference = np.abs(codes[first[pairs]] - codes[second[pairs]])
            inputs[rows[start:start + 1000]] = difference.reshape(-1, batch_size, codes.shape[1]).mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=max_iter).fit(inputs[:num_train], targets[:num_train])
    return _scaled_accuracy(model.score(inputs[num_train:], targets[num_train:]), num_factors)


def _variance_votes(codes: np.ndarray, factors: np.ndarray, rng: np.random.RandomState, *, metric: str,
                    vary: bool, num_bins: int, batch_size: int, num_train: int, num_eval: int, num_variance_estimate: int,
                    std_threshold: float) -> float:
    num_factors = factors.shape[1]
    estimate_rows = rng.permutation(codes.shape[0])[:num_variance_estimate]
    global_variance = codes[estimate_rows].var(axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_variance) >= std_threshold)
    if active.size == 0:
        warnings.warn(f"{metric}: no code dimension has a standard deviation >= {std_threshold}; scored 0",
                      RuntimeWarning, stacklevel=3)
        return 0.0
    targets = _factor_per_sample(num_factors, num_train, num_eval, rng)
    chosen_dim = np.empty(targets.size, dtype=np.int64)
    for k in range(num_factors):
        rows = np.flatnonzero(targets == k)
        groups = _groups_for_varied_factor(factors, k, num_bins) if vary else _groups_for_fixed_factor(factors, k)
        if not groups and vary:
            raise ValueError(f"{metric}: no two of the {codes.shape[0]} points share the values of every factor but "
                             f"factor {k} (a factor with more than num_bins={num_bins} values taken in num_bins bins); "
                             f"score more points or pass a smaller num_bins")
        batches = _sample_batches(groups, rows.size, batch_size, rng, metric, k)
        for start in range(0, rows.size, 1000):
            local = codes[batches[start:start + 1000]][:, :, active].var(axis=1, ddof=1)
            ratio = local / global_variance[active]
            pick = ratio.argmax(axis=1) if vary else ratio.argmin(axis=1)
            chosen_dim[rows[start:start + 1000]] = active[pick]
    votes = np.zeros((codes.shape[1], num_factors), dtype=np.int64)
    np.add.at(votes, (chosen_dim[:num_train], targets[:num_train]), 1)
    classifier = votes.argmax(axis=1)
    accuracy = np.mean(classifier[chosen_dim[num_train:]] == targets[num_train:])
    return _scaled_accuracy(float(accuracy), num_factors)


def z_min_var(codes, factors, *, num_bins: int = 10, random_state=None, batch_size: int = 200,
              num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
              std_threshold: float = 0.05) -> float:
    """Z-min variance (Kim & Mnih 2018, the FactorVAE metric) on observed data.

    Each sample fixes a factor k to a value and takes ``batch_size`` points with that value; the code
    dimension (among those with standard deviation >= ``std_threshold``) whose variance over the batch,
    divided by its global variance, is smallest votes for k. A majority-vote classifier from dimension
    to factor is fitted on ``num_train`` samples and its accuracy on ``num_eval`` others, rescaled so
    that chance (1/K) is 0, is the score.
    """
    codes, factors, rng = _inputs(codes, factors, "z_min_var", random_state)
    _need_two_factors(factors, "z_min_var")
    return _variance_votes(codes, factors, rng, metric="z_min_var", vary=False, num_bins=num_bins, batch_size=batch_size,
                           num_train=num_train, num_eval=num_eval, num_variance_estimate=num_variance_estimate,
                           std_threshold=std_threshold)


def z_max_var(codes, factors, *, num_bins: int = 10, random_state=None, batch_size: int = 200,
              num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
              std_threshold: float = 0.05) -> float:
    """Z-max variance: as :func:`z_min_var`, but each batch varies only factor k (every other factor
    fixed to the values of one combination that occurs at least twice; a factor with more than
    ``num_bins`` values fixed to one of ``num_bins`` equal-width bins) and the dimension of largest
    normalised variance votes for k. ValueError when some factor has no such combination."""
    codes, factors, rng = _inputs(codes, factors, "z_max_var", random_state)
    _need_two_factors(factors, "z_max_var")
    return _variance_votes(codes, factors, rng, metric="z_max_var", vary=True, num_bins=num_bins, batch_size=batch_size,
                           num_train=num_train, num_eval=num_eval, num_variance_estimate=num_variance_estimate,
                           std_threshold=std_threshold)


def irs(codes, factors, *, num_bins: int = 10, random_state=None, diff_quantile: float = 1.0) -> float:
    """Interventional robustness score (Suter et al. 2019) on observed data, deterministic.

    For each factor k and value v, the ``diff_quantile`` quantile of |z - E[z | g_k = v]| over the
    points with g_k = v; averaged over the values of k and divided by the dimension's largest deviation
    from its mean, it gives EMPIDA[d, k]; IRS = the mean over dimensions of max_k (1 - EMPIDA[d, k])
    weighted by those largest deviations. Constant dimensions are left out; all constant -> 0.
    """
    codes, factors, _ = _inputs(codes, factors, "irs", random_state)
    # np.ptp, not the variance: a column of 0.7s has a variance of ~1e-29 and no deviation from its mean
    codes = codes[:, np.ptp(codes, axis=0) > 0]
    if codes.shape[1] == 0:
        return 0.0
    max_deviation = np.abs(codes - codes.mean(axis=0)).max(axis=0)
    deviations = np.zeros((codes.shape[1], factors.shape[1]))
    for k, column in enumerate(factors.T):
        values = np.unique(column)
        for value in values:
            group = codes[column == value]
            deviations[:, k] += np.quantile(np.abs(group - group.mean(axis=0)), diff_quantile, axis=0)
        deviations[:, k] /= values.size
    scores = (1.0 - deviations / max_deviation[:, None]).max(axis=1)
    return float(np.average(scores, weights=max_deviation))


# ----------------------------------------------------------------------------------- predictor-based

def _one_minus_entropy(weights: np.ndarray) -> np.ndarray:
    """1 - entropy (log base = row length) of each row normalised to sum 1; an all-zero row scores 0
    (uniform); a row of length 1 scores 1."""
    if weights.shape[1] == 1:
        return np.ones(weights.shape[0])
    totals = weights.sum(axis=1, keepdims=True)
    p = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / weights.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return 1.0 + terms.sum(axis=1) / math.log(weights.shape[1])


def _dci_from_importance(importance: np.ndarray, informativeness: np.ndarray) -> dict[str, float]:
    """importance [D, K] -> D (each code's 1 - H_K weighted by its share of importance), C (mean over
    factors of 1 - H_D), mean informativeness."""
    code_weight = importance.sum(axis=1)
    total = code_weight.sum()
    disentanglement = float(_one_minus_entropy(importance) @ (code_weight / total)) if total > 0 else 0.0
    return {"disentanglement": disentanglement, "completeness": float(np.mean(_one_minus_entropy(importance.T))),
            "informativeness": float(np.mean(informativeness))}


def _informativeness(prediction: np.ndarray, target: np.ndarray) -> float:
    """1 - 12 MSE (a uniform [0, 1] target predicted by its mean has MSE 1/12), at least 0."""
    return max(1.0 - 12.0 * float(np.mean((prediction - target) ** 2)), 0.0)


def _dci_regression(codes, factors, fit_one, metric: str) -> dict[str, float]:
    codes_n, factors_n = minmax_normalise(codes), minmax_normalise(factors.astype(np.float64))
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    informativeness = np.zeros(factors.shape[1])
    for k in range(factors.shape[1]):
        prediction, importance[:, k] = fit_one(codes_n, factors_n[:, k])
        informativeness[k] = _informativeness(prediction, factors_n[:, k])
    return _dci_from_importance(importance, informativeness)


def dci_lasso(codes, factors, *, num_bins: int = 10, random_state=None, alphas=LASSO_ALPHAS,
              cv: int = 10) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018) with Lasso regressors, as the review computes it.

    Codes and factors min-max normalised; per factor the Lasso alpha with the lowest ``cv``-fold
    cross-validated MSE among ``alphas`` is refitted on all points; |coefficients| are the importances;
    informativeness = max(1 - 12 MSE, 0) on those points. Returns ``disentanglement``,
    ``completeness`` and ``informativeness`` (deterministic)."""
    codes, factors, _ = _inputs(codes, factors, "dci_lasso", random_state)
    folds = KFold(n_splits=cv)

    def fit_one(x, y):
        errors = [-cross_val_score(Lasso(alpha=a, max_iter=5000), x, y, cv=folds,
                                   scoring="neg_mean_squared_error").mean() for a in alphas]
        model = Lasso(alpha=alphas[int(np.argmin(errors))], max_iter=5000).fit(x, y)
        return model.predict(x), np.abs(model.coef_)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _dci_regression(codes, factors, fit_one, "dci_lasso")


def dci_random_forest(codes, factors, *, num_bins: int = 10, random_state=None, n_estimators: int = 10,
                      max_depths=(8, 16, 32), max_features=(0.2, 0.4, 0.8, 1.0),
                      cv: int = 3, n_jobs: int | None = None) -> dict[str, float]:
    """DCI with random-forest regressors: the review's grid over ``max_depths`` x ``max_features``
    chosen by ``cv``-fold cross-validated MSE (the review uses 10 folds and depths up to 128; 3 folds
    and depths up to 32 here keep it under the speed budget), refitted on all points; impurity
    importances; informativeness as in :func:`dci_lasso`. ``n_jobs``: threads per forest (the numbers
    do not depend on it)."""
    codes, factors, rng = _inputs(codes, factors, "dci_random_forest", random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    folds = list(KFold(n_splits=cv).split(codes))

    def forest(depth, features):
        return RandomForestRegressor(n_estimators=n_estimators, max_depth=depth, max_features=features,
                                     random_state=seed, n_jobs=n_jobs)

    def fit_one(x, y):
        errors = {}
        for f in max_features:
            reached = [True] * len(folds)  # whether the last forest fitted on a fold grew a tree to its limit
            fold_errors = [0.0] * len(folds)
            for d in sorted(max_depths):
                for i, (train, test) in enumerate(folds):
                    # a forest none of whose trees reached the previous limit is the same forest under a
                    # larger one (same seed, same bootstrap, same splits): only refit where it did
                    if reached[i]:
                        model = forest(d, f).fit(x[train], y[train])
                        fold_errors[i] = mean_squared_error(y[test], model.predict(x[test]))
                        reached[i] = any(tree.tree_.max_depth >= d for tree in model.estimators_)
                errors[d, f] = float(np.mean(fold_errors))
        grid = [(d, f) for d in max_depths for f in max_features]
        d, f = grid[int(np.argmin([errors[key] for key in grid]))]
        model = forest(d, f).fit(x, y)
        return model.predict(x), model.feature_importances_

    return _dci_regression(codes, factors, fit_one, "dci_random_forest")


def explicitness(codes, factors, *, num_bins: int = 10, random_state=None, max_iter: int = 100) -> float:
    """Explicitness (Ridgeway & Mozer 2018) as the review computes it: per factor a one-vs-rest
    balanced logistic regression on the min-max normalised codes, macro ROC-AUC of its probabilities
    on the same points, mean over factors, rescaled from [0.5, 1] to [0, 1]."""
    codes, factors, _ = _inputs(codes, factors, "explicitness", random_state)
    codes = minmax_normalise(codes)
    total = 0.0
    for column in factors.T:
        classes = np.unique(column)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = OneVsRestClassifier(LogisticRegression(class_weight="balanced", max_iter=max_iter)).fit(codes, column)
        probabilities = model.predict_proba(codes)
        if classes.size == 2:
            total += roc_auc_score(column == classes[1], probabilities[:, 1])
        else:
            total += roc_auc_score(column[:, None] == classes[None, :], probabilities, average="macro")
    return float((total / factors.shape[1] - 0.5) * 2.0)


def _predictions_by_depth(tree: DecisionTreeClassifier, x: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """int [len(depths), N] class indices that ``tree`` cut at each depth predicts for ``x``.

    A tree grown to depth d is this tree with every node at depth d made a leaf (nodes are split the
    same way whatever the depth limit), and a leaf predicts the majority class of its training points,
    which every node of this tree stores."""
    path = tree.decision_path(x)  # root to leaf; node ids grow with depth
    path.sort_indices()
    length = np.diff(path.indptr)
    nodes = path.indices[path.indptr[:-1][None, :] + np.minimum(depths[:, None], length[None, :] - 1)]
    return tree.tree_.value[:, 0, :].argmax(axis=1)[nodes]


def _sap_accuracy(x: np.ndarray, column: np.ndarray, folds, depths: np.ndarray, seed: int) -> float:
    """Training accuracy of the tree on ``x`` alone whose depth has the best mean accuracy over ``folds``."""
    classes, labels = np.unique(column, return_inverse=True)
    if np.ptp(x) == 0:
        return float(np.max(np.bincount(labels)) / column.size)
    grown = DecisionTreeClassifier(max_depth=int(depths.max()), random_state=seed)
    fold_accuracy = np.empty((depths.size, len(folds)))
    for i, (train, test) in enumerate(folds):
        tree = grown.fit(x[train], column[train])
        predicted = np.searchsorted(classes, tree.classes_)[_predictions_by_depth(tree, x[test], depths)]
        fold_accuracy[:, i] = (predicted == labels[test]).mean(axis=1)
    depth = depths[int(np.argmax([np.mean(row) for row in fold_accuracy]))]
    tree = grown.fit(x, column)
    return float(np.mean(_predictions_by_depth(tree, x, np.array([depth]))[0] == labels))


def sap(codes, factors, *, num_bins: int = 10, random_state=None, max_depths=range(1, 10), cv: int = 10,
        n_jobs: int | None = None) -> float:
    """SAP (Kumar et al. 2018), the review's classification variant: for each factor and code
    dimension a decision tree on that dimension alone, depth chosen among ``max_depths`` by ``cv``-fold
    cross-validated accuracy (scikit-learn's stratified folds, as ``cross_val_score`` makes them),
    refitted and scored on all points; mean over factors of the gap between the two most accurate
    dimensions. Deterministic. One tree of the largest depth per fold gives every depth's predictions
    (:func:`_predictions_by_depth`). ``n_jobs``: threads over the code dimensions (the numbers do not
    depend on it)."""
    codes, factors, rng = _inputs(codes, factors, "sap", random_state)
    if codes.shape[1] < 2:
        raise ValueError(f"sap needs codes with at least 2 dimensions (a gap between the two best), got {codes.shape[1]}")
    codes = minmax_normalise(codes)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    depths = np.asarray(list(max_depths))
    scores = np.zeros((factors.shape[1], codes.shape[1]))
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        for k, column in enumerate(factors.T):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # classes with fewer members than folds
                folds = list(check_cv(cv, column, classifier=True).split(codes, column))
            scores[k] = parallel(delayed(_sap_accuracy)(codes[:, d:d + 1], column, folds, depths, seed)
                                 for d in range(codes.shape[1]))
    return float(np.mean(_top_two_gap(scores, axis=1)))


# -------------------------------------------------------------------------------- information-based

def mig(codes, factors, *, num_bins: int = 10, random_state=None) -> float:
    """MIG (Chen et al. 2018) as the review computes it: per factor the gap between the two largest
    I(z_d; g_k) / H(g_k), mean over factors."""
    codes, factors, _ = _inputs(codes, factors, "mig", random_state)
    if codes.shape[1] < 2:
        raise ValueError(f"mig needs codes with at least 2 dimensions, got {codes.shape[1]}")
    normalised = mutual_information_bits(codes, factors, num_bins) / (discrete_entropy(factors) / LN2)[:, None]
    return float(np.mean(_top_two_gap(normalised, axis=1)))


def mig_sup(codes, factors, *, num_bins: int = 10, random_state=None) -> float:
    """MIG-sup (Li et al. 2020): per code dimension the gap between the two largest
    I(z_d; g_k) / H(z_d), mean over dimensions (a constant dimension scores 0)."""
    codes, factors, _ = _inputs(codes, factors, "mig_sup", random_state)
    if factors.shape[1] < 2:
        raise ValueError(f"mig_sup needs at least 2 varying factors (a gap between the two best), got {factors.shape[1]}")
    binned = bin_codes(codes, num_bins)
    code_entropy = discrete_entropy(binned) / LN2
    information = discrete_mutual_information(binned, factors).T / LN2
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(code_entropy > 0, information / code_entropy, 0.0)
    return float(np.mean(_top_two_gap(normalised, axis=0)))


def jemmig(codes, factors, *, num_bins: int = 10, random_state=None) -> float:
    """Normalised JEMMIG (Do & Tran 2020), higher is better: per factor
    1 - (H(g_k, z*) - I(g_k; z*) + I(g_k; z°)) / (H(g_k) + log2(num_bins)), with z* and z° the two
    dimensions most informative about g_k; mean over factors."""
    codes, factors, _ = _inputs(codes, factors, "jemmig", random_state)
    if codes.shape[1] < 2:
        raise ValueError(f"jemmig needs codes with at least 2 dimensions, got {codes.shape[1]}")
    binned = bin_codes(codes, num_bins)
    information = discrete_mutual_information(binned, factors).T / LN2
    factor_entropy = discrete_entropy(factors) / LN2
    code_entropy = discrete_entropy(binned) / LN2
    ordered = np.argsort(information, axis=1, kind="stable")
    scores = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        best, second = ordered[k, -1], ordered[k, -2]
        joint_entropy = factor_entropy[k] + code_entropy[best] - information[k, best]
        unnormalised = joint_entropy - information[k, best] + information[k, second]
        scores[k] = 1.0 - unnormalised / (factor_entropy[k] + math.log2(num_bins))
    return float(np.mean(scores))


def modularity(codes, factors, *, num_bins: int = 10, random_state=None) -> float:
    """Modularity (Ridgeway & Mozer 2018) on the review's binning: mean over dimensions of
    1 - sum_{k != k*} I(z_d; g_k)^2 / ((K - 1) I(z_d; g_k*)^2) (0 for a dimension with no information)."""
    codes, factors, _ = _inputs(codes, factors, "modularity", random_state)
    return modularity_from_mutual_information(mutual_information_bits(codes, factors, num_bins).T)


def dcimig(codes, factors, *, num_bins: int = 10, random_state=None) -> float:
    """DCIMIG (Sepliarskaia et al. 2019): each code dimension keeps only the gap between its two largest
    I(z_d; g_k), credited to its best factor; each factor takes the largest gap credited to it; the
    sum over factors divided by the sum of the factors' entropies."""
    codes, factors, _ = _inputs(codes, factors, "dcimig", random_state)
    information = mutual_information_bits(codes, factors, num_bins)  # [K, D]
    credited = np.zeros_like(information)
    if factors.shape[1] > 1:
        gaps = _top_two_gap(information, axis=0)
    else:
        gaps = information[0]
    credited[information.argmax(axis=0), np.arange(information.shape[1])] = gaps
    return float(credited.max(axis=1).sum() / (discrete_entropy(factors).sum() / LN2))


REVIEW_METRICS = ("z_diff", "z_min_var", "z_max_var", "irs", "dci_lasso", "dci_random_forest", "explicitness",
                  "sap", "mig", "mig_sup", "jemmig", "modularity", "dcimig")


# ------------------------------------------------------------------------------------ result columns

def _column(metric: str, column: str):
    """The registry's computation of ``column``: ``metric`` on every evaluation point's representation;
    the DCI variants report the mean of D, C and I (as the ``dci`` column does)."""
    function = globals()[metric]

    def compute(inputs) -> dict[str, float]:
        value = function(inputs.representation, inputs.factors, random_state=inputs.seed)
        if isinstance(value, dict):
            value = (value["disentanglement"] + value["completeness"] + value["informativeness"]) / 3
        return {column: float(value)}

    compute.__name__ = f"{column}_column"
    return compute


z_diff_column = _column("z_diff", "z_diff")
z_min_var_column = _column("z_min_var", "z_min_var")
z_max_var_column = _column("z_max_var", "z_max_var")
irs_column = _column("irs", "irs")
dci_lasso_column = _column("dci_lasso", "dci_lasso")
dci_random_forest_column = _column("dci_random_forest", "dci_random_forest")
explicitness_column = _column("explicitness", "explicitness")
review_sap_column = _column("sap", "review_sap")
review_mig_column = _column("mig", "review_mig")
mig_sup_column = _column("mig_sup", "mig_sup")
jemmig_column = _column("jemmig", "jemmig")
modularity_column = _column("modularity", "modularity")
dcimig_column = _column("dcimig", "dcimig")
