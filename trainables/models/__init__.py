"""The models: AbsAE + ReL, M-AE + ReL and the beta-VAE / FactorVAE / beta-TCVAE baselines.

``build_model(trial_config, dataset)`` is the entry point; see docs/models.md. Importing this package
does not import Ray.
"""
from __future__ import annotations

from typing import Any

from trainables.errors import WeakdisError
from trainables.models.absae import AbsAE, AbsAEConfig
from trainables.models.base import ModelConfig, WeakdisModel
from trainables.models.betatcvae import BetaTCVAE, BetaTCVAEConfig, mws_log_densities, mws_total_correlation
from trainables.models.betavae import BetaVAE, BetaVAEConfig
from trainables.models.factorvae import FactorVAE, FactorVAEConfig, permute_dims
from trainables.models.mae import MAE, MAEConfig
from trainables.models.priors import GaussianMixturePrior, ModularPrior, check_coverage, estimate_mixture
from trainables.models.relations import Relation, relation_targets, relations_for

MODEL_CLASSES: dict[str, type[WeakdisModel]] = {
    cls.name: cls for cls in (AbsAE, MAE, BetaVAE, FactorVAE, BetaTCVAE)
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CLASSES)


def build_model(trial_config: Any, dataset: Any) -> WeakdisModel:
    """The model named by ``trial_config.model`` for ``dataset`` (which needs ``.spec`` and
    ``.num_channels``), on the CPU; move it with ``.to(device)``. ``trial_config.compile`` compiles
    its networks in place."""
    name = trial_config.model
    if name not in MODEL_CLASSES:
        raise WeakdisError(f"trial config: model={name!r} is unknown; expected one of {', '.join(MODEL_NAMES)}")
    model = MODEL_CLASSES[name].from_trial_config(trial_config, dataset)
    if model.config.compile:
        model.compile_networks()
    return model


__all__ = [
    "AbsAE", "AbsAEConfig", "BetaTCVAE", "BetaTCVAEConfig", "BetaVAE", "BetaVAEConfig", "FactorVAE",
    "FactorVAEConfig", "GaussianMixturePrior", "MAE", "MAEConfig", "MODEL_CLASSES", "MODEL_NAMES",
    "ModelConfig", "ModularPrior", "Relation", "WeakdisModel", "build_model", "check_coverage",
    "estimate_mixture", "mws_log_densities", "mws_total_correlation", "permute_dims", "relation_targets",
    "relations_for",
]
