"""Priors on the latent codes: the Gaussian mixture of AbsAE and the per-factor mixtures of M-AE.

A :class:`GaussianMixturePrior` has one equal-weight component per combination of relevant-factor
values. Its means and covariances are estimated from the encoded labelled samples (:meth:`fit`); the
Cholesky factor ``L`` of each covariance and its inverse ``P = L^-1`` are cached at fit time, so that
sampling is ``mean[c] + L[c] @ eps`` and scoring is one matrix product, both batched on the device.

Covariance estimate of a component with ``n`` labelled codes (``D`` = code size, ``m`` =
``min_samples``, by default ``D + 1``): the unbiased sample covariance ``S`` when ``n >= m``; otherwise
the shrinkage ``w * S + (1 - w) * diag(v)`` with ``w = (n - 1) / (m - 1)``, where ``v`` is the pooled
within-component variance of all labelled codes. A single sample therefore gets the diagonal
``diag(v)``. Where every component has a single sample there is no within-component variance to pool:
``v`` is then half the per-dimension mean squared distance of ``unlabelled`` codes to their nearest
component mean, or, without them, the overall variance of the labelled codes. The overall variance
makes the mixture twice as wide as the codes (its means are the codes themselves), so an adversarial
prior refitted to them widens the codes at every refit (docs/reproduction.md, "AbsAE on
shapes3d:v5"). ``covariance_floor`` (times the mean per-dimension variance of all labelled codes when
that exceeds 1) is added to every diagonal so that each covariance is positive definite, in float32
too.

``covariance_estimator`` replaces ``S`` of a component with ``n >= 2`` codes by a shrinkage estimate
of its covariance toward ``mu * I`` (``mu`` its mean per-dimension variance), with the shrinkage
intensity of Ledoit & Wolf (2004, ``"ledoit_wolf"``) or Chen et al. (2010, ``"oas"``), computed
as :class:`sklearn.covariance.LedoitWolf` and :class:`sklearn.covariance.OAS` do from the maximum-
likelihood covariance. A sample covariance from a few dozen codes in ``D`` dimensions underestimates
its smallest eigenvalues, so codes drawn like the labelled ones fall outside the component along
them; shrinkage corrects that (docs/reproduction.md, "Shrunk covariances").

A component without any labelled sample is an error (:func:`check_coverage`), raised before anything
is fitted.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from trainables.errors import WeakdisError

# Elements of the [chunk, C, D] intermediate of log_prob_components; bounds memory for big mixtures.
_SCORE_CHUNK_ELEMENTS = 1 << 24

COVARIANCE_ESTIMATORS = ("sample", "ledoit_wolf", "oas")


def uniform_codes(n: int, dim: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """``n`` codes from the warm-up prior Uniform(-1, 1)^dim."""
    return torch.rand(n, dim, generator=generator, device=device) * 2.0 - 1.0


def combination_indices(factors: Tensor, factor_sizes: Sequence[int]) -> Tensor:
    """``[B]`` row-major index (last factor fastest) of each row of ``factors [B, K]``, on its device."""
    index = torch.zeros_like(factors[:, 0])
    for k, size in enumerate(factor_sizes):
        index = index * size + factors[:, k]
    return index


def check_coverage(
    components: np.ndarray,
    component_factors: np.ndarray,
    factor_names: Sequence[str],
    *,
    what: str = "prior component",
) -> None:
    """Raise a :class:`WeakdisError` naming the first component that has no labelled sample."""
    components = np.asarray(components, dtype=np.int64).reshape(-1)
    counts = np.bincount(components, minlength=len(component_factors))
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        values = ", ".join(f"{n}={int(v)}" for n, v in zip(factor_names, component_factors[empty[0]]))
        every = (f"value of {factor_names[0]}" if len(factor_names) == 1
                 else "combination of relevant-factor values")
        raise WeakdisError(
            f"{what} ({values}) has no labelled sample among tau={len(components)} labelled samples "
            f"({len(empty)} of {len(component_factors)} components are empty); expected every "
            f"{every} to be labelled at least once: raise tau, draw it with "
            "tau_sampling: stratified (one image of each combination first), or, where the training split "
            "holds no image of some combinations (a data_images subset of a large version), use more images"
        )


class GaussianMixturePrior(nn.Module):
    """Equal-weight Gaussian mixture, one component per row of ``component_factors [C, K]``."""

    def __init__(
        self,
        component_factors: np.ndarray,
        dim: int,
        factor_names: Sequence[str] | None = None,
        *,
        min_samples: int | None = None,
        covariance_floor: float = 1e-4,
        covariance_scale: float = 1.0,
        covariance_estimator: str = "sample",
    ) -> None:
        super().__init__()
        if covariance_estimator not in COVARIANCE_ESTIMATORS:
            raise WeakdisError(f"covariance_estimator={covariance_estimator!r}; expected one of "
                               + ", ".join(COVARIANCE_ESTIMATORS))
        factors = np.asarray(component_factors, dtype=np.int64)
        if factors.ndim != 2 or len(factors) < 1:
            raise WeakdisError(f"component_factors has shape {factors.shape}; expected [C >= 1, K]")
        if dim < 1:
            raise WeakdisError(f"prior dim={dim!r}; expected an integer >= 1")
        self.dim = int(dim)
        self.num_components = len(factors)
        self.factor_names = tuple(factor_names) if factor_names is not None else tuple(
            f"factor{k}" for k in range(factors.shape[1])
        )
        self.min_samples = int(min_samples) if min_samples is not None else self.dim + 1
        self.covariance_floor = float(covariance_floor)
        self.covariance_scale = float(covariance_scale)
        self.covariance_estimator = covariance_estimator
        c, d = self.num_components, self.dim
        eye = torch.eye(d).expand(c, d, d).clone()
        self.register_buffer("component_factors", torch.as_tensor(factors))
        self.register_buffer("means", torch.zeros(c, d))
        self.register_buffer("covariances", eye.clone())
        self.register_buffer("cholesky", eye.clone())
        self.register_buffer("precision_cholesky", eye.clone())
        self.register_buffer("log_norm", torch.full((c,), -0.5 * d * math.log(2 * math.pi)))
        self.register_buffer("fitted_flag", torch.zeros((), dtype=torch.bool))

    # ---- state -------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the parameters were fitted or set (a host read: not for the training step)."""
        return bool(self.fitted_flag)

    # ---- fitting -----------------------------------------------------------------------------
    def set_parameters(self, means: Tensor, covariances: Tensor) -> None:
        """Set means ``[C, D]`` and covariances ``[C, D, D]`` directly and cache their factors."""
        means = torch.as_tensor(means, dtype=torch.float64, device=self.means.device)
        covariances = torch.as_tensor(covariances, dtype=torch.float64, device=self.means.device)
        expected = (self.num_components, self.dim)
        if tuple(means.shape) != expected or tuple(covariances.shape) != (*expected, self.dim):
            raise WeakdisError(
                f"prior parameters have shapes {tuple(means.shape)} and {tuple(covariances.shape)}; "
                f"expected {expected} and {(*expected, self.dim)}"
            )
        chol, _ = torch.linalg.cholesky_ex(covariances)
        eye = torch.eye(self.dim, dtype=torch.float64, device=chol.device).expand_as(chol)
        precision_chol = torch.linalg.solve_triangular(chol, eye, upper=False)
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        self.means.copy_(means)
        self.covariances.copy_(covariances)
        self.cholesky.copy_(chol)
        self.precision_cholesky.copy_(precision_chol)
        self.log_norm.copy_(-0.5 * (self.dim * math.log(2 * math.pi) + log_det))
        self.fitted_flag.fill_(True)

    @torch.no_grad()
    def fit(self, codes: Tensor, components: Tensor, unlabelled: Tensor | None = None) -> None:
        """Estimate every component from ``codes [N, D]`` labelled with ``components [N]``;
        ``unlabelled [M, D]`` codes set the spread where every component has one code (module doc).

        The estimated covariances are multiplied by ``covariance_scale``: below 1 the components are
        tighter than the labelled codes, so the adversarial term pulls codes towards their component's
        mean. No host synchronisation: check coverage beforehand with :func:`check_coverage`.
        """
        means, covariances = estimate_mixture(
            codes, components, self.num_components,
            min_samples=self.min_samples, covariance_floor=self.covariance_floor,
            estimator=self.covariance_estimator, unlabelled=unlabelled,
        )
        self.set_parameters(means, covariances * self.covariance_scale)

    # ---- scoring and sampling ----------------------------------------------------------------
    def log_prob_components(self, z: Tensor) -> Tensor:
        """``[B, C]`` log-density of each code under each component (not weighted by 1/C)."""
        z = torch.as_tensor(z, device=self.means.device).float()
        c, d = self.num_components, self.dim
        flat_p = self.precision_cholesky.reshape(c * d, d)           # rows: P[c] @ z gives whitened code
        shifted = (self.precision_cholesky @ self.means.unsqueeze(-1)).reshape(c * d)
        chunk = max(1, _SCORE_CHUNK_ELEMENTS // (c * d))
        out = []
        for start in range(0, z.shape[0], chunk):
            whitened = z[start:start + chunk] @ flat_p.T - shifted    # [b, C*D]
            maha = whitened.reshape(-1, c, d).square().sum(-1)
            out.append(self.log_norm - 0.5 * maha)
        return torch.cat(out) if out else z.new_zeros(0, c)

    def log_prob(self, z: Tensor, components: Tensor) -> Tensor:
        """``[B]`` log-density of ``z[b]`` under its own component ``components[b]`` (differentiable)."""
        p = self.precision_cholesky[components]                       # [B, D, D]
        whitened = (p @ (z.float() - self.means[components]).unsqueeze(-1)).squeeze(-1)
        return self.log_norm[components] - 0.5 * whitened.square().sum(-1)

    def log_density(self, z: Tensor) -> Tensor:
        """``[B]`` log-density of the whole equal-weight mixture."""
        return torch.logsumexp(self.log_prob_components(z), dim=1) - math.log(self.num_components)

    def predict(self, z: Tensor) -> Tensor:
        """``[B]`` index of the most likely component of each code."""
        return self.log_prob_components(z).argmax(dim=1)

    def sample_components(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randint(self.num_components, (n,), generator=generator, device=self.means.device)

    def sample(self, n: int, components: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``[n, D]`` codes, code ``i`` drawn from component ``components[i]`` (uniform if None)."""
        if components is None:
            components = self.sample_components(n, generator)
        components = torch.as_tensor(components, device=self.means.device)
        eps = torch.randn(n, self.dim, 1, generator=generator, device=self.means.device)
        return self.means[components] + (self.cholesky[components] @ eps).squeeze(-1)


@torch.no_grad()
def estimate_mixture(
    codes: Tensor,
    components: Tensor,
    num_components: int,
    *,
    min_samples: int,
    covariance_floor: float,
    estimator: str = "sample",
    unlabelled: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-component means ``[C, D]`` and shrunk covariances ``[C, D, D]`` (float64; see module doc)."""
    z = codes.detach().to(torch.float64)
    comp = components.to(device=z.device, dtype=torch.int64)
    n_total, d = z.shape
    counts = torch.zeros(num_components, dtype=torch.float64, device=z.device).index_add_(
        0, comp, torch.ones(n_total, dtype=torch.float64, device=z.device))
    safe_counts = counts.clamp(min=1.0)
    means = torch.zeros(num_components, d, dtype=torch.float64, device=z.device).index_add_(0, comp, z)
    means = means / safe_counts[:, None]
    centred = z - means[comp]
    scatter = torch.zeros(num_components, d, d, dtype=torch.float64, device=z.device).index_add_(
        0, comp, centred[:, :, None] * centred[:, None, :])
    sample_cov = scatter / (counts - 1.0).clamp(min=1.0)[:, None, None]
    if estimator != "sample":
        sample_cov = torch.where((counts >= 2)[:, None, None],
                                 _shrunk_covariance(scatter, counts, centred, comp, estimator), sample_cov)

    nonempty = (counts > 0).sum()
    dof = n_total - nonempty
    pooled = centred.square().sum(0) / dof.clamp(min=1)
    overall = z.var(dim=0, unbiased=n_total > 1) if n_total > 1 else torch.ones(d, dtype=z.dtype, device=z.device)
    no_pool = overall
    if unlabelled is not None and len(unlabelled) > 0:
        no_pool = _nearest_mean_spread(unlabelled.detach().to(z), means)
    pooled = torch.where(dof > 0, pooled, no_pool)
    target = torch.diag_embed(pooled).expand(num_components, d, d)

    weight = ((counts - 1.0) / max(min_samples - 1, 1)).clamp(0.0, 1.0)[:, None, None]
    covariances = weight * sample_cov + (1.0 - weight) * target
    # The floor grows with codes spread wider than unit variance: an absolute 1e-4 under a variance of
    # thousands (codes that ran away) leaves a few-sample covariance so ill-conditioned that its float32
    # copy, which the metrics factorise, is no longer positive definite.
    spread = overall.mean().clamp(min=1.0)
    covariances = covariances + covariance_floor * spread * torch.eye(d, dtype=z.dtype, device=z.device)
    return means, covariances


def _nearest_mean_spread(codes: Tensor, means: Tensor, chunk: int = 1024) -> Tensor:
    """``[D]``: half the per-dimension mean squared difference between each code and its nearest
    mean: a code and a mean that is itself one code of its component differ by twice the variance."""
    squares = []
    for start in range(0, codes.shape[0], chunk):
        block = codes[start:start + chunk]
        nearest = torch.cdist(block, means).argmin(dim=1)
        squares.append((block - means[nearest]).square())
    return torch.cat(squares).mean(0) / 2.0


def _shrunk_covariance(scatter: Tensor, counts: Tensor, centred: Tensor, comp: Tensor, estimator: str) -> Tensor:
    """``(1 - s) * S + s * mu * I`` per component, ``S`` the maximum-likelihood covariance."""
    n = counts.clamp(min=1.0)
    d = scatter.shape[-1]
    mle = scatter / n[:, None, None]
    mu = torch.diagonal(mle, dim1=-2, dim2=-1).sum(-1) / d
    frobenius2 = mle.square().sum((-2, -1))
    if estimator == "ledoit_wolf":
        fourth = torch.zeros_like(counts).index_add_(0, comp, centred.square().sum(1).square())
        beta = (fourth / n - frobenius2) / n
        delta = frobenius2 - d * mu.square()
        shrinkage = torch.where(delta > 0, torch.minimum(beta, delta) / delta.clamp(min=1e-300),
                                torch.zeros_like(delta))
    else:  # "oas"
        alpha = frobenius2 / d ** 2
        num = alpha + mu.square()
        den = (n + 1.0) * (alpha - mu.square() / d)
        shrinkage = torch.where(den > 0, (num / den.clamp(min=1e-300)).clamp(max=1.0), torch.ones_like(den))
    eye = torch.eye(d, dtype=mle.dtype, device=mle.device)
    s = shrinkage[:, None, None]
    return (1.0 - s) * mle + s * mu[:, None, None] * eye


class ModularPrior(nn.Module):
    """M-AE's prior: code partition ``slices[k]`` follows ``priors[k]``, a mixture over factor k's values.

    The product of the per-factor equal-weight mixtures is itself an equal-weight mixture over all
    combinations of factor values with block-diagonal covariances; ``means``, ``covariances``,
    ``component_factors`` and ``log_prob_components`` expose that joint view (combinations in row-major
    order, last factor fastest), so code written for :class:`GaussianMixturePrior` works unchanged.
    """

    def __init__(
        self,
        factor_sizes: Sequence[int],
        partition_dim: int,
        factor_names: Sequence[str] | None = None,
        *,
        min_samples: int | None = None,
        covariance_floor: float = 1e-4,
        covariance_scale: float = 1.0,
        covariance_estimator: str = "sample",
    ) -> None:
        super().__init__()
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_names = tuple(factor_names) if factor_names is not None else tuple(
            f"factor{k}" for k in range(len(self.factor_sizes)))
        self.partition_dim = int(partition_dim)
        self.dim = self.partition_dim * len(self.factor_sizes)
        self.slices = tuple(slice(k * partition_dim, (k + 1) * partition_dim) for k in range(len(self.factor_sizes)))
        self.priors = nn.ModuleList(
            GaussianMixturePrior(
                np.arange(size)[:, None], partition_dim, (name,),
                min_samples=min_samples, covariance_floor=covariance_floor, covariance_scale=covariance_scale,
                covariance_estimator=covariance_estimator,
            )
            for name, size in zip(self.factor_names, self.factor_sizes)
        )
        grids = np.meshgrid(*[np.arange(s) for s in self.factor_sizes], indexing="ij")
        self.register_buffer(
            "component_factors", torch.as_tensor(np.stack([g.reshape(-1) for g in grids], axis=1)))

    @property
    def num_components(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def covariance_scale(self) -> float:
        return self.priors[0].covariance_scale

    @covariance_scale.setter
    def covariance_scale(self, value: float) -> None:
        for prior in self.priors:
            prior.covariance_scale = float(value)

    @property
    def fitted(self) -> bool:
        return all(p.fitted for p in self.priors)

    @property
    def means(self) -> Tensor:
        return torch.cat([p.means[self.component_factors[:, k]] for k, p in enumerate(self.priors)], dim=1)

    @property
    def covariances(self) -> Tensor:
        return _block_diagonal([p.covariances[self.component_factors[:, k]] for k, p in enumerate(self.priors)])

    @torch.no_grad()
    def fit(self, codes: Tensor, factors: Tensor, unlabelled: Tensor | None = None) -> None:
        """Fit each factor's mixture on its partition of ``codes [N, D]`` from ``factors [N, K]``;
        ``unlabelled [M, D]`` codes set the spread of a factor whose every value has one code."""
        for k, prior in enumerate(self.priors):
            prior.fit(codes[:, self.slices[k]], factors[:, k],
                      None if unlabelled is None else unlabelled[:, self.slices[k]])

    def log_prob_factors(self, z: Tensor) -> list[Tensor]:
        """Per factor k, ``[B, V_k]`` log-densities of partition k under each of its components."""
        return [p.log_prob_components(z[:, s]) for p, s in zip(self.priors, self.slices)]

    def log_prob(self, z: Tensor, factors: Tensor) -> Tensor:
        """``[B]`` log-density of ``z[b]`` under the combination ``factors[b]`` (sum over partitions);
        ``factors`` is ``[B, K]`` factor values or ``[B]`` combination indices."""
        if factors.ndim == 1:
            factors = self.component_factors[factors]
        return sum(p.log_prob(z[:, s], factors[:, k]) for k, (p, s) in enumerate(zip(self.priors, self.slices)))

    def log_prob_components(self, z: Tensor) -> Tensor:
        """``[B, C]`` log-density under every combination (sum of the per-factor terms)."""
        per_factor = self.log_prob_factors(torch.as_tensor(z, device=self.component_factors.device))
        return sum(lp[:, self.component_factors[:, k]] for k, lp in enumerate(per_factor))

    def predict_factors(self, z: Tensor) -> Tensor:
        """``[B, K]`` most likely value of each factor, read from its own partition."""
        return torch.stack([lp.argmax(dim=1) for lp in self.log_prob_factors(z)], dim=1)

    def predict(self, z: Tensor) -> Tensor:
        """``[B]`` row-major combination index of :meth:`predict_factors` (= argmax of the joint)."""
        return combination_indices(self.predict_factors(z), self.factor_sizes)

    def sample_factors(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = self.component_factors.device
        return torch.stack(
            [torch.randint(size, (n,), generator=generator, device=device) for size in self.factor_sizes], dim=1)

    def sample(self, n: int, factors: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``[n, D]`` codes; partition k of code i from component ``factors[i, k]`` (uniform if None).

        ``factors`` may also be ``[n]`` combination indices (as for :class:`GaussianMixturePrior`).
        """
        if factors is None:
            factors = self.sample_factors(n, generator)
        factors = torch.as_tensor(factors, device=self.component_factors.device)
        if factors.ndim == 1:
            factors = self.component_factors[factors]
        return torch.cat([p.sample(n, factors[:, k], generator) for k, p in enumerate(self.priors)], dim=1)


def _block_diagonal(blocks: list[Tensor]) -> Tensor:
    """``[C, sum d_k, sum d_k]`` from per-factor ``[C, d_k, d_k]`` blocks."""
    c = blocks[0].shape[0]
    total = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(c, total, total)
    start = 0
    for b in blocks:
        d = b.shape[-1]
        out[:, start:start + d, start:start + d] = b
        start += d
    return out
