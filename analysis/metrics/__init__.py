"""Disentanglement metrics as pure functions of arrays (disentanglement_lib definitions).

``codes`` are float [N, D], ``factors`` integer class indices [N, K]; every stochastic function
takes ``random_state`` (an int or a numpy RandomState) and the same inputs and seed give the same
numbers. Bad input raises ``ValueError`` naming the argument, row or value. See docs/metrics.md.
"""
from analysis.metrics.dci import (
    completeness_score,
    dci,
    dci_importance,
    disentanglement_score,
)
from analysis.metrics.information import (
    discrete_entropy,
    discrete_mutual_information,
    histogram_discretize,
)
from analysis.metrics.intervention import beta_vae_score, factor_vae_score
from analysis.metrics.mig import mig
from analysis.metrics.modularity import modularity_explicitness
from analysis.metrics.probe import linear_probe_accuracy
from analysis.metrics.sampling import sample_representations
from analysis.metrics.sap import sap
from analysis.metrics.weak import (
    binary_relation_accuracy_grid,
    binary_relation_result_accuracy,
    MixturePrior,
    ModularPrior,
    as_prior,
    classify_codes,
    clustering_accuracy,
    clustering_accuracy_by_alpha,
    codes_to_factors,
    relation_accuracy,
    relation_accuracy_by_depth,
    relation_accuracy_grid,
)

__all__ = [
    "MixturePrior",
    "ModularPrior",
    "as_prior",
    "beta_vae_score",
    "classify_codes",
    "clustering_accuracy",
    "clustering_accuracy_by_alpha",
    "codes_to_factors",
    "completeness_score",
    "dci",
    "dci_importance",
    "discrete_entropy",
    "discrete_mutual_information",
    "disentanglement_score",
    "factor_vae_score",
    "histogram_discretize",
    "linear_probe_accuracy",
    "mig",
    "modularity_explicitness",
    "relation_accuracy",
    "binary_relation_accuracy_grid",
    "binary_relation_result_accuracy",
    "relation_accuracy_by_depth",
    "relation_accuracy_grid",
    "sample_representations",
    "sap",
]
