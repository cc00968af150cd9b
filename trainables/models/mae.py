"""M-AE + ReL (modular weak disentanglement): the code is split into one partition per relevant
factor (``latent_dim`` dims each, 8 by default); partition k follows its own Gaussian mixture with one
component per value of factor k. By default each partition has its own discriminator (the sum of
per-partition KL terms of the modular paper's Eq. 1); ``discriminator: joint`` uses one discriminator on
the whole code against the product of the mixtures (Eq. 2's single d(z)), which also sees dependence
between partitions. The ReL loss is the modular paper's
Eq. 3: the changed partition is scored under the new value's component, the others under their own.
See :mod:`trainables.models.weak` for the training step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig
from trainables.models.networks import GroupedMLP
from trainables.models.priors import ModularPrior, check_coverage
from trainables.models.weak import WeakAutoencoder, WeakConfig


DISCRIMINATORS = ("partition", "joint")


@dataclass
class MAEConfig(WeakConfig):
    """M-AE: ``latent_dim`` is the size of each factor's partition; the code has latent_dim * K dims."""

    discriminator: str = "partition"   # "partition": one per partition (Eq. 1's sum of KLs); "joint": one
                                       # on the whole code (Eq. 2's d(z)); docs/reproduction.md measures both

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        if self.discriminator not in DISCRIMINATORS:
            raise WeakdisError(f"{model_name} config: discriminator={self.discriminator!r} is invalid; "
                               f"expected one of {', '.join(DISCRIMINATORS)}")


class MAE(WeakAutoencoder):
    name: ClassVar[str] = "mae"
    config_cls: ClassVar[type[ModelConfig]] = MAEConfig

    prior: ModularPrior

    def _code_dim(self) -> int:
        return self.config.latent_dim * len(self.spec.factor_sizes)

    @property
    def num_partitions(self) -> int:
        return len(self.spec.factor_sizes)

    def _build_prior(self) -> nn.Module:
        return ModularPrior(
            self.spec.factor_sizes, self.config.latent_dim, self.spec.factor_names,
            min_samples=self.config.min_component_samples, covariance_floor=self.config.covariance_floor,
            covariance_scale=self.config.prior_covariance_scale,
            covariance_estimator=self.config.prior_covariance_estimator,
        )

    @property
    def _discriminator_groups(self) -> tuple[int, int]:
        """(number of discriminators, width of the code slice each one judges)."""
        if self.config.discriminator == "joint":
            return 1, self.code_dim
        return self.num_partitions, self.config.latent_dim

    def _build_discriminator(self) -> nn.Module:
        return GroupedMLP(*self._discriminator_groups, 1, hidden=self.config.mlp_hidden)

    def _discriminate(self, z: Tensor) -> Tensor:
        """``[B, K]`` logits, discriminator k judging partition k only; ``[B, 1]`` for the joint one."""
        parts = z.reshape(z.shape[0], *self._discriminator_groups).transpose(0, 1)
        with self.autocast():
            return self.discriminator(parts).float().squeeze(-1).transpose(0, 1)

    def _check_supervision(self, factors: np.ndarray) -> None:
        for k, (name, size) in enumerate(zip(self.spec.factor_names, self.spec.factor_sizes)):
            check_coverage(factors[:, k], np.arange(size)[:, None], (name,),
                           what=f"{self.name} prior component of factor {name!r}")

    def _fit_prior_from(self, codes: Tensor, factors: Tensor) -> None:
        self.prior.fit(codes, factors)

    def _predicted_factors(self, codes: Tensor) -> Tensor:
        return self.prior.predict_factors(codes)
