"""The Gaussian-encoder / Bernoulli-decoder VAE that beta-VAE, FactorVAE and beta-TCVAE share.

The encoder outputs ``2 * latent_dim`` numbers: the posterior mean and log-variance. The
reconstruction term is the Bernoulli negative log-likelihood summed over pixels (mean over the batch),
so that ``beta = 1`` is the plain ELBO; ``kl`` is the analytic KL to N(0, I), also per image.
``representation(x)`` gives the posterior means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.models.base import ModelConfig, WeakdisModel, make_adam, seeded
from trainables.models.networks import image_size_of, make_decoder, make_encoder

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """``[B]`` KL(N(mean, exp(logvar)) || N(0, I)), summed over dimensions."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


def gaussian_log_density(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Element-wise log N(z; mean, exp(logvar)) (broadcasting)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).square() * torch.exp(-logvar))


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    """``[B]`` Bernoulli negative log-likelihood of the images, summed over pixels."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


@dataclass
class VAEConfig(ModelConfig):
    """Fields of every VAE baseline."""


class GaussianVAE(WeakdisModel):
    """Base of the VAE baselines; subclasses add their own regulariser in :meth:`train_step`."""

    config_cls: ClassVar[type[ModelConfig]] = VAEConfig

    def __init__(self, config: VAEConfig, spec: Any, num_channels: int) -> None:
        super().__init__(config, spec, num_channels)
        with seeded(config.seed):
            self.encoder, self.decoder = self._build_networks(spec, num_channels)
            self._build_extra_networks()
        self._optimizers = {
            "vae": make_adam(list(self.encoder.parameters()) + list(self.decoder.parameters()), config.lr),
            **self._extra_optimizers(),
        }

    def _build_networks(self, spec: Any, num_channels: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The encoder (posterior mean and log-variance) and decoder of ``config.latent_dim`` codes."""
        size = image_size_of(spec)
        return (make_encoder(num_channels, 2 * self.config.latent_dim, size),
                make_decoder(num_channels, self.config.latent_dim, size))

    def _build_extra_networks(self) -> None:
        pass

    def _extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance ``[B, latent_dim]`` each (float32)."""
        with self.autocast():
            stats = self.encoder(self.prepare_images(x)).float()
        mean, logvar = stats.chunk(2, dim=1)
        return mean, logvar

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def reparameterise(self, mean: Tensor, logvar: Tensor) -> Tensor:
        eps = torch.randn(mean.shape, generator=self.generator(), device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def _forward_losses(self, batch: Tensor) -> dict[str, Tensor]:
        """Shared part of a step: posterior, sample, reconstruction and KL (per-batch means)."""
        x = self.prepare_images(batch)
        mean, logvar = self.posterior(x)
        z = self.reparameterise(mean, logvar)
        with self.autocast():
            logits = self.decoder(z)
        with self.full_precision():
            recon = bernoulli_nll(logits.float(), x.float()).mean()
            kl = gaussian_kl(mean, logvar).mean()
        return {"mean": mean, "logvar": logvar, "z": z, "recon": recon, "kl": kl}

    def _begin_step(self) -> None:
        if not self.training:
            self.train()
        self._sync_start()
