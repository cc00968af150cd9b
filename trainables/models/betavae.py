"""beta-VAE (Higgins et al.): ELBO with the KL weighted by ``beta``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from trainables.models.base import ModelConfig
from trainables.models.vae import GaussianVAE, VAEConfig


@dataclass
class BetaVAEConfig(VAEConfig):
    """beta-VAE: ``beta`` weighs the KL term."""


class BetaVAE(GaussianVAE):
    name: ClassVar[str] = "betavae"
    config_cls: ClassVar[type[ModelConfig]] = BetaVAEConfig

    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        self._begin_step()
        parts = self._forward_losses(batch)
        loss = parts["recon"] + self.config.beta * parts["kl"]
        self._optimise(self._optimizers["vae"], loss)
        return {"recon": parts["recon"].detach(), "kl": parts["kl"].detach(), "loss": loss.detach()}
