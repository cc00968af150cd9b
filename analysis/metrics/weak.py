"""Weak-disentanglement metrics for AbsAE / M-AE: classification of codes by the Gaussian-mixture
prior (clustering accuracy), relation accuracy of composed relational models, and the conversion of
codes into factor values used before DCI / MIG / SAP.

Priors are duck-typed. A *mixture prior* is any object (or dict) with ``means`` [C, D],
``covariances`` [C, D, D] and ``component_factors`` [C, K] (numpy or torch), e.g. ``MixturePrior``.
A *modular prior* (M-AE) has ``priors`` (one mixture per factor, over its partition of the code) and
``slices`` (the code dimensions of each partition, python slices).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from analysis.metrics._checks import _to_numpy, as_random_state, check_codes

ACCEPTANCE_QUANTITIES = ("density", "posterior", "relative_density")
DEFAULT_ACCEPTANCE = "density"
RELATION_SCORES = ("combination", "moved_factors")
_ROWS_PER_CHUNK_ELEMENTS = 2_000_000  # bounds the [rows, C, D] temporaries of the density


@dataclass(frozen=True)
class MixturePrior:
    """An equal-weight Gaussian mixture: ``means`` [C, D], ``covariances`` [C, D, D] and the factor
    values of each component ``component_factors`` [C, K]."""

    means: np.ndarray
    covariances: np.ndarray
    component_factors: np.ndarray

    def __post_init__(self) -> None:
        means = np.asarray(_to_numpy(self.means), dtype=np.float64)
        covariances = np.asarray(_to_numpy(self.covariances), dtype=np.float64)
        component_factors = _to_numpy(self.component_factors)
        if means.ndim != 2:
            raise ValueError(f"prior means must be [C, D], got shape {means.shape}")
        num_components, dim = means.shape
        if covariances.shape != (num_components, dim, dim):
            raise ValueError(
                f"prior covariances must be [C, D, D] = {(num_components, dim, dim)}, got shape {covariances.shape}"
            )
        if component_factors.ndim == 1:
            component_factors = component_factors[:, None]
        if component_factors.ndim != 2 or component_factors.shape[0] != num_components:
            raise ValueError(
                f"prior component_factors must be [C, K] with C = {num_components}, got shape {component_factors.shape}"
            )
        if not (np.isfinite(means).all() and np.isfinite(covariances).all()):
            raise ValueError("prior means / covariances contain NaN or inf")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covariances", covariances)
        object.__setattr__(self, "component_factors", component_factors.astype(np.int64))

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def precision_cholesky(self) -> np.ndarray:
        """[C, D, D] lower-triangular W with W W^T = covariance^-1."""
        try:
            lower = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            eigenvalues = np.linalg.eigvalsh(self.covariances)
            bad = int(np.flatnonzero(eigenvalues.min(axis=1) <= 0)[0])
            raise ValueError(
                f"prior covariance of component {bad} is not positive definite "
                f"(smallest eigenvalue {eigenvalues[bad].min():.3g})"
            ) from None
        identity = np.broadcast_to(np.eye(self.dim), self.covariances.shape)
        inverse_lower = np.linalg.solve(lower, identity)  # L^-1, so cov^-1 = L^-T L^-1
        return np.swapaxes(inverse_lower, 1, 2)

    def squared_mahalanobis(self, codes: np.ndarray) -> np.ndarray:
        """[N, C] squared Mahalanobis distance of each code to each component."""
        whitening = self.precision_cholesky()  # [C, D, D]
        projected_means = np.einsum("cd,cde->ce", self.means, whitening)
        rows_per_chunk = max(1, _ROWS_PER_CHUNK_ELEMENTS // max(1, self.num_components * self.dim))
        distances = np.empty((codes.shape[0], self.num_components))
        for start in range(0, codes.shape[0], rows_per_chunk):
            chunk = codes[start : start + rows_per_chunk]
            projected = np.einsum("nd,cde->nce", chunk, whitening) - projected_means
            distances[start : start + rows_per_chunk] = np.einsum("nce,nce->nc", projected, projected)
        return distances

    def log_densities(self, codes: np.ndarray) -> np.ndarray:
        """[N, C] log N(z; mean_c, covariance_c)."""
        log_determinants = np.linalg.slogdet(self.covariances)[1]
        return -0.5 * (
            self.squared_mahalanobis(codes) + log_determinants + self.dim * np.log(2.0 * np.pi)
        )

    def sample(self, components: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        """[n, D] one code from each given component."""
        lower = np.linalg.cholesky(self.covariances)
        noise = random_state.standard_normal((components.size, self.dim))
        return self.means[components] + np.einsum("nde,ne->nd", lower[components], noise)


@dataclass(frozen=True)
class ModularPrior:
    """M-AE: one ``MixturePrior`` per factor over its own partition (``slices``) of the code.
    Component ``v`` of partition ``g`` stands for the factor value ``priors[g].component_factors[v, 0]``."""

    priors: tuple[MixturePrior, ...]
    slices: tuple[slice, ...]

    def __post_init__(self) -> None:
        if len(self.priors) != len(self.slices) or not self.priors:
            raise ValueError(
                f"a modular prior needs one slice per factor prior, got {len(self.priors)} priors "
                f"and {len(self.slices)} slices"
            )
        for index, (prior, part) in enumerate(zip(self.priors, self.slices)):
            width = len(range(*part.indices(10**9)))
            if width != prior.dim:
                raise ValueError(
                    f"partition {index}: slice {part} covers {width} dimensions but its prior has {prior.dim}"
                )

    @property
    def dim(self) -> int:
        return max(part.indices(10**9)[1] for part in self.slices)

    @property
    def component_counts(self) -> tuple[int, ...]:
        return tuple(prior.num_components for prior in self.priors)


Prior = Union[MixturePrior, ModularPrior]


def _attribute(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj[name] if name in obj else None
    value = getattr(obj, name, None)
    if value is None and callable(getattr(obj, f"numpy_{name}", None)):
        value = getattr(obj, f"numpy_{name}")()
    return value


def _as_mixture(obj: Any, default_factors: bool = False) -> MixturePrior:
    if isinstance(obj, MixturePrior):
        return obj
    means, covariances = _attribute(obj, "means"), _attribute(obj, "covariances")
    component_factors = _attribute(obj, "component_factors")
    if means is None or covariances is None:
        raise ValueError(
            f"a prior needs `means` [C, D] and `covariances` [C, D, D]; got {type(obj).__name__}"
        )
    if component_factors is None:
        if not default_factors:
            raise ValueError(
                f"a mixture prior needs `component_factors` [C, K]; got {type(obj).__name__} without it"
            )
        component_factors = np.arange(np.shape(_to_numpy(means))[0])[:, None]
    return MixturePrior(means, covariances, component_factors)


def as_prior(prior: Any) -> Prior:
    """A ``MixturePrior`` or ``ModularPrior`` from any compatible object or dict."""
    if isinstance(prior, (MixturePrior, ModularPrior)):
        return prior
    priors, slices = _attribute(prior, "priors"), _attribute(prior, "slices")
    if priors is not None and slices is not None:
        return ModularPrior(
            tuple(_as_mixture(p, default_factors=True) for p in priors), tuple(slices)
        )
    return _as_mixture(prior)


def _check_codes_for(prior: Prior, codes: Any, name: str = "codes") -> np.ndarray:
    codes = check_codes(codes, name)
    if codes.shape[1] < prior.dim or (isinstance(prior, MixturePrior) and codes.shape[1] != prior.dim):
        raise ValueError(f"{name} has {codes.shape[1]} dimensions but the prior expects {prior.dim}")
    return codes


def _check_acceptance(acceptance: str) -> None:
    if acceptance not in ACCEPTANCE_QUANTITIES:
        raise ValueError(f"acceptance must be one of {ACCEPTANCE_QUANTITIES}, got {acceptance!r}")


def _check_alpha(alpha: float, acceptance: str) -> float:
    _check_acceptance(acceptance)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return float(alpha)


def _check_alphas(alphas: Iterable[float], acceptance: str) -> list[float]:
    alphas = [_check_alpha(alpha, acceptance) for alpha in alphas]
    if not alphas:
        raise ValueError("alphas is empty; expected at least one threshold in [0, 1]")
    return alphas


def _best_and_log_quantity(prior: MixturePrior, codes: np.ndarray, acceptance: str) -> tuple[np.ndarray, np.ndarray]:
    """The most likely component of each code and the log of the quantity alpha thresholds."""
    distances = prior.squared_mahalanobis(codes)
    log_determinants = np.linalg.slogdet(prior.covariances)[1]
    log_densities = -0.5 * (distances + log_determinants + prior.dim * np.log(2.0 * np.pi))
    best = np.argmax(log_densities, axis=1)
    rows = np.arange(codes.shape[0])
    best_log_density = log_densities[rows, best]
    if acceptance == "density":
        return best, best_log_density
    if acceptance == "posterior":
        shifted = log_densities - best_log_density[:, None]
        return best, -np.log(np.exp(shifted).sum(axis=1))
    return best, -0.5 * distances[rows, best]


def _classify_log(codes: np.ndarray, prior: Prior, acceptance: str) -> tuple[np.ndarray, np.ndarray]:
    """Predicted factor values [N, K] and the log acceptance quantity [N].

    For a modular prior the combination's density is the product of the partitions' densities, so
    the "density" quantity is the sum over partitions of each one's best log-density; the other
    quantities are per-partition probabilities, and a code counts as confident as its least
    confident partition (the minimum).
    """
    if isinstance(prior, MixturePrior):
        best, log_quantity = _best_and_log_quantity(prior, codes, acceptance)
        return prior.component_factors[best], log_quantity
    predicted, log_quantities = [], []
    for part_prior, part in zip(prior.priors, prior.slices):
        best, log_quantity = _best_and_log_quantity(part_prior, codes[:, part], acceptance)
        predicted.append(part_prior.component_factors[best, 0])
        log_quantities.append(log_quantity)
    stacked = np.stack(log_quantities, axis=1)
    combined = stacked.sum(axis=1) if acceptance == "density" else stacked.min(axis=1)
    return np.stack(predicted, axis=1), combined


def classify_codes(codes: Any, prior: Any, *, acceptance: str = DEFAULT_ACCEPTANCE) -> tuple[np.ndarray, np.ndarray]:
    """Predicted factor values int [N, K] (the best component's ``component_factors``; for a modular
    prior, each partition's best) and the acceptance quantity [N] that ``alpha`` thresholds (see
    ``clustering_accuracy``; a density may exceed 1)."""
    prior = as_prior(prior)
    codes = _check_codes_for(prior, codes)
    _check_acceptance(acceptance)
    predicted, log_quantity = _classify_log(codes, prior, acceptance)
    with np.errstate(over="ignore", under="ignore"):
        return predicted, np.exp(log_quantity)


def codes_to_factors(codes: Any, prior: Any) -> np.ndarray:
    """int [N, K]: the factor values of the most likely prior component of each code (for a modular
    prior, of each partition) -- the representation DCI / MIG / SAP see for AbsAE / M-AE."""
    return classify_codes(codes, prior)[0]


def _labels_as_factors(labels: Any, prior: Prior, num_codes: int) -> np.ndarray:
    labels = _to_numpy(labels)
    if labels.shape[0] != num_codes:
        raise ValueError(f"codes has {num_codes} rows but labels has {labels.shape[0]}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.ndim == 2:
        return labels.astype(np.int64)
    if labels.ndim != 1:
        raise ValueError(f"labels must be int [N] (combination index) or int [N, K], got shape {labels.shape}")
    if isinstance(prior, MixturePrior):
        if labels.min() < 0 or labels.max() >= prior.num_components:
            raise ValueError(
                f"labels are component indices in [0, {prior.num_components}), got values in "
                f"[{labels.min()}, {labels.max()}]"
            )
        return prior.component_factors[labels]
    counts = prior.component_counts
    if labels.min() < 0 or labels.max() >= int(np.prod(counts)):
        raise ValueError(
            f"labels are combination indices in [0, {int(np.prod(counts))}), got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    components = np.unravel_index(labels, counts)
    return np.stack(
        [p.component_factors[c, 0] for p, c in zip(prior.priors, components)], axis=1
    )


def _log_alpha(alpha: float) -> float:
    with np.errstate(divide="ignore"):
        return float(np.log(alpha))  # alpha = 0 -> -inf: every code is accepted


def _score(predicted: np.ndarray, truth: np.ndarray, log_quantity: np.ndarray, alpha: float,
           checked: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy among the accepted codes (right when every factor of ``checked [N, K]``, default all,
    matches) and the ratio accepted."""
    if predicted.shape != truth.shape:
        raise ValueError(
            f"labels have {truth.shape[1]} factors but the prior predicts {predicted.shape[1]}"
        )
    accepted = log_quantity >= _log_alpha(alpha)
    matches = predicted == truth
    correct = np.all(matches if checked is None else matches | ~checked, axis=1)
    return {
        "accuracy": float(correct[accepted].mean()) if accepted.any() else float("nan"),
        "accepted_ratio": float(accepted.mean()),
    }


