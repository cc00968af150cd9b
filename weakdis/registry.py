"""The registries of models and of metric columns: the single list that every layer reads.

Result columns, sweep objectives, progress-table columns, axis labels, table headers and column dtypes
are all derived from ``METRICS``; model names, labels, plot styles, capabilities and config classes
from ``MODELS``. Adding a model is its own file plus one ``ModelEntry`` line; adding a metric column is
its function plus one ``MetricColumn`` line (docs/architecture.md walks through both).

This module imports only the standard library: classes and functions are named by import path
(``"package.module:attribute"``) and resolved with :func:`resolve` where they are used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from weakdis.errors import WeakdisError

# --------------------------------------------------------------------------------------------- models

MIXTURE_PRIOR = "mixture_prior"            # a fitted Gaussian-mixture prior: see trainables.models.capabilities
RELATIONAL_LEARNER = "relational_learner"  # a relational learner (ReL) over the prior's components
WEAK_SUPERVISION = "weak_supervision"      # takes the tau labelled samples through set_supervision
CAPABILITIES = (MIXTURE_PRIOR, RELATIONAL_LEARNER, WEAK_SUPERVISION)


@dataclass(frozen=True)
class ModelEntry:
    """One model. ``model_class`` is the import path of its ``trainables.models.base.WeakdisModel``
    subclass, whose ``config_cls`` dataclass lists its hyperparameters; ``capabilities`` name the
    protocols of ``trainables.models.capabilities`` it implements."""

    name: str
    model_class: str
    label: str                 # in tables and legends
    colour: str                # in figures (Okabe & Ito palette)
    marker: str
    capabilities: frozenset[str] = frozenset()
    # What a mixture prior's components stand for, so that tau can be checked before training:
    # "combinations" (one per combination of relevant-factor values) or "values" (one per value of
    # each factor); None without a mixture prior.
    prior_components: str | None = None

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; expected one of {', '.join(CAPABILITIES)}")
        return capability in self.capabilities


_WEAK = frozenset({MIXTURE_PRIOR, RELATIONAL_LEARNER, WEAK_SUPERVISION})

MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("absae", "trainables.models.absae:AbsAE", "AbsAE", "#D55E00", "o", _WEAK, "combinations"),
    ModelEntry("mae", "trainables.models.mae:MAE", "M-AE", "#CC79A7", "D", _WEAK, "values"),
    ModelEntry("betavae", "trainables.models.betavae:BetaVAE", "β-VAE", "#0072B2", "s"),
    ModelEntry("factorvae", "trainables.models.factorvae:FactorVAE", "FactorVAE", "#009E73", "^"),
    ModelEntry("betatcvae", "trainables.models.betatcvae:BetaTCVAE", "β-TCVAE", "#E69F00", "v"),
    ModelEntry("dipvae1", "trainables.models.dipvae1:DIPVAE1", "DIP-VAE-I", "#56B4E9", "P"),
    ModelEntry("dipvae2", "trainables.models.dipvae2:DIPVAE2", "DIP-VAE-II", "#F0E442", "X"),
    ModelEntry("annealedvae", "trainables.models.annealedvae:AnnealedVAE", "AnnealedVAE", "#000000", "h"),
    ModelEntry("simvae", "trainables.models.simvae:SimVAE", "VAE + similarity", "#44AA99", "<"),
    ModelEntry("cyclevae", "trainables.models.cyclevae:CycleVAE", "VAE + forward cycle", "#882255", ">"),
    ModelEntry("predvae", "trainables.models.predvae:PredVAE", "Predictor VAE", "#DDCC77", "p"),
    ModelEntry("splitvae", "trainables.models.splitvae:SplitVAE", "VAE (z, y)", "#999999", "*"),
)
MODEL_NAMES: tuple[str, ...] = tuple(entry.name for entry in MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of model ``name``; WeakdisError naming the models otherwise."""
    for entry in MODELS:
        if entry.name == name:
            return entry
    raise WeakdisError(f"model={name!r} is unknown; expected one of {', '.join(MODEL_NAMES)}")


# --------------------------------------------------------------------------------------------- metrics

# The papers' evaluation grids (Tables 4 and 5, Figures 2 and 3): every evaluation reports the
# weak-disentanglement metrics at each of these acceptance thresholds and relation depths.
ALPHA_GRID: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
DEPTH_GRID: tuple[int, ...] = (1, 5, 10)


