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

from weakdis.registry import MODEL_NAMES, model_entry, resolve


def model_class(name: str) -> type[WeakdisModel]:
    """The class registered as model ``name`` in ``weakdis.registry.MODELS``."""
    cls = resolve(model_entry(name).model_class)
    if cls.name != name:
        raise WeakdisError(f"weakdis.registry: model {name!r} points to {cls.__name__}, whose name is {cls.name!r}")
    return cls


MODEL_CLASSES: dict[str, type[WeakdisModel]] = {name: model_class(name) for name in MODEL_NAMES}


def build_model(trial_config: Any, dataset: Any) -> WeakdisModel:
    """The model named by ``trial_config.model`` for ``dataset`` (which needs ``.spec`` and
    ``.num_channels``), on the CPU; move it with ``.to(device)``. ``trial_config.compile`` compiles
    its networks in place."""
    model = model_class(trial_config.model).from_trial_config(trial_config, dataset)
    if model.config.compile:
        model.compile_networks()
    return model


__all__ = [
    "AbsAE", "AbsAEConfig", "BetaTCVAE", "BetaTCVAEConfig", "BetaVAE", "BetaVAEConfig", "FactorVAE",
    "FactorVAEConfig", "GaussianMixturePrior", "MAE", "MAEConfig", "MODEL_CLASSES", "MODEL_NAMES",
    "ModelConfig", "ModularPrior", "Relation", "WeakdisModel", "build_model", "check_coverage", "model_class",
    "estimate_mixture", "mws_log_densities", "mws_total_correlation", "permute_dims", "relation_targets",
    "relations_for",
]
