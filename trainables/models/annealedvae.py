"""AnnealedVAE (Burgess et al. 2018, "Understanding disentangling in beta-VAE"): the reconstruction
plus ``gamma * |KL - C|``, where the capacity C rises linearly from 0 to ``c_max`` (nats) over
``iteration_threshold`` steps and then stays there."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig
from trainables.models.vae import GaussianVAE, VAEConfig


def capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """C at ``step``: ``c_max * step / iteration_threshold``, at most ``c_max``."""
    if iteration_threshold <= 0:
        return float(c_max)
    return float(min(c_max, c_max * step / iteration_threshold))


def annealed_loss(recon: Tensor, kl: Tensor, gamma: float, c: float) -> Tensor:
    return recon + gamma * (kl - c).abs()


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """AnnealedVAE: ``gamma`` (the trial key) weighs |KL - C|; ``c_max`` and ``iteration_threshold``
    set the capacity schedule (disentanglement_lib's study: gamma 1000, c_max 5 to 100, 100,000 steps)."""

    gamma: float = 1.0
    c_max: float = 25.0                 # the capacity C (nats) that the KL is pulled to at the end
    iteration_threshold: int = 100000   # steps over which C rises linearly from 0 to c_max

    TRIAL_KEYS: ClassVar[tuple[str, ...]] = VAEConfig.TRIAL_KEYS + ("gamma",)

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        for key, ok, expected in (("gamma", self.gamma >= 0, "a number >= 0"), ("c_max", self.c_max >= 0, "a number >= 0"),
                                  ("iteration_threshold", self.iteration_threshold >= 0, "an integer >= 0")):
            if not ok:
                raise WeakdisError(f"{model_name} config: {key}={getattr(self, key)!r} is invalid; expected {expected}")


class AnnealedVAE(GaussianVAE):
    name: ClassVar[str] = "annealedvae"
    config_cls: ClassVar[type[ModelConfig]] = AnnealedVAEConfig

    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        self._begin_step()
        parts = self._forward_losses(batch)
        c = capacity(step, self.config.c_max, self.config.iteration_threshold)
        loss = annealed_loss(parts["recon"], parts["kl"], self.config.gamma, c)
        self._optimise(self._optimizers["vae"], loss)
        return {"recon": parts["recon"].detach(), "kl": parts["kl"].detach(), "loss": loss.detach()}
