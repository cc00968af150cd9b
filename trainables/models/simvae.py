"""VAE + similarity loss (explicit-disentanglement paper, Eq. 1): KL(q(z | x) || q(z | x')) for pairs
x, x' that differ only in the chosen factor, weighted by ``lambda_sim``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from trainables.models.base import ModelConfig
from trainables.models.factored import FactoredConfig, FactoredVAE, similarity_loss


@dataclass
class SimVAEConfig(FactoredConfig):
    """``lambda_sim`` weighs the similarity KL; ``pair_factor`` names the factor the pairs differ in
    (empty: the digits' own, rotation or colour; on other versions a file factor, default ``orientation``)."""

    lambda_sim: float = 1.0     # weight of the similarity KL between the pair's z posteriors
    pair_factor: str = ""       # the factor the pairs differ in; "" = the digits' own (rotation or colour)


class SimVAE(FactoredVAE):
    name: ClassVar[str] = "simvae"
    config_cls: ClassVar[type[ModelConfig]] = SimVAEConfig

    def training_batch(self, dataset: Any, indices: Tensor, generator: torch.Generator | None) -> Any:
        return self._paired(dataset, indices, generator)

    def train_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        self._begin_step()
        x, x_pair = self._pair(batch)
        both = torch.cat([x, x_pair])
        mean_all, logvar_all = self.posterior(both)
        mean, mean_pair = mean_all.chunk(2)
        logvar, logvar_pair = logvar_all.chunk(2)
        logits = self.logits(self.reparameterise(mean, logvar))
        with self.full_precision():
            parts = similarity_loss(logits, x, mean, logvar, mean_pair, logvar_pair,
                                    self.config.latent_dim, self.config.beta, self.config.lambda_sim)
        self._optimise(self._optimizers["vae"], parts["loss"])
        return {key: value.detach() for key, value in parts.items()}
