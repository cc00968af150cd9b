"""DIP-VAE-II (Kumar et al. 2018): the covariance of the aggregate posterior pushed to the identity."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainables.models.base import ModelConfig
from trainables.models.dipvae import DIPVAE, DIPVAEConfig


@dataclass
class DIPVAE2Config(DIPVAEConfig):
    """DIP-VAE-II: ``lambda_d`` None = ``lambda_od`` (disentanglement_lib's study)."""


class DIPVAE2(DIPVAE):
    name: ClassVar[str] = "dipvae2"
    config_cls: ClassVar[type[ModelConfig]] = DIPVAE2Config
    kind: ClassVar[str] = "ii"
    lambda_d_factor: ClassVar[float] = 1.0
