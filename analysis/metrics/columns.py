"""The metric columns of one evaluation, computed from arrays: what ``weakdis.registry.METRICS``
names as each column's ``computed_by``.

Every function here takes one ``EvaluationInputs`` and returns a dict ``column -> float`` (NaN
where the inputs do not allow the metric, e.g. no fitted prior yet). ``trainables.evaluation``
builds the inputs from a model and calls each registered function, so a new metric column is its
metric function, a function here (or beside the metric) and one registry line.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.metrics.dci import dci
from analysis.metrics.mig import mig
from analysis.metrics.sap import sap
from analysis.metrics.weak import (
    binary_relation_accuracy_grid, binary_relation_result_accuracy, clustering_accuracy_by_alpha, relation_accuracy_grid,
)
from weakdis.registry import ALPHA_GRID, DEPTH_GRID, clustering_column, relation_column


@dataclass(frozen=True)
class EvaluationInputs:
    """What the metric columns of one evaluation are computed from.

    ``representation`` [n, R]: what DCI / MIG / SAP score (predicted factor values for a model with a
    fitted prior, the codes otherwise); ``factors`` [n, K]: the true relevant-factor values;
    ``codes`` [n, D]: the raw codes. The first two thirds of the rows are the metrics' training
    points, the rest their test points. ``prior``: the fitted prior as ``analysis.metrics.weak``
    reads it, or None; ``relational_model`` ``(codes [m, D], relation [m]) -> codes [m, D]`` and
    ``relation_targets`` int [R, C], or None. ``alpha`` and ``relation_depth`` choose the plain
    ``clustering_*`` / ``relation_*`` columns; ``relation_samples`` is the length of the relation
    chain; ``seed`` seeds every metric.
    """

    representation: np.ndarray
    factors: np.ndarray
    codes: np.ndarray
    seed: int
    dci_method: str = "fast"
    prior: Any = None
    relational_model: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    relation_targets: np.ndarray | None = None
    alpha: float = 0.0
    relation_depth: int = 1
    relation_samples: int = 1000
    # Binary relations only: (codes, relation, second) -> (output codes [m, O, D], sign logits or None)
    # and the full target table int [R, C, C, O] (the result's every output, for Figure 10's variants).
    relational_outputs: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[Any, Any]] | None = None
    relation_table: np.ndarray | None = None
    # Datasets with a class label: {"codes_train", "content_train", "labels_train", and the same for
    # "_test"}, codes of training-split and test-split images (content: the z part of a factored code).
    probe: dict[str, np.ndarray] | None = None

    def split(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(first two thirds, rest) of ``values``, or None when either part would be too small."""
        n_train = (2 * len(values)) // 3
        if n_train < 2 or len(values) - n_train < 1:
            return None
        return values[:n_train], values[n_train:]


def _nan(*columns: str) -> dict[str, float]:
    return {column: math.nan for column in columns}


def _dci_of(inputs: EvaluationInputs, codes: np.ndarray) -> dict[str, float]:
    codes_parts, factor_parts = inputs.split(codes), inputs.split(inputs.factors)
    if codes_parts is None:
        return _nan("dci", "dci_disentanglement", "dci_completeness", "dci_informativeness")
    result = dci(codes_parts[0], factor_parts[0], codes_parts[1], factor_parts[1], random_state=inputs.seed,
                 method=inputs.dci_method)
    d, c, i = (float(result[key]) for key in ("disentanglement", "completeness", "informativeness_test"))
    return {"dci": (d + c + i) / 3, "dci_disentanglement": d, "dci_completeness": c, "dci_informativeness": i}


def _mig_of(inputs: EvaluationInputs, codes: np.ndarray) -> float:
    if inputs.split(codes) is None:
        return math.nan
    return float(mig(codes, inputs.factors, random_state=inputs.seed)["mig"])


def _sap_of(inputs: EvaluationInputs, codes: np.ndarray) -> float:
    codes_parts, factor_parts = inputs.split(codes), inputs.split(inputs.factors)
    if codes_parts is None:
        return math.nan
    return float(sap(codes_parts[0], factor_parts[0], codes_parts[1], factor_parts[1],
                     random_state=inputs.seed)["sap"])


