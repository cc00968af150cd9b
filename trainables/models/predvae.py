"""VAE + factor prediction (explicit-disentanglement paper, Eq. 3): a predictor g(z) learns to predict
the factor labels from the z part of the code with its own optimiser, while the encoder and decoder
minimise the negative ELBO minus ``lambda_pred`` times g's cross-entropy (so z hides the factor).
The labels are the dataset's ``predictor_labels``: on rotdigits left / right, on colordigits each
colour channel's level, on the other versions every relevant factor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from trainables.models.base import ModelConfig, make_adam
from trainables.models.factored import FactoredConfig, FactoredVAE, predictor_cross_entropy, predictor_vae_loss
from trainables.models.vae import bernoulli_nll, gaussian_kl

PREDICTOR_UNITS = 128


@dataclass
class PredVAEConfig(FactoredConfig):
    """``lambda_pred`` weighs the adversarial term; ``pred_lr`` is g's learning rate (None = lr)."""

    lambda_pred: float = 1.0
    pred_lr: float | None = None


class PredVAE(FactoredVAE):
    name: ClassVar[str] = "predvae"
    config_cls: ClassVar[type[ModelConfig]] = PredVAEConfig

    def __init__(self, config: PredVAEConfig, spec: Any, num_channels: int) -> None:
        # digits: rotation left / right or colour levels; other versions: every relevant factor
        self.classes = tuple(getattr(spec, "predictor_classes", ()) or spec.factor_sizes)
        super().__init__(config, spec, num_channels)

    def _build_extra_networks(self) -> None:
        self.predictor = nn.Sequential(nn.Linear(self.config.latent_dim, PREDICTOR_UNITS), nn.ReLU(),
                                       nn.Linear(PREDICTOR_UNITS, sum(self.classes)))

    def _extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"predictor": make_adam(list(self.predictor.parameters()), self.config.pred_lr or self.config.lr)}

    def training_batch(self, dataset: Any, indices: Tensor, generator: torch.Generator | None) -> Any:
        return {"x": dataset.batch(indices), "labels": dataset.predictor_labels(indices)}

    def train_step(self, batch: Any, step: int) -> dict[str, Tensor]:
        self._begin_step()
        x = self.prepare_images(self._images(batch))
        mean, logvar = self.posterior(x)
        code = self.reparameterise(mean, logvar)
        logits = self.logits(code)
        z = code[:, :self.config.latent_dim]
        if not isinstance(batch, dict):
            # a plain image batch (the common interface) has no labels: the ELBO step alone
            with self.full_precision():
                recon, kl = bernoulli_nll(logits, x).mean(), gaussian_kl(mean, logvar).mean()
            loss = recon + self.config.beta * kl
            self._optimise(self._optimizers["vae"], loss)
            return {"recon": recon.detach(), "kl": kl.detach(), "loss": loss.detach()}
        labels = batch["labels"].to(x.device)
        with self.full_precision():
            parts = predictor_vae_loss(logits, x, mean, logvar, self.predictor(z), labels, self.classes,
                                       self.config.beta, self.config.lambda_pred)
        self._optimise(self._optimizers["vae"], parts["loss"])
        predictor_loss = predictor_cross_entropy(self.predictor(z.detach()), labels, self.classes)
        self._optimise(self._optimizers["predictor"], predictor_loss)
        return {**{key: value.detach() for key, value in parts.items()}, "predictor_loss": predictor_loss.detach()}
