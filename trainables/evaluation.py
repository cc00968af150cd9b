"""One evaluation of a trial: reconstruction error and the disentanglement metrics on the test split.

Every evaluation returns the same keys (``METRIC_KEYS``), NaN where a metric does not apply:

- ``recon_error``: mean squared error per pixel between ``model.reconstruct(x)`` (probabilities)
  and the test image in [0, 1], over at most ``max(eval_points, RECON_TEST_IMAGES)`` test images
  (a seeded selection; all of the test split when it is smaller).
- ``eval_points`` other seeded test images are encoded with ``model.representation``; the first
  two thirds are the metrics' train points, the rest their test points. ``dci`` (the mean of D, C
  and the test informativeness), ``mig`` and ``sap`` score the representation (the predicted factor
  values for AbsAE / M-AE, posterior means for VAEs) against the version's relevant factors;
  ``raw_dci``, ``raw_mig`` and ``raw_sap`` score the raw codes of models with a prior.
- ``clustering_accuracy`` and ``accepted_ratio`` (at ``alpha``, on the raw codes; labels = the
  true relevant-factor values) and ``relation_accuracy`` (at ``relation_depth``, on ``eval_points``
  samples from the prior) for models with a fitted prior and a relational learner.
"""
from __future__ import annotations

import inspect
import math
import warnings
from typing import Any, Callable

import numpy as np
import torch

from trainables.config import TrialConfig

RECON_TEST_IMAGES = 5000
EVAL_BATCH = 512

METRIC_KEYS = (
    "recon_error",
    "dci", "dci_disentanglement", "dci_completeness", "dci_informativeness",
    "mig", "sap",
    "raw_dci", "raw_mig", "raw_sap",
    "clustering_accuracy", "accepted_ratio", "relation_accuracy", "relation_accepted_ratio",
)

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _metrics_function(name: str) -> Callable[..., Any] | None:
    """``analysis.metrics.<name>``, or None (with one warning) when it is not available."""
    try:
        import analysis.metrics as metrics
    except ImportError:
        metrics = None
    function = getattr(metrics, name, None) if metrics is not None else None
    if function is None:
        _warn_once(f"analysis.metrics.{name} is not available; its columns are reported as NaN")
    return function


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call with only the keyword arguments the function accepts."""
    parameters = inspect.signature(function).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    return function(*args, **kwargs)


def evaluation_indices(test_indices: torch.Tensor, n: int, seed: int, salt: int) -> torch.Tensor:
    """A seeded choice of ``min(n, len(test_indices))`` test indices (CPU generator: device-independent)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + salt)
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


def _nan_metrics() -> dict[str, float]:
    return {key: math.nan for key in METRIC_KEYS}


def score_codes(codes: np.ndarray, factors: np.ndarray, *, seed: int, dci_method: str) -> dict[str, float]:
    """DCI (its three parts and their mean), MIG and SAP of codes [n, D] against factors [n, K].

    The first two thirds are the metrics' training points, the last third their test points.
    """
    out = {"dci": math.nan, "dci_disentanglement": math.nan, "dci_completeness": math.nan,
           "dci_informativeness": math.nan, "mig": math.nan, "sap": math.nan}
    n_train = (2 * len(codes)) // 3
    if n_train < 2 or len(codes) - n_train < 1:
        return out
    c_train, c_test = codes[:n_train], codes[n_train:]
    f_train, f_test = factors[:n_train], factors[n_train:]
    dci = _metrics_function("dci")
    if dci is not None:
        result = _guarded("dci", dci, c_train, f_train, c_test, f_test, random_state=seed, method=dci_method)
        if result is not None:
            d, c, i = (float(result[key]) for key in ("disentanglement", "completeness", "informativeness_test"))
            out.update(dci=(d + c + i) / 3, dci_disentanglement=d, dci_completeness=c, dci_informativeness=i)
    mig = _metrics_function("mig")
    if mig is not None:
        result = _guarded("mig", mig, codes, factors, random_state=seed)
        if result is not None:
            out["mig"] = float(_scalar(result, "mig"))
    sap = _metrics_function("sap")
    if sap is not None:
        result = _guarded("sap", sap, c_train, f_train, c_test, f_test, random_state=seed)
        if result is not None:
            out["sap"] = float(_scalar(result, "sap"))
    return out