def dci_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``dci`` (the mean of D, C and the test informativeness) and its three parts."""
    return _dci_of(inputs, inputs.representation)


def mig_columns(inputs: EvaluationInputs) -> dict[str, float]:
    return {"mig": _mig_of(inputs, inputs.representation)}


def sap_columns(inputs: EvaluationInputs) -> dict[str, float]:
    return {"sap": _sap_of(inputs, inputs.representation)}


def raw_code_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``raw_dci``, ``raw_mig``, ``raw_sap``: the same scores of the raw codes."""
    return {"raw_dci": _dci_of(inputs, inputs.codes)["dci"], "raw_mig": _mig_of(inputs, inputs.codes),
            "raw_sap": _sap_of(inputs, inputs.codes)}


def _clustering(inputs: EvaluationInputs, alphas: list[float]) -> list[dict[str, float]] | None:
    if inputs.prior is None:
        return None
    return clustering_accuracy_by_alpha(inputs.codes, inputs.factors, inputs.prior, alphas)


def clustering_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``clustering_accuracy`` and ``accepted_ratio`` at ``inputs.alpha``."""
    rows = _clustering(inputs, [inputs.alpha])
    if rows is None:
        return _nan("clustering_accuracy", "accepted_ratio")
    return {"clustering_accuracy": rows[0]["accuracy"], "accepted_ratio": rows[0]["accepted_ratio"]}


def clustering_grid_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``clustering_accuracy_a<alpha>`` and ``accepted_ratio_a<alpha>`` for every alpha of the grid."""
    rows = _clustering(inputs, list(ALPHA_GRID))
    out = {}
    for index, alpha in enumerate(ALPHA_GRID):
        out[clustering_column(alpha)] = math.nan if rows is None else rows[index]["accuracy"]
        out[clustering_column(alpha, "ratio")] = math.nan if rows is None else rows[index]["accepted_ratio"]
    return out


def _relations(inputs: EvaluationInputs, depths: list[int], alphas: list[float]) -> list[dict[str, float]] | None:
    if inputs.prior is None or inputs.relational_model is None or inputs.relation_targets is None:
        return None
    grid = binary_relation_accuracy_grid if np.ndim(inputs.relation_targets) == 3 else relation_accuracy_grid
    return grid(inputs.relational_model, inputs.prior, inputs.relation_targets, depths=depths,
                alphas=alphas, n=inputs.relation_samples, random_state=inputs.seed)


def relation_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``relation_accuracy`` and ``relation_accepted_ratio`` at ``inputs.relation_depth`` and ``inputs.alpha``."""
    rows = _relations(inputs, [inputs.relation_depth], [inputs.alpha])
    if rows is None:
        return _nan("relation_accuracy", "relation_accepted_ratio")
    return {"relation_accuracy": rows[0]["accuracy"], "relation_accepted_ratio": rows[0]["accepted_ratio"]}


def relation_moved_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``relation_accuracy_moved``: as ``relation_accuracy`` (same chain, depth and alpha), checking only
    the factors the relations moved; NaN for binary relations."""
    if (inputs.prior is None or inputs.relational_model is None or inputs.relation_targets is None
            or np.ndim(inputs.relation_targets) == 3):
        return _nan("relation_accuracy_moved")
    row = relation_accuracy_grid(inputs.relational_model, inputs.prior, inputs.relation_targets,
                                 depths=[inputs.relation_depth], alphas=[inputs.alpha], n=inputs.relation_samples,
                                 random_state=inputs.seed, score="moved_factors")[0]
    return {"relation_accuracy_moved": row["accuracy"]}


def relation_result_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``relation_result_accuracy``: binary relations whose every output (and sign) is right, at depth 1;
    NaN for unary relations."""
    if inputs.prior is None or inputs.relational_outputs is None or inputs.relation_table is None:
        return _nan("relation_result_accuracy")
    return {"relation_result_accuracy": binary_relation_result_accuracy(
        inputs.relational_outputs, inputs.prior, inputs.relation_table, n=inputs.relation_samples,
        random_state=inputs.seed)}


def relation_grid_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``relation_accuracy_d<depth>_a<alpha>`` and ``relation_accepted_ratio_d<depth>_a<alpha>`` over
    the depth and alpha grids, from one relation chain."""
    rows = _relations(inputs, list(DEPTH_GRID), list(ALPHA_GRID))
    out = {}
    for index, (depth, alpha) in enumerate((d, a) for d in DEPTH_GRID for a in ALPHA_GRID):
        out[relation_column(depth, alpha)] = math.nan if rows is None else rows[index]["accuracy"]
        out[relation_column(depth, alpha, "ratio")] = math.nan if rows is None else rows[index]["accepted_ratio"]
    return out
