"""beta-TCVAE (Chen et al.): ELBO with the total correlation weighted by ``beta``, the TC estimated
with minibatch-weighted sampling (MWS).

Loss per batch: ``recon + kl + (beta - 1) * tc`` (the TC decomposition with alpha = gamma = 1; with
``beta = 1`` it is the plain ELBO). MWS: ``log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M)`` and
``log prod_d q(z_id) ~ sum_d [logsumexp_j log q(z_id | x_j) - log(N M)]`` for a batch of ``M`` codes
from a data set of ``N`` (``dataset_size``; the training split size when the dataset says, else
``M``). ``N`` shifts the reported TC by a constant and does not change gradients.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig
from trainables.models.vae import GaussianVAE, VAEConfig, gaussian_log_density


def mws_log_densities(z: Tensor, mean: Tensor, logvar: Tensor, dataset_size: int) -> tuple[Tensor, Tensor]:
    """MWS estimates ``(log q(z_i), log prod_d q(z_id))``, each ``[M]``, for samples ``z [M, D]``
    drawn from the posteriors ``N(mean[i], exp(logvar[i]))`` of the same batch."""
    m = z.shape[0]
    pairwise = gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])   # [M, M, D]
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(pairwise.sum(dim=2), dim=1) - log_nm
    log_prod_qzj = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(dim=1)
    return log_qz, log_prod_qzj


def mws_total_correlation(z: Tensor, mean: Tensor, logvar: Tensor, dataset_size: int) -> Tensor:
    log_qz, log_prod_qzj = mws_log_densities(z, mean, logvar, dataset_size)
    return (log_qz - log_prod_qzj).mean()


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """beta-TCVAE: ``beta`` weighs the TC; ``dataset_size`` is N of the MWS estimator (None = batch)."""

    dataset_size: int | None = None

    @classmethod
    def defaults_from_dataset(cls, dataset: Any, values: dict[str, Any], extras: Mapping[str, Any]) -> dict[str, Any]:
        if "dataset_size" in extras:
            return {}
        splits = getattr(dataset, "splits", None)
        if isinstance(splits, Mapping) and "train" in splits:
            return {"dataset_size": int(len(splits["train"]))}
        return {}

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        if self.dataset_size is not None and self.dataset_size < 1:
            raise WeakdisError(f"{model_name} config: dataset_size={self.dataset_size!r} is invalid; "
                               "expected an integer >= 1 or null")


class BetaTCVAE(GaussianVAE):
    name: ClassVar[str] = "betatcvae"
    config_cls: ClassVar[type[ModelConfig]] = BetaTCVAEConfig

    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        self._begin_step()
        parts = self._forward_losses(batch)
        n = self.config.dataset_size or batch.shape[0]
        with self.full_precision():
            tc = mws_total_correlation(parts["z"], parts["mean"], parts["logvar"], n)
            loss = parts["recon"] + parts["kl"] + (self.config.beta - 1.0) * tc
        self._optimise(self._optimizers["vae"], loss)
        return {"recon": parts["recon"].detach(), "kl": parts["kl"].detach(), "tc": tc.detach(),
                "loss": loss.detach()}
