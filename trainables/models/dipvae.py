"""What DIP-VAE-I and DIP-VAE-II share (Kumar et al. 2018): the ELBO plus a penalty that pushes a covariance of
the codes to the identity,

    lambda_od * sum_{i != j} Cov[i, j]^2 + lambda_d * sum_i (Cov[i, i] - 1)^2,

where Cov is, over the batch, the covariance of the posterior means (DIP-VAE-I) or of the aggregate
posterior, Cov[mu] + E[diag(exp(logvar))] (DIP-VAE-II). As in the paper and disentanglement_lib, the
KL term is not weighted (``beta`` is not used). ``lambda_d`` defaults to ``10 * lambda_od`` (I) or
``lambda_od`` (II), disentanglement_lib's study settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig
from trainables.models.vae import GaussianVAE, VAEConfig


def covariance(values: Tensor) -> Tensor:
    """``[D, D]`` biased covariance of ``values [B, D]`` over the batch."""
    centred = values - values.mean(dim=0, keepdim=True)
    return centred.T @ centred / values.shape[0]


def dip_covariance(mean: Tensor, logvar: Tensor, kind: str) -> Tensor:
    """Cov[mu] (``kind="i"``) or Cov[mu] + E[diag(exp(logvar))] (``kind="ii"``)."""
    cov = covariance(mean)
    if kind == "ii":
        cov = cov + torch.diag(logvar.exp().mean(dim=0))
    return cov


def dip_regulariser(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """lambda_od * sum of squared off-diagonal entries + lambda_d * sum of (diagonal - 1)^2."""
    diagonal = torch.diagonal(cov)
    off_diagonal = cov - torch.diag(diagonal)
    return lambda_od * off_diagonal.square().sum() + lambda_d * (diagonal - 1.0).square().sum()


@dataclass
class DIPVAEConfig(VAEConfig):
    """DIP-VAE: ``lambda_od`` weighs the off-diagonal penalty, ``lambda_d`` the diagonal one
    (None = the study's default ratio to ``lambda_od``)."""

    lambda_od: float = 1.0          # weight of the off-diagonal covariance penalty
    lambda_d: float | None = None   # weight of the diagonal penalty; None = the study's ratio to lambda_od

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        for key in ("lambda_od", "lambda_d"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise WeakdisError(f"{model_name} config: {key}={value!r} is invalid; expected a number >= 0")


class DIPVAE(GaussianVAE):
    """The shared step of DIP-VAE-I / -II (``dipvae1.py``, ``dipvae2.py``)."""

    config_cls: ClassVar[type[ModelConfig]] = DIPVAEConfig
    kind: ClassVar[str] = "i"
    lambda_d_factor: ClassVar[float] = 10.0

    @property
    def lambda_d(self) -> float:
        configured = self.config.lambda_d
        return self.lambda_d_factor * self.config.lambda_od if configured is None else configured

    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        self._begin_step()
        if batch.shape[0] < 2:
            raise WeakdisError(f"{self.name}: batch_size={batch.shape[0]}; expected >= 2 to estimate a covariance")
        parts = self._forward_losses(batch)
        with self.full_precision():
            cov = dip_covariance(parts["mean"], parts["logvar"], self.kind)
            dip = dip_regulariser(cov, self.config.lambda_od, self.lambda_d)
        loss = parts["recon"] + parts["kl"] + dip
        self._optimise(self._optimizers["vae"], loss)
        return {"recon": parts["recon"].detach(), "kl": parts["kl"].detach(), "dip": dip.detach(),
                "loss": loss.detach()}
