"""AbsAE + ReL (relational weak disentanglement): one Gaussian-mixture component per combination of
relevant-factor values, adversarial prior matching on the whole code, a relational learner on top.
See :mod:`trainables.models.weak` for the training step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from trainables.data.versions import combination_index
from trainables.models.base import ModelConfig
from trainables.models.networks import MLP
from trainables.models.priors import GaussianMixturePrior, check_coverage, combination_indices
from trainables.models.weak import WeakAutoencoder, WeakConfig


@dataclass
class AbsAEConfig(WeakConfig):
    """AbsAE: ``latent_dim`` is the code size (8 for dSprites, 16 for Shapes3D in the paper)."""


class AbsAE(WeakAutoencoder):
    name: ClassVar[str] = "absae"
    config_cls: ClassVar[type[ModelConfig]] = AbsAEConfig

    prior: GaussianMixturePrior

    def _code_dim(self) -> int:
        return self.config.latent_dim

    def _build_prior(self) -> nn.Module:
        return GaussianMixturePrior(
            self.spec.combination_factors(), self.code_dim, self.spec.factor_names,
            min_samples=self.config.min_component_samples, covariance_floor=self.config.covariance_floor,
            covariance_scale=self.config.prior_covariance_scale,
            covariance_estimator=self.config.prior_covariance_estimator,
        )

    def _build_discriminator(self) -> nn.Module:
        return MLP(self._code_dim(), 1, hidden=self.config.mlp_hidden)

    def _discriminate(self, z: Tensor) -> Tensor:
        with self.autocast():
            return self.discriminator(z).float()

    def _check_supervision(self, factors: np.ndarray) -> None:
        combinations = combination_index(factors, self.spec.factor_sizes)
        check_coverage(
            combinations, np.asarray(self.spec.combination_factors()), self.spec.factor_names,
            what=f"{self.name} prior component",
        )
        self._single_codes = len(np.unique(combinations)) == len(combinations)

    def _fit_prior_from(self, codes: Tensor, factors: Tensor) -> None:
        self.prior.fit(codes, combination_indices(factors, self.spec.factor_sizes), self._spread_codes())

    def _predicted_factors(self, codes: Tensor) -> Tensor:
        return self.prior.component_factors[self.prior.predict(codes)]
