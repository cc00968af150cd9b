"""The explicit-disentanglement paper's VAE / beta-VAE baselines: the factored (z, y) VAE with the same
networks as ``simvae`` / ``cyclevae`` / ``predvae`` and no explicit loss (negative ELBO, KL weighted by
``beta``), so that the probe on z compares like with like."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from trainables.models.base import ModelConfig
from trainables.models.factored import FactoredConfig, FactoredVAE
from trainables.models.vae import bernoulli_nll, gaussian_kl


@dataclass
class SplitVAEConfig(FactoredConfig):
    """No hyperparameters beyond the factored VAE's."""


class SplitVAE(FactoredVAE):
    name: ClassVar[str] = "splitvae"
    config_cls: ClassVar[type[ModelConfig]] = SplitVAEConfig

    def train_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        self._begin_step()
        x = self.prepare_images(self._images(batch))
        mean, logvar = self.posterior(x)
        logits = self.logits(self.reparameterise(mean, logvar))
        with self.full_precision():
            recon = bernoulli_nll(logits, x).mean()
            kl = gaussian_kl(mean, logvar).mean()
            loss = recon + self.config.beta * kl
        self._optimise(self._optimizers["vae"], loss)
        return {"recon": recon.detach(), "kl": kl.detach(), "loss": loss.detach()}
