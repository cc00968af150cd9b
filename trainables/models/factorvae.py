"""FactorVAE (Kim & Mnih, Algorithm 2): ELBO minus ``beta`` * total correlation, where the TC is the
density-ratio estimate ``E[logit D(z)]`` of a discriminator that tells codes from codes whose
dimensions were permuted independently across the batch.

Here ``beta`` is the TC weight (Kim & Mnih's gamma). The discriminator is the papers' MLP (3 x 1024
tanh) with one logit; as in disentanglement_lib, the permuted codes come from the same batch (detached)
rather than from a second batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig, make_adam
from trainables.models.networks import MLP
from trainables.models.vae import GaussianVAE, VAEConfig


def permute_dims(z: Tensor, generator: torch.Generator | None = None, groups: int | None = None) -> Tensor:
    """Kim & Mnih's Algorithm 1: each column of ``z [B, D]`` permuted independently across the batch.
    With ``groups``, ``D`` is cut into that many equal blocks of columns and each block is permuted
    as a whole (M-AE's partitions: the dependence between blocks is broken, not within one)."""
    if groups is None:
        keys = torch.rand(z.shape, generator=generator, device=z.device)
        return torch.gather(z, 0, keys.argsort(dim=0))
    if groups < 1 or z.shape[1] % groups:
        raise WeakdisError(f"permute_dims: groups={groups!r}; expected a divisor of the code width {z.shape[1]}")
    keys = torch.rand((z.shape[0], groups), generator=generator, device=z.device)
    order = keys.argsort(dim=0).repeat_interleave(z.shape[1] // groups, dim=1)
    return torch.gather(z, 0, order)


@dataclass
class FactorVAEConfig(VAEConfig):
    """FactorVAE: ``beta`` weighs the TC estimate; ``disc_lr`` is the discriminator's learning rate."""

    disc_lr: float | None = None            # None = lr

    TRIAL_KEYS: ClassVar[tuple[str, ...]] = VAEConfig.TRIAL_KEYS + ("disc_lr",)


class FactorVAE(GaussianVAE):
    name: ClassVar[str] = "factorvae"
    config_cls: ClassVar[type[ModelConfig]] = FactorVAEConfig

    def _build_extra_networks(self) -> None:
        self.discriminator = MLP(self.config.latent_dim, 1)

    def _extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"discriminator": make_adam(list(self.discriminator.parameters()), self.config.disc_lr or self.config.lr)}

    def _critic(self, z: Tensor) -> Tensor:
        with self.autocast():
            return self.discriminator(z).float().squeeze(-1)

    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        self._begin_step()
        if batch.shape[0] < 2:
            raise WeakdisError(f"factorvae: batch_size={batch.shape[0]}; expected >= 2 to permute codes")
        parts = self._forward_losses(batch)
        self.discriminator.requires_grad_(False)
        with self.full_precision():
            tc = self._critic(parts["z"]).mean()
            loss = parts["recon"] + parts["kl"] + self.config.beta * tc
        self.discriminator.requires_grad_(True)
        self._optimise(self._optimizers["vae"], loss)

        z = parts["z"].detach()
        permuted = permute_dims(z, self.generator())
        real, fake = self._critic(z), self._critic(permuted)
        with self.full_precision():
            disc = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
        self._optimise(self._optimizers["discriminator"], disc)
        return {"recon": parts["recon"].detach(), "kl": parts["kl"].detach(), "tc": tc.detach(),
                "disc": disc.detach(), "loss": loss.detach()}
