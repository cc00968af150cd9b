"""M-AE + ReL (modular weak disentanglement): the code is split into one partition per relevant
factor (``latent_dim`` dims each, 8 by default); partition k follows its own Gaussian mixture with one
component per value of factor k. By default each partition has its own discriminator (the sum of
per-partition KL terms of the modular paper's Eq. 1); ``discriminator: joint`` uses one discriminator on
the whole code against the product of the mixtures (Eq. 2's single d(z)), which also sees dependence
between partitions. ``partition_tc_weight`` (NOT in the papers) adds a FactorVAE-style total
correlation between the partitions to the encoder's loss, estimated by a critic that tells codes from
codes whose partitions were shuffled independently across the batch. The ReL loss is the modular paper's
Eq. 3: the changed partition is scored under the new value's component, the others under their own.
See :mod:`trainables.models.weak` for the training step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig, make_adam, seeded
from trainables.models.factorvae import permute_dims
from trainables.models.networks import MLP, GroupedMLP
from trainables.models.priors import ModularPrior, check_coverage
from trainables.models.weak import WeakAutoencoder, WeakConfig, r1_penalty


DISCRIMINATORS = ("partition", "joint")


@dataclass
class MAEConfig(WeakConfig):
    """M-AE: ``latent_dim`` is the size of each factor's partition; the code has latent_dim * K dims."""

    discriminator: str = "partition"   # "partition": one per partition (Eq. 1's sum of KLs); "joint": one
                                       # on the whole code (Eq. 2's d(z)); docs/reproduction.md measures both
    partition_tc_weight: float = 0.0   # NOT in the papers: weight of the partitions' total correlation
                                       # (a critic's density-ratio estimate, as FactorVAE's); 0 = off
    partition_critic_r1: float = 0.0       # weight of an R1 penalty on that term's critic at the codes
    partition_tc_from: int | None = None   # first step of the partition_tc_weight term (its critic learns
                                           # from step 0); None = warmup_steps, the mixture's fit
    partition_mean_dropout: float = 0.0    # NOT in the papers: after the fit, the probability that a partition
                                           # of a code is replaced, for decoding, by its most likely
                                           # component's mean (each partition and code drawn apart); 0 = off
    code_mean_dropout: float = 0.0         # NOT in the papers: after the fit, the probability that a whole code
                                           # is decoded at its most likely component's mean, every partition
                                           # at once (what ReL outputs and prior means are); 0 = off

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        if not self.partition_tc_weight >= 0:
            raise WeakdisError(f"{model_name} config: partition_tc_weight={self.partition_tc_weight!r} is invalid; "
                               "expected a number >= 0")
        if not self.partition_critic_r1 >= 0:
            raise WeakdisError(f"{model_name} config: partition_critic_r1={self.partition_critic_r1!r} is invalid; "
                               "expected a number >= 0")
        if self.partition_tc_from is not None and self.partition_tc_from < self.warmup_steps:
            raise WeakdisError(f"{model_name} config: partition_tc_from={self.partition_tc_from!r} is invalid; "
                               f"expected an integer >= warmup_steps ({self.warmup_steps}) or null (= warmup_steps)")
        for key in ("partition_mean_dropout", "code_mean_dropout"):
            if not 0 <= getattr(self, key) <= 1:
                raise WeakdisError(f"{model_name} config: {key}={getattr(self, key)!r} is invalid; expected a "
                                   "probability in [0, 1]")
        if self.discriminator not in DISCRIMINATORS:
            raise WeakdisError(f"{model_name} config: discriminator={self.discriminator!r} is invalid; "
                               f"expected one of {', '.join(DISCRIMINATORS)}")


