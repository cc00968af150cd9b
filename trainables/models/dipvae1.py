"""DIP-VAE-I (Kumar et al. 2018): the covariance of the posterior means pushed to the identity."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainables.models.base import ModelConfig
from trainables.models.dipvae import DIPVAE, DIPVAEConfig


@dataclass
class DIPVAE1Config(DIPVAEConfig):
    """DIP-VAE-I: ``lambda_d`` None = ``10 * lambda_od`` (disentanglement_lib's study)."""


class DIPVAE1(DIPVAE):
    name: ClassVar[str] = "dipvae1"
    config_cls: ClassVar[type[ModelConfig]] = DIPVAE1Config
    kind: ClassVar[str] = "i"
    lambda_d_factor: ClassVar[float] = 10.0