def clustering_accuracy(
    codes: Any, labels: Any, prior: Any, alpha: float, *, acceptance: str = DEFAULT_ACCEPTANCE
) -> dict[str, float]:
    """Accuracy of the prior's classification of ``codes`` among the accepted ones, and the ratio
    accepted.

    Each code goes to its most likely component (highest density). It is accepted when the
    acceptance quantity reaches ``alpha`` in [0, 1] (alpha = 0 accepts every code):
    - ``"density"`` (default; the papers and the authors' code): the best component's density,
      max_c N(z; mu_c, S_c) >= alpha, compared in logs (max_c log N >= log alpha).
    - ``"posterior"``: the best component's responsibility under the equal-weight mixture,
      N(z; mu_c, S_c) / sum_j N(z; mu_j, S_j).
    - ``"relative_density"``: the best component's density relative to its peak,
      N(z; mu_c, S_c) / N(mu_c; mu_c, S_c) = exp(-Mahalanobis^2 / 2).
    For a modular prior (M-AE) each partition is classified by its own mixture and a code is correct
    when every factor matches. Under ``"density"`` the combination's density is the product of the
    partitions' best densities (accepted when the sum of their log-densities reaches log alpha);
    under the other two rules every partition's quantity must reach alpha.
    ``labels``: int [N] combination index (row-major over the components; for a mixture prior the
    component index) or int [N, K] factor values compared with ``component_factors``.
    ``accuracy`` is NaN when nothing is accepted.
    """
    row = clustering_accuracy_by_alpha(codes, labels, prior, [alpha], acceptance=acceptance)[0]
    return {"accuracy": row["accuracy"], "accepted_ratio": row["accepted_ratio"]}


