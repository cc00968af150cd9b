"""VAE + factor prediction (explicit-disentanglement paper, Eq. 3): a predictor g(z) learns to predict
the factor labels from the z part of the code with its own optimiser, while the encoder and decoder
minimise the negative ELBO minus ``lambda_pred`` times the entropy of g's prediction (so z hides the
factor; ``adversary="ce"``: minus g's cross-entropy, Eq. 3 as printed).
The labels are the dataset's ``predictor_labels``: on rotdigits left / right, on colordigits each
colour channel's level, on the other versions every relevant factor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig, make_adam
from trainables.models.factored import (ADVERSARIES, FactoredConfig, FactoredVAE, predictor_cross_entropy,
                                        predictor_vae_loss)
from trainables.models.vae import bernoulli_nll, gaussian_kl

PREDICTOR_UNITS = 128
PREDICT_FROM = ("mean", "sample")


@dataclass
class PredVAEConfig(FactoredConfig):
    """``lambda_pred`` weighs the adversarial term (default: the dataset's ``predictor_weight``, 10 on
    rotdigits, else 1); ``adversary`` is what the encoder maximises: g's entropy (the paper's text and
    its authors' code) or g's cross-entropy (Eq. 3 as printed, unbounded: the encoder can win by making
    g confidently wrong, which keeps the factor in z); ``predict_from`` is what g reads, the posterior
    mean of z (what the probe sees) or a sample z ~ q; ``pred_lr`` is g's learning rate (None = lr);
    ``pred_steps`` g's updates per encoder step."""

    lambda_pred: float = 1.0          # unset: the dataset's (rotdigits 10, colordigits 1)
    adversary: str = "entropy"        # the encoder maximises g's entropy, or g's cross-entropy (ce)
    predict_from: str = "mean"        # g reads z's posterior mean, or a sample z ~ q
    pred_lr: float | None = None      # g's learning rate (null: lr)
    pred_steps: int = 1               # g's Adam steps per encoder step

    @classmethod
    def defaults_from_dataset(cls, dataset: Any, values: dict[str, Any], extras: Any) -> dict[str, Any]:
        defaults = super().defaults_from_dataset(dataset, values, extras)
        if "lambda_pred" not in extras and dataset is not None:
            defaults["lambda_pred"] = float(getattr(dataset.spec, "predictor_weight", 1.0))
        return defaults

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        if self.adversary not in ADVERSARIES:
            raise WeakdisError(f"{model_name} config: adversary={self.adversary!r} is invalid; "
                               f"expected one of {', '.join(ADVERSARIES)}")
        if self.predict_from not in PREDICT_FROM:
            raise WeakdisError(f"{model_name} config: predict_from={self.predict_from!r} is invalid; "
                               f"expected one of {', '.join(PREDICT_FROM)}")
        if self.pred_steps < 1:
            raise WeakdisError(f"{model_name} config: pred_steps={self.pred_steps!r} is invalid; "
                               "expected an integer >= 1")


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
        z = (mean if self.config.predict_from == "mean" else code)[:, :self.config.latent_dim]
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
                                       self.config.beta, self.config.lambda_pred, self.config.adversary)
        self._optimise(self._optimizers["vae"], parts["loss"])
        for _ in range(self.config.pred_steps):
            predictor_loss = predictor_cross_entropy(self.predictor(z.detach()), labels, self.classes)
            self._optimise(self._optimizers["predictor"], predictor_loss)
        return {**{key: value.detach() for key, value in parts.items()}, "predictor_loss": predictor_loss.detach()}
