"""One evaluation of a trial: every metric column of ``weakdis.registry.METRICS`` on the test split.

Every evaluation returns the same keys (``METRIC_KEYS``, the registry's order), NaN where a metric
does not apply to the model (the column's ``requires`` capability) or cannot be computed yet:

- ``recon_error``: mean squared error per pixel between ``model.reconstruct(x)`` (probabilities)
  and the test image in [0, 1], over at most ``max(eval_points, RECON_TEST_IMAGES)`` test images
  (a seeded selection; all of the test split when it is smaller).
- ``eval_points`` other seeded test images are encoded with ``model.representation``; the first
  two thirds are the metrics' train points, the rest their test points. ``dci`` (the mean of D, C
  and the test informativeness), ``mig`` and ``sap`` score the representation (the predicted factor
  values for AbsAE / M-AE once the prior is fitted, the codes otherwise) against the version's
  relevant factors; ``raw_dci``, ``raw_mig`` and ``raw_sap`` score the raw codes of models with a prior.
- Models with a fitted mixture prior: ``clustering_accuracy`` / ``accepted_ratio`` at ``cfg.alpha``
  and ``clustering_accuracy_a<alpha>`` / ``accepted_ratio_a<alpha>`` at each alpha of
  ``weakdis.registry.ALPHA_GRID`` (on the raw codes; labels = the true relevant-factor values).
  With a relational learner too: ``relation_accuracy`` / ``relation_accepted_ratio`` at
  ``cfg.relation_depth`` and ``cfg.alpha``, and ``relation_accuracy_d<depth>_a<alpha>`` /
  ``relation_accepted_ratio_d<depth>_a<alpha>`` over ``DEPTH_GRID`` x ``ALPHA_GRID`` (one chain of
  ``eval_points`` samples from the prior).

The columns are computed by the functions the registry names (``analysis.metrics.columns``); a
metric that rejects degenerate inputs (``ValueError``) is reported as NaN with a warning.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from analysis.metrics.columns import EvaluationInputs
from trainables.config import TrialConfig
from trainables.models.capabilities import relational_model_numpy, relational_outputs_numpy
from weakdis.registry import METRIC_NAMES, METRICS, RELATIONAL_LEARNER, model_entry, resolve
from weakdis.seeds import derive_seed

RECON_TEST_IMAGES = 5000
EVAL_BATCH = 512

METRIC_KEYS: tuple[str, ...] = METRIC_NAMES


def evaluation_indices(test_indices: torch.Tensor, n: int, seed: int, stream: str) -> torch.Tensor:
    """A seeded choice of ``min(n, len(test_indices))`` test indices (CPU generator: device-independent)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, stream))
    order = torch.randperm(len(test_indices), generator=generator)[: min(n, len(test_indices))]
    return test_indices.cpu()[order].to(test_indices.device)


@torch.no_grad()
def reconstruction_error(model: torch.nn.Module, dataset: Any, indices: torch.Tensor) -> float:
    """Mean squared error per pixel of ``model.reconstruct`` against the images in [0, 1]."""
    total = torch.zeros((), dtype=torch.float64, device=indices.device)
    count = 0
    for start in range(0, len(indices), EVAL_BATCH):
        x = dataset.batch(indices[start:start + EVAL_BATCH])
        p = model.reconstruct(x).float()
        total += ((p - x) ** 2).sum(dtype=torch.float64)
        count += x.numel()
    return float(total.item() / max(count, 1))


@torch.no_grad()
def encode_representation(model: torch.nn.Module, dataset: Any, indices: torch.Tensor) -> tuple[np.ndarray | None, np.ndarray]:
    """(predicted factor values [n, K] or None, raw codes [n, D]) as numpy arrays."""
    factors, codes = [], []
    for start in range(0, len(indices), EVAL_BATCH):
        rep = model.representation(dataset.batch(indices[start:start + EVAL_BATCH]))
        codes.append(rep["codes"].float().cpu())
        if rep.get("factors") is not None:
            factors.append(rep["factors"].float().cpu())
    raw = torch.cat(codes).numpy()
    predicted = torch.cat(factors).numpy() if len(factors) == len(codes) and factors else None
    return predicted, raw


@dataclass(frozen=True)
class TrialEvaluationInputs(EvaluationInputs):
    """``EvaluationInputs`` plus what ``reconstruction_columns`` needs: the model, the dataset and
    the test images to reconstruct."""

    model: Any = None
    dataset: Any = None
    recon_indices: Any = None


def reconstruction_columns(inputs: EvaluationInputs) -> dict[str, float]:
    """``recon_error`` (the registry's computation for it); NaN for inputs without a model."""
    if not isinstance(inputs, TrialEvaluationInputs) or inputs.model is None:
        return {"recon_error": math.nan}
    return {"recon_error": reconstruction_error(inputs.model, inputs.dataset, inputs.recon_indices)}