@dataclass(frozen=True)
class MetricColumn:
    """One metric column of every evaluation report, result row and history row.

    ``computed_by``: the import path of a function ``(EvaluationInputs) -> dict[column, float]``
    (``analysis.metrics.columns``) that computes this column, possibly with others; every column it
    returns must be registered. ``requires``: the capability a model needs for the column to have a
    value (None: every model); others report NaN. ``placement``: where the column sits in the results
    table, so that a new column never moves an old one: ``"contract"`` (the design notes' result
    columns, before ``train_seconds``), ``"extra"`` (after ``train_seconds``, before ``step``) or
    ``"appended"`` (after every bookkeeping column; the default for new columns).
    """

    name: str
    label: str                       # axis label / table header
    direction: str                   # "max" or "min": which way is better
    computed_by: str
    requires: str | None = None
    dtype: str = "float64"
    objective: bool = True           # may be a sweep objective
    progress: bool = False           # shown in the sweep's progress table
    placement: str = "appended"
    default: bool = True             # computed at every evaluation; False: only when a trial lists it
                                     # in ``metrics`` (expensive columns, e.g. the metrics review's)

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ValueError(f"metric {self.name}: direction={self.direction!r}; expected max or min")
        if self.placement not in ("contract", "extra", "appended"):
            raise ValueError(f"metric {self.name}: placement={self.placement!r}; expected contract, extra or appended")
        if self.requires is not None and self.requires not in CAPABILITIES:
            raise ValueError(f"metric {self.name}: requires={self.requires!r}; expected one of {CAPABILITIES}")


def alpha_suffix(alpha: float) -> str:
    """``0.1`` -> ``"a0.1"``, ``0`` -> ``"a0"``: the alpha part of a grid column name."""
    return f"a{float(alpha):g}"


def clustering_column(alpha: float, what: str = "accuracy") -> str:
    """``clustering_accuracy_a0.1`` / ``accepted_ratio_a0.1``: the clustering columns at ``alpha``."""
    stem = "clustering_accuracy" if what == "accuracy" else "accepted_ratio"
    return f"{stem}_{alpha_suffix(alpha)}"


def relation_column(depth: int, alpha: float, what: str = "accuracy") -> str:
    """``relation_accuracy_d5_a0.1`` / ``relation_accepted_ratio_d5_a0.1``."""
    stem = "relation_accuracy" if what == "accuracy" else "relation_accepted_ratio"
    return f"{stem}_d{int(depth)}_{alpha_suffix(alpha)}"


_COLUMNS = "analysis.metrics.columns:"