def clustering_accuracy_by_alpha(
    codes: Any, labels: Any, prior: Any, alphas: Iterable[float], *, acceptance: str = DEFAULT_ACCEPTANCE
) -> list[dict[str, float]]:
    """``clustering_accuracy`` at each threshold of ``alphas`` (the codes are classified once).

    Returns ``[{"alpha", "accuracy", "accepted_ratio"}, ...]`` in the order of ``alphas``.
    """
    prior = as_prior(prior)
    alphas = _check_alphas(alphas, acceptance)
    codes = _check_codes_for(prior, codes)
    truth = _labels_as_factors(labels, prior, codes.shape[0])
    predicted, log_quantity = _classify_log(codes, prior, acceptance)
    return [{"alpha": alpha, **_score(predicted, truth, log_quantity, alpha)} for alpha in alphas]


def _relation_table(relations: Any, num_components: int) -> np.ndarray:
    table = _to_numpy(relations)
    if table.ndim != 2 or table.shape[1] != num_components or table.shape[0] == 0:
        raise ValueError(
            f"relations must be int [R, C] with C = {num_components} prior components (combinations), "
            f"got shape {table.shape}"
        )
    if not np.issubdtype(table.dtype, np.integer) or table.min() < 0 or table.max() >= num_components:
        raise ValueError(f"relations must hold component indices in [0, {num_components})")
    return table.astype(np.int64)