def evaluate(model: torch.nn.Module, dataset: Any, cfg: TrialConfig) -> dict[str, float]:
    """Every metric column of one evaluation (see the module docstring); NaN where not applicable.

    Deterministic for a given model state, dataset and ``cfg.seed``. The model is put in eval mode
    for the evaluation and returned to its previous mode.
    """
    was_training = model.training
    model.eval()
    try:
        return compute_columns(evaluation_inputs(model, dataset, cfg), cfg.model, cfg.selected_metrics)
    finally:
        model.train(was_training)


def evaluation_inputs(model: torch.nn.Module, dataset: Any, cfg: TrialConfig) -> TrialEvaluationInputs:
    """Encode the seeded evaluation points and gather what the metric columns are computed from."""
    device = dataset.images.device
    test = dataset.splits["test"].to(device)
    recon_indices = evaluation_indices(test, max(cfg.eval_points, RECON_TEST_IMAGES), cfg.seed,
                                       "evaluation/reconstruction")
    points = evaluation_indices(test, cfg.eval_points, cfg.seed, "evaluation/points")
    predicted, raw = encode_representation(model, dataset, points)
    # Models with a prior predict factor values once the mixture is fitted (None during warm-up,
    # when the main columns score the raw codes and the prior-based columns stay NaN).
    fitted = predicted is not None
    entry = model_entry(cfg.model)
    relational = fitted and entry.has(RELATIONAL_LEARNER)
    binary = relational and getattr(model, "relation_arity", 1) == 2
    return TrialEvaluationInputs(
        model=model, dataset=dataset, recon_indices=recon_indices,
        representation=predicted if fitted else raw,
        factors=dataset.factors[points].cpu().numpy(),
        codes=raw,
        seed=cfg.seed,
        dci_method=cfg.dci_method,
        prior=model.prior if fitted else None,
        relational_model=relational_model_numpy(model, device) if relational else None,
        relation_targets=_as_numpy(model.relation_targets()) if relational else None,
        alpha=cfg.alpha,
        relation_depth=cfg.relation_depth,
        relation_samples=cfg.eval_points,
        relational_outputs=relational_outputs_numpy(model, device) if binary else None,
        relation_table=_as_numpy(model.relation_table) if binary else None,
        probe=probe_inputs(model, dataset, cfg),
    )


@torch.no_grad()
def probe_inputs(model: torch.nn.Module, dataset: Any, cfg: TrialConfig) -> dict[str, np.ndarray] | None:
    """Codes and class labels of ``eval_points`` seeded training-split and test-split images, for the
    linear probe; None for datasets without a class label."""
    labels = getattr(dataset, "class_labels", None)
    if labels is None:
        return None
    out = {}
    for part, split in (("train", "train"), ("test", "test")):
        indices = evaluation_indices(dataset.splits[split], cfg.eval_points, cfg.seed, f"evaluation/probe-{split}")
        codes, content = [], []
        for start in range(0, len(indices), EVAL_BATCH):
            rep = model.representation(dataset.batch(indices[start:start + EVAL_BATCH]))
            codes.append(rep["codes"].float().cpu())
            content.append(rep.get("content", rep["codes"]).float().cpu())
        out[f"codes_{part}"] = torch.cat(codes).numpy()
        out[f"content_{part}"] = torch.cat(content).numpy()
        out[f"labels_{part}"] = labels[indices].cpu().numpy()
    return out


def _as_numpy(values: Any) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def compute_columns(inputs: EvaluationInputs, model: str, metrics: tuple[str, ...] = ()) -> dict[str, float]:
    """Call each computation of the registry that applies to ``model``; NaN for the others. Columns
    registered with ``default=False`` are computed only when ``metrics`` names them."""
    entry = model_entry(model)
    out = {name: math.nan for name in METRIC_KEYS}
    by_computation: dict[str, list[str]] = {}
    for column in METRICS:
        if not column.default and column.name not in metrics:
            continue
        if column.requires is None or entry.has(column.requires):
            by_computation.setdefault(column.computed_by, []).append(column.name)
    for path, columns in by_computation.items():
        values = _guarded(path, resolve(path), inputs)
        if values is None:
            continue
        unregistered = sorted(set(values) - set(METRIC_KEYS))
        if unregistered:
            raise RuntimeError(f"{path} returned {unregistered[0]!r}, which weakdis.registry.METRICS does not list")
        out.update({name: float(values[name]) for name in columns if name in values})
    return out


def _guarded(name: str, function: Callable[[EvaluationInputs], dict[str, float]],
             inputs: EvaluationInputs) -> dict[str, float] | None:
    """A computation's columns, or None (with a warning) when a metric rejects degenerate inputs.

    ``analysis.metrics`` raises ValueError for inputs it cannot score (e.g. a constant factor
    among few evaluation points); a trial keeps going and reports NaN for those columns.
    """
    try:
        return function(inputs)
    except ValueError as error:
        warnings.warn(f"{name} could not be computed ({error}); reported as NaN", RuntimeWarning, stacklevel=2)
        return None