METRICS: tuple[MetricColumn, ...] = (
    MetricColumn("recon_error", "reconstruction error (MSE per pixel)", "min", "trainables.evaluation:reconstruction_columns",
                 progress=True, placement="contract"),
    MetricColumn("dci", "DCI (mean of D, C, I)", "max", _COLUMNS + "dci_columns", progress=True, placement="contract"),
    MetricColumn("dci_disentanglement", "DCI disentanglement", "max", _COLUMNS + "dci_columns", placement="contract"),
    MetricColumn("dci_completeness", "DCI completeness", "max", _COLUMNS + "dci_columns", placement="contract"),
    MetricColumn("dci_informativeness", "DCI informativeness", "max", _COLUMNS + "dci_columns", placement="contract"),
    MetricColumn("mig", "MIG", "max", _COLUMNS + "mig_columns", progress=True, placement="contract"),
    MetricColumn("sap", "SAP", "max", _COLUMNS + "sap_columns", progress=True, placement="contract"),
    MetricColumn("clustering_accuracy", "clustering accuracy", "max", _COLUMNS + "clustering_columns",
                 MIXTURE_PRIOR, progress=True, placement="contract"),
    MetricColumn("accepted_ratio", "accepted ratio", "max", _COLUMNS + "clustering_columns", MIXTURE_PRIOR,
                 placement="contract"),
    MetricColumn("relation_accuracy", "relation accuracy", "max", _COLUMNS + "relation_columns",
                 RELATIONAL_LEARNER, progress=True, placement="contract"),
    MetricColumn("raw_dci", "DCI of raw codes", "max", _COLUMNS + "raw_code_columns", MIXTURE_PRIOR, placement="extra"),
    MetricColumn("raw_mig", "MIG of raw codes", "max", _COLUMNS + "raw_code_columns", MIXTURE_PRIOR, placement="extra"),
    MetricColumn("raw_sap", "SAP of raw codes", "max", _COLUMNS + "raw_code_columns", MIXTURE_PRIOR, placement="extra"),
    MetricColumn("relation_accepted_ratio", "relation accepted ratio", "max", _COLUMNS + "relation_columns",
                 RELATIONAL_LEARNER, placement="extra"),
    *(
        column
        for alpha in ALPHA_GRID
        for column in (
            MetricColumn(clustering_column(alpha), f"clustering accuracy (α = {alpha:g})", "max",
                         _COLUMNS + "clustering_grid_columns", MIXTURE_PRIOR),
            MetricColumn(clustering_column(alpha, "ratio"), f"accepted ratio (α = {alpha:g})", "max",
                         _COLUMNS + "clustering_grid_columns", MIXTURE_PRIOR),
        )
    ),
    *(
        column
        for depth in DEPTH_GRID
        for alpha in ALPHA_GRID
        for column in (
            MetricColumn(relation_column(depth, alpha), f"relation accuracy (depth {depth}, α = {alpha:g})", "max",
                         _COLUMNS + "relation_grid_columns", RELATIONAL_LEARNER),
            MetricColumn(relation_column(depth, alpha, "ratio"),
                         f"relation accepted ratio (depth {depth}, α = {alpha:g})", "max",
                         _COLUMNS + "relation_grid_columns", RELATIONAL_LEARNER),
        )
    ),
    # The twelve metrics of the metrics review (analysis.metrics.review), computed only when a trial
    # or sweep lists them in ``metrics`` (they cost seconds each). mig / sap are the review's variants
    # of the columns above, hence the prefix.
    *(
        MetricColumn(column, label, "max", f"analysis.metrics.review:{column}_column", default=False)
        for column, label in (
            ("z_diff", "Z-diff"), ("z_min_var", "Z-min variance"), ("z_max_var", "Z-max variance"), ("irs", "IRS"),
            ("dci_lasso", "DCI Lasso (mean of D, C, I)"), ("dci_random_forest", "DCI random forest (mean of D, C, I)"),
            ("explicitness", "explicitness (review)"), ("review_sap", "SAP (review variant)"),
            ("review_mig", "MIG (review variant)"), ("mig_sup", "MIG-sup"), ("jemmig", "JEMMIG (normalised)"),
            ("modularity", "modularity (review)"), ("dcimig", "DCIMIG"),
        )
    ),
    MetricColumn("linear_probe_accuracy", "linear-probe accuracy (class from z)", "max",
                 "analysis.metrics.probe:linear_probe_columns"),
    MetricColumn("linear_probe_accuracy_full", "linear-probe accuracy (class from the whole code)", "max",
                 "analysis.metrics.probe:linear_probe_columns"),
    MetricColumn("relation_result_accuracy", "relation result accuracy (binary; every output and sign right)",
                 "max", _COLUMNS + "relation_result_columns", RELATIONAL_LEARNER),
    MetricColumn("relation_accuracy_moved", "relation accuracy (moved factors only)", "max",
                 _COLUMNS + "relation_moved_columns", RELATIONAL_LEARNER),
)
METRIC_NAMES: tuple[str, ...] = tuple(column.name for column in METRICS)
OBJECTIVE_NAMES: tuple[str, ...] = tuple(column.name for column in METRICS if column.objective)
PROGRESS_NAMES: tuple[str, ...] = tuple(column.name for column in METRICS if column.progress)
OPTIONAL_METRIC_NAMES: tuple[str, ...] = tuple(column.name for column in METRICS if not column.default)


def metric(name: str) -> MetricColumn:
    """The registry entry of metric column ``name``; WeakdisError naming the columns otherwise."""
    for column in METRICS:
        if column.name == name:
            return column
    raise WeakdisError(f"metric {name!r} is unknown; expected one of {', '.join(METRIC_NAMES)}")


def metric_label(name: str) -> str:
    """The axis label of a registered metric column; other names as they are."""
    return next((column.label for column in METRICS if column.name == name), name)


def metrics_placed(placement: str) -> tuple[str, ...]:
    """The registered metric columns with this ``placement``, in registry order."""
    return tuple(column.name for column in METRICS if column.placement == placement)


def computations() -> tuple[str, ...]:
    """The distinct ``computed_by`` functions, in registry order."""
    return tuple(dict.fromkeys(column.computed_by for column in METRICS))


def resolve(path: str) -> Any:
    """The object named by ``"package.module:attribute"``."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:attribute'")
    return getattr(importlib.import_module(module_name), attribute)