def _scalar(result: Any, key: str) -> float:
    return result[key] if isinstance(result, dict) else result


def _relational_callable(model: torch.nn.Module, device: torch.device) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    @torch.no_grad()
    def apply(codes: np.ndarray, relation: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(codes, dtype=torch.float32, device=device)
        r = torch.as_tensor(relation, dtype=torch.int64, device=device)
        return model.relational_model(z, r).float().cpu().numpy()

    return apply


def weak_metrics(model: torch.nn.Module, raw_codes: np.ndarray, true_factors: np.ndarray,
                 cfg: TrialConfig, device: torch.device) -> dict[str, float]:
    """clustering_accuracy, accepted_ratio, relation_accuracy and relation_accepted_ratio of a model
    with a fitted prior.

    Labels are the true relevant-factor values [n, K], which both a single mixture (through its
    ``component_factors``) and a modular prior compare with their components.
    """
    out = {"clustering_accuracy": math.nan, "accepted_ratio": math.nan, "relation_accuracy": math.nan,
           "relation_accepted_ratio": math.nan}
    prior = getattr(model, "prior", None)
    if prior is None:
        return out
    clustering = _metrics_function("clustering_accuracy")
    if clustering is not None:
        result = _guarded("clustering_accuracy", clustering, raw_codes, true_factors, prior, cfg.alpha)
        if result is not None:
            out["clustering_accuracy"] = float(result["accuracy"])
            out["accepted_ratio"] = float(result["accepted_ratio"])
    relation = _metrics_function("relation_accuracy")
    if relation is not None and hasattr(model, "relational_model") and hasattr(model, "relation_targets"):
        targets = model.relation_targets()
        targets = targets.cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
        result = _guarded("relation_accuracy", relation, _relational_callable(model, device), prior, targets,
                          cfg.relation_depth, cfg.alpha, cfg.eval_points, cfg.seed)
        if result is not None:
            out["relation_accuracy"] = float(result["accuracy"])
            out["relation_accepted_ratio"] = float(result["accepted_ratio"])
    return out


def _guarded(name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A metric's result, or None (with a warning) when the metric rejects degenerate inputs.

    ``analysis.metrics`` raises ValueError for inputs it cannot score (e.g. a constant factor
    among few evaluation points); a trial keeps going and reports NaN for that column.
    """
    try:
        return _call(function, *args, **kwargs)
    except ValueError as error:
        warnings.warn(f"{name} could not be computed ({error}); reported as NaN", RuntimeWarning, stacklevel=2)
        return None


def evaluate(model: torch.nn.Module, dataset: Any, cfg: TrialConfig) -> dict[str, float]:
    """Every metric column of one evaluation (see the module docstring); NaN where not applicable.

    Deterministic for a given model state, dataset and ``cfg.seed``. The model is put in eval mode
    for the evaluation and returned to its previous mode.
    """
    was_training = model.training
    model.eval()
    try:
        return _evaluate(model, dataset, cfg)
    finally:
        model.train(was_training)


def _evaluate(model: torch.nn.Module, dataset: Any, cfg: TrialConfig) -> dict[str, float]:
    out = _nan_metrics()
    test = dataset.splits["test"]
    device = dataset.images.device
    test = test.to(device)
    recon_idx = evaluation_indices(test, max(cfg.eval_points, RECON_TEST_IMAGES), cfg.seed, salt=1)
    out["recon_error"] = reconstruction_error(model, dataset, recon_idx)

    points = evaluation_indices(test, cfg.eval_points, cfg.seed, salt=2)
    predicted, raw = encode_representation(model, dataset, points)
    true_factors = dataset.factors[points].cpu().numpy()
    has_prior = getattr(model, "prior", None) is not None
    # Models with a prior predict factor values once the mixture is fitted (None during warm-up,
    # when the main columns score the raw codes and the prior-based columns stay NaN).
    representation = predicted if predicted is not None else raw
    out.update(score_codes(representation, true_factors, seed=cfg.seed, dci_method=cfg.dci_method))
    if has_prior:
        raw_scores = score_codes(raw, true_factors, seed=cfg.seed, dci_method=cfg.dci_method)
        out.update(raw_dci=raw_scores["dci"], raw_mig=raw_scores["mig"], raw_sap=raw_scores["sap"])
        if predicted is not None:
            out.update(weak_metrics(model, raw, true_factors, cfg, device))
    return out