def _sample_components(prior: Prior, components: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
    if isinstance(prior, MixturePrior):
        return prior.sample(components, random_state)
    codes = np.zeros((components.size, prior.dim))
    per_partition = np.unravel_index(components, prior.component_counts)
    for part_prior, part, part_components in zip(prior.priors, prior.slices, per_partition):
        codes[:, part] = part_prior.sample(part_components, random_state)
    return codes


def _true_factors(prior: Prior, components: np.ndarray) -> np.ndarray:
    if isinstance(prior, MixturePrior):
        return prior.component_factors[components]
    per_partition = np.unravel_index(components, prior.component_counts)
    return np.stack([p.component_factors[c, 0] for p, c in zip(prior.priors, per_partition)], axis=1)


def _chain_arguments(prior, alphas, random_state, depths, n, acceptance):
    """The checked arguments of a relation-accuracy chain and the prior's number of components."""
    prior = as_prior(prior)
    alphas = _check_alphas(alphas, acceptance)
    random_state = as_random_state(random_state)
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 0:
        raise ValueError(f"depths must be non-negative integers, got {depths}")
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    num_components = (
        prior.num_components if isinstance(prior, MixturePrior) else int(np.prod(prior.component_counts))
    )
    return prior, alphas, random_state, depths, num_components


def _scored_chain(codes, components, advance, prior, depths, alphas, acceptance,
                  checked: np.ndarray | None = None) -> list[dict[str, float]]:
    """Run ``advance(codes, components) -> (model output, true components)`` up to the largest depth,
    scoring the codes at every depth of ``depths`` and every alpha on the factors ``checked [n, K]``
    holds then (``advance`` may update it in place; None: all); rows depths outer, alphas inner."""
    results: dict[int, list[dict[str, float]]] = {}
    for step in range(max(depths) + 1):
        if step in depths:
            predicted, log_quantity = _classify_log(codes, prior, acceptance)
            truth = _true_factors(prior, components)
            results[step] = [
                {"depth": step, "alpha": alpha, **_score(predicted, truth, log_quantity, alpha, checked)}
                for alpha in alphas
            ]
        if step == max(depths):
            break
        output, components = advance(codes, components)
        codes = _check_codes_for(prior, _to_numpy(output), f"relational_model output at depth {step + 1}")
    return [row for d in depths for row in results[d]]


def moved_factors(relations: np.ndarray, component_factors: np.ndarray) -> np.ndarray:
    """bool ``[R, K]``: the factors each relation moves, those in which some component of
    ``component_factors [C, K]`` differs from its target under ``relations [R, C]``."""
    return (component_factors[relations] != component_factors[None]).any(axis=1)


def relation_accuracy_grid(
    relational_model: Callable[[np.ndarray, np.ndarray], Any],
    prior: Any,
    relations: Any,
    *,
    depths: Iterable[int] = range(1, 11),
    alphas: Iterable[float] = (0.0,),
    n: int = 1000,
    random_state,
    acceptance: str = DEFAULT_ACCEPTANCE,
    score: str = "combination",
) -> list[dict[str, float]]:
    """Relation accuracy of the composed relational model at each depth of ``depths`` and each
    threshold of ``alphas``, from one chain of relations.

    ``n`` start components are drawn uniformly and one code is sampled from each; at every step a
    relation is drawn uniformly per sample, the model maps the codes
    (``relational_model(codes [n, D], relation [n]) -> codes [n, D]``) and the true component follows
    ``relations[relation, component]``. After ``depth`` steps the codes are classified as in
    ``clustering_accuracy``; ``accuracy`` is over accepted samples (NaN if none), correct when the
    predicted factors equal the true component's. The chain runs once to the largest depth, so the
    result at depth d equals ``relation_accuracy(..., depth=d)`` with the same seed, and the
    thresholds only change which of the same codes are accepted.
    For a modular prior the components of ``relations`` are combinations of per-partition
    components, row-major (the last partition fastest); the code dimensions outside every partition
    are sampled as 0.
    ``score="moved_factors"`` checks only the factors the chain's relations have moved so far (a
    relation moves the factors in which some component differs from its target; clamped ends
    included): one reading of the modular paper's "apply a random relation and check the outcome",
    whose Eq. 3 scores the changed partition against the new value's component. The default,
    ``"combination"``, checks every factor, as the authors' code does for AbsAE.
    Returns ``[{"depth", "alpha", "accuracy", "accepted_ratio"}, ...]``, depths outer, alphas inner.
    """
    if score not in RELATION_SCORES:
        raise ValueError(f"score={score!r}; expected one of {', '.join(RELATION_SCORES)}")
    prior, alphas, random_state, depths, num_components = _chain_arguments(
        prior, alphas, random_state, depths, n, acceptance)
    table = _relation_table(relations, num_components)
    components = random_state.randint(num_components, size=int(n))
    codes = _sample_components(prior, components, random_state)
    moves = moved_factors(table, _true_factors(prior, np.arange(num_components)))
    moved = np.zeros((int(n), moves.shape[1]), dtype=bool) if score == "moved_factors" else None

    def advance(codes: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        relation = random_state.randint(table.shape[0], size=int(n))
        if moved is not None:
            moved[:] |= moves[relation]
        return relational_model(codes, relation), table[relation, components]

    return _scored_chain(codes, components, advance, prior, depths, alphas, acceptance, moved)


def binary_relation_accuracy_grid(
    relational_model: Callable[[np.ndarray, np.ndarray, np.ndarray], Any],
    prior: Any,
    table: Any,
    *,
    depths: Iterable[int] = range(1, 11),
    alphas: Iterable[float] = (0.0,),
    n: int = 1000,
    random_state,
    acceptance: str = DEFAULT_ACCEPTANCE,
) -> list[dict[str, float]]:
    """Relation accuracy of binary relations (the relational paper's Eq. 8 with two inputs), composed.

    ``table`` int [R, C, C]: the result component of relation r on operand components (a, b), -1
    where (a, b) is no operand pair. ``n`` operand pairs are drawn uniformly among the valid pairs and
    a code sampled from each operand; at every step a relation is drawn per sample,
    ``relational_model(codes [n, D], relation [n], second [n, D]) -> codes [n, D]`` gives the result,
    and the next step takes that result as its first input and a fresh operand as its second
    (``((a op b) op c) op ...``), the true component following ``table``. After ``depth`` steps the
    codes are classified and scored as in ``relation_accuracy_grid``, whose return value this shares.
    """
    prior, alphas, random_state, depths, num_components = _chain_arguments(
        prior, alphas, random_state, depths, n, acceptance)
    table = _to_numpy(table)
    if (table.ndim != 3 or table.shape[1:] != (num_components, num_components) or table.shape[0] == 0
            or not np.issubdtype(table.dtype, np.integer) or table.max() >= num_components):
        raise ValueError(f"table must be int [R, C, C] with C = {num_components} components and values < C, "
                         f"got {table.dtype} {table.shape}")
    table = table.astype(np.int64)
    operands = np.flatnonzero((table >= 0).any(axis=(0, 2)))
    if len(operands) == 0:
        raise ValueError("table has no operand pair (every entry is -1)")
    if not np.isin(table[:, operands][:, :, operands], operands).all():
        raise ValueError("table maps some operand pair to a component that is no operand; results cannot be composed")
    components = operands[random_state.randint(len(operands), size=int(n))]
    codes = _sample_components(prior, components, random_state)

    def advance(codes: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        second = operands[random_state.randint(len(operands), size=int(n))]
        relation = random_state.randint(table.shape[0], size=int(n))
        output = relational_model(codes, relation, _sample_components(prior, second, random_state))
        return output, table[relation, components, second]

    return _scored_chain(codes, components, advance, prior, depths, alphas, acceptance)


def relation_accuracy_by_depth(
    relational_model: Callable[[np.ndarray, np.ndarray], Any],
    prior: Any,
    relations: Any,
    *,
    depths: Iterable[int] = range(1, 11),
    alpha: float = 0.0,
    n: int = 1000,
    random_state,
    acceptance: str = DEFAULT_ACCEPTANCE,
    score: str = "combination",
) -> list[dict[str, float]]:
    """``[{"depth", "accuracy", "accepted_ratio"}, ...]`` at one ``alpha``; see ``relation_accuracy_grid``."""
    rows = relation_accuracy_grid(relational_model, prior, relations, depths=depths, alphas=[alpha], n=n,
                                  random_state=random_state, acceptance=acceptance, score=score)
    return [{"depth": row["depth"], "accuracy": row["accuracy"], "accepted_ratio": row["accepted_ratio"]}
            for row in rows]


def relation_accuracy(
    relational_model: Callable[[np.ndarray, np.ndarray], Any],
    prior: Any,
    relations: Any,
    depth: int,
    alpha: float,
    n: int,
    random_state,
    *,
    acceptance: str = DEFAULT_ACCEPTANCE,
    score: str = "combination",
) -> dict[str, float]:
    """``{"accuracy", "accepted_ratio"}`` of the relational model composed ``depth`` times; see
    ``relation_accuracy_grid`` (``score`` too)."""
    result = relation_accuracy_grid(
        relational_model, prior, relations, depths=[depth], alphas=[alpha], n=n,
        random_state=random_state, acceptance=acceptance, score=score,
    )[0]
    return {"accuracy": result["accuracy"], "accepted_ratio": result["accepted_ratio"]}


def binary_relation_result_accuracy(
    relational_outputs: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[Any, Any]],
    prior: Any,
    table: Any,
    *,
    n: int = 1000,
    random_state,
    acceptance: str = DEFAULT_ACCEPTANCE,
) -> float:
    """Fraction of binary relations whose whole result is right: every output code classified into
    its target component and, where the ReL also outputs a sign, the sign right (Figure 10's variants).

    ``table`` int [R, C, C, O]: per relation and operand components, the target component of each
    output code, then (when there are more columns than output codes) the sign class, 1 = negative;
    -1 where (a, b) is no operand pair. ``relational_outputs(codes [n, D], relation [n], second [n, D])
    -> (codes [n, O', D], negative-sign logits [n] or None)``. ``n`` operand pairs and relations are
    drawn uniformly, one code sampled from each operand's component (depth 1, no acceptance threshold).
    """
    prior, _, random_state, _, num_components = _chain_arguments(prior, [0.0], random_state, [1], n, acceptance)
    table = _to_numpy(table)
    if table.ndim != 4 or table.shape[1:3] != (num_components, num_components) or table.shape[0] == 0 \
            or not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"table must be int [R, C, C, O] with C = {num_components} components, "
                         f"got {table.dtype} {table.shape}")
    operands = np.flatnonzero((table[..., 0] >= 0).any(axis=(0, 2)))
    if len(operands) == 0:
        raise ValueError("table has no operand pair (every entry is -1)")
    first, second = (operands[random_state.randint(len(operands), size=int(n))] for _ in range(2))
    relation = random_state.randint(table.shape[0], size=int(n))
    codes, sign = relational_outputs(_sample_components(prior, first, random_state), relation,
                                     _sample_components(prior, second, random_state))
    codes = _to_numpy(codes)
    codes = codes[:, None, :] if codes.ndim == 2 else codes
    targets = table[relation, first, second]
    if codes.shape[1] + (sign is not None) != targets.shape[1]:
        raise ValueError(f"the relational model gives {codes.shape[1]} code(s)"
                         f"{' and a sign' if sign is not None else ''}; the table has {targets.shape[1]} outputs")
    right = np.ones(int(n), dtype=bool)
    for o in range(codes.shape[1]):
        predicted, _ = _classify_log(_check_codes_for(prior, codes[:, o], f"relational output {o}"), prior, acceptance)
        right &= (predicted == _true_factors(prior, targets[:, o])).all(axis=1)
    if sign is not None:
        right &= (_to_numpy(sign).reshape(-1) > 0) == (targets[:, -1] == 1)
    return float(right.mean())
