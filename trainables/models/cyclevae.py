"""VAE + forward cycle loss (explicit-disentanglement paper, Eq. 2): x is decoded from (z', y) and x'
from (z, y'), where (z, y) encodes x and (z', y') its pair x'."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from trainables.models.base import ModelConfig
from trainables.models.factored import FactoredConfig, FactoredVAE, forward_cycle_loss, swap_factor_codes


@dataclass
class CycleVAEConfig(FactoredConfig):
    """``pair_factor``: as for simvae."""

    pair_factor: str = ""       # the factor the pairs differ in; "" = the digits' own (rotation or colour)


class CycleVAE(FactoredVAE):
    name: ClassVar[str] = "cyclevae"
    config_cls: ClassVar[type[ModelConfig]] = CycleVAEConfig

    def training_batch(self, dataset: Any, indices: Tensor, generator: torch.Generator | None) -> Any:
        return self._paired(dataset, indices, generator)

    def train_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        self._begin_step()
        x, x_pair = self._pair(batch)
        mean_all, logvar_all = self.posterior(torch.cat([x, x_pair]))
        code, code_pair = self.reparameterise(mean_all, logvar_all).chunk(2)
        swapped_x, swapped_pair = swap_factor_codes(code, code_pair, self.config.latent_dim)
        logits_x, logits_pair = self.logits(torch.cat([swapped_x, swapped_pair])).chunk(2)
        mean, mean_pair = mean_all.chunk(2)
        logvar, logvar_pair = logvar_all.chunk(2)
        with self.full_precision():
            parts = forward_cycle_loss(logits_x, x, logits_pair, x_pair, mean, logvar, mean_pair, logvar_pair,
                                       self.config.beta)
        self._optimise(self._optimizers["vae"], parts["loss"])
        return {key: value.detach() for key, value in parts.items()}