class MAE(WeakAutoencoder):
    name: ClassVar[str] = "mae"
    config_cls: ClassVar[type[ModelConfig]] = MAEConfig

    prior: ModularPrior

    def __init__(self, config: MAEConfig, spec, num_channels: int) -> None:
        super().__init__(config, spec, num_channels)
        if config.partition_tc_weight > 0:
            # built only when on, so that the other configs' networks, states and streams stay as they were
            with seeded(config.seed + 1):
                self.partition_critic = MLP(self.code_dim, 1, hidden=config.mlp_hidden)
            self._optimizers["partition_critic"] = make_adam(list(self.partition_critic.parameters()),
                                                             config.disc_lr or config.lr)

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

    def _critic_logits(self, z: Tensor) -> Tensor:
        with self.autocast():
            return self.partition_critic(z).float().squeeze(-1)

    def _code_penalties(self, z: Tensor, step: int) -> dict[str, tuple[float, Tensor]]:
        """The partitions' total correlation, ``E[logit c(z)]`` (Kim & Mnih's estimate), from step
        ``partition_tc_from``: during warm-up, against its weak prior term, it lets the discriminators
        win, and started after the partitions have sorted out their factors its then near-certain
        critic breaks the codes (docs/reproduction.md)."""
        start = self.config.warmup_steps if self.config.partition_tc_from is None else self.config.partition_tc_from
        if self.config.partition_tc_weight == 0 or step < start:
            return {}
        self.partition_critic.requires_grad_(False)
        try:
            tc = self._critic_logits(z).mean()
        finally:
            self.partition_critic.requires_grad_(True)
        return {"partition_tc": (self.config.partition_tc_weight, tc)}

    def _label_head_inputs(self, z: Tensor) -> list[Tensor]:
        """Partition k for factor k's linear label classifier."""
        return list(z.split(self.config.latent_dim, dim=1))

    def _decoder_input(self, z: Tensor) -> Tensor:
        """With ``partition_mean_dropout`` after the fit, each partition of each code is replaced with
        that probability by the mean of its most likely component, so that the decoder learns to draw
        a factor from the component its own partition is in (what ReL outputs and prior means give
        it), not from the detail other partitions carry about it. With ``code_mean_dropout`` each code is
        also replaced whole, every partition at once, with that probability: the decoder draws each
        factor from every partition's detail (docs/reproduction.md, "Where the heart's orientation
        lives"), and independent draws hardly ever take all of it away."""
        p, whole = self.config.partition_mean_dropout, self.config.code_mean_dropout
        if (p == 0 and whole == 0) or not self._prior_ready:
            return z
        with torch.no_grad():
            means = self.prior.means[self.prior.predict(z.detach().float())]
            drop = torch.rand(z.shape[0], self.num_partitions, generator=self.generator(), device=z.device) < p
            if whole > 0:   # drawn only when on, so that partition_mean_dropout's runs keep their stream
                drop |= torch.rand(z.shape[0], 1, generator=self.generator(), device=z.device) < whole
            drop = drop.repeat_interleave(self.config.latent_dim, dim=1)
        return torch.where(drop, means.to(z.dtype), z)

    def _train_code_critics(self, z: Tensor) -> dict[str, Tensor]:
        """The critic: codes are "real", codes with partitions shuffled across the batch "fake"; with
        ``partition_critic_r1`` > 0, an R1 penalty at the real codes."""
        if self.config.partition_tc_weight == 0:
            return {}
        shuffled = permute_dims(z, self.generator(), groups=self.num_partitions)
        r1 = self.config.partition_critic_r1 > 0
        z = z.detach().requires_grad_(r1)
        real, fake = self._critic_logits(z), self._critic_logits(shuffled)
        with self.full_precision():
            loss = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
            if r1:
                loss = loss + r1_penalty(real, z, self.config.partition_critic_r1)
        self._optimise(self._optimizers["partition_critic"], loss)
        return {"partition_critic": loss.detach()}

    def _check_supervision(self, factors: np.ndarray) -> None:
        for k, (name, size) in enumerate(zip(self.spec.factor_names, self.spec.factor_sizes)):
            check_coverage(factors[:, k], np.arange(size)[:, None], (name,),
                           what=f"{self.name} prior component of factor {name!r}")
        self._single_codes = any(len(np.unique(column)) == len(column) for column in factors.T)

    def _fit_prior_from(self, codes: Tensor, factors: Tensor) -> None:
        self.prior.fit(codes, factors, self._spread_codes())

    def _predicted_factors(self, codes: Tensor) -> Tensor:
        return self.prior.predict_factors(codes)
