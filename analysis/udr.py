"""Unsupervised Disentanglement Ranking (Duan et al. 2020): rank trained models without labels.

Trials that share every hyperparameter and differ only in seed form a group. For two trials a and b
of a group, R[i, j] is the absolute Spearman rank correlation (or the absolute weight of a Lasso
regression, ``method="lasso"``) between latent i of a and latent j of b over the same images; with
``I_a`` / ``I_b`` the informative latents (posterior KL to the prior above ``kl_threshold``, or,
without posterior variances, a variance above ``variance_threshold`` of the largest),

    UDR_ab = 1 / (d_a + d_b) * [ sum_{j in I_b} max_i R[i, j]^2 / sum_i R[i, j]
                                 + sum_{i in I_a} max_j R[i, j]^2 / sum_j R[i, j] ],

the sums over informative latents only. A trial's UDR is the median of UDR_ab over the other trials
of its group (NaN for a trial alone in its group).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from weakdis.registry import METRIC_NAMES

# Columns that are not hyperparameters: trials differing only in these are seeds of one setting.
NOT_HYPERPARAMETERS = frozenset({
    "trial_id", "status", "error", "seed", "train_seconds", "step", "trial_dir", "checkpoint", "run",
    "training_iteration", "time_total_s", "trial_label", *METRIC_NAMES,
})


def informative_latents(codes: np.ndarray, logvar: np.ndarray | None = None, *, kl_threshold: float = 0.01,
                        variance_threshold: float = 0.01) -> np.ndarray:
    """bool [D]: latents whose mean KL(q(z_d|x) || N(0, 1)) exceeds ``kl_threshold`` (with ``logvar``),
    or whose variance exceeds ``variance_threshold`` times the largest latent variance (without)."""
    codes = np.asarray(codes, dtype=np.float64)
    if logvar is not None:
        logvar = np.asarray(logvar, dtype=np.float64)
        kl = 0.5 * (codes ** 2 + np.exp(logvar) - 1.0 - logvar).mean(axis=0)
        return kl > kl_threshold
    variance = codes.var(axis=0)
    return variance > variance_threshold * variance.max() if variance.max() > 0 else np.zeros(codes.shape[1], bool)


def similarity_matrix(codes_a: np.ndarray, codes_b: np.ndarray, *, method: str = "spearman",
                      random_state: int = 0) -> np.ndarray:
    """[D_a, D_b] |Spearman correlation| (or |Lasso weight| of b's latents from a's) between latents."""
    codes_a, codes_b = np.asarray(codes_a, np.float64), np.asarray(codes_b, np.float64)
    if method == "spearman":
        ranks_a = pd.DataFrame(codes_a).rank().to_numpy()
        ranks_b = pd.DataFrame(codes_b).rank().to_numpy()
        a = ranks_a - ranks_a.mean(axis=0)
        b = ranks_b - ranks_b.mean(axis=0)
        norms = np.sqrt((a ** 2).sum(axis=0))[:, None] * np.sqrt((b ** 2).sum(axis=0))[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(norms > 0, (a.T @ b) / norms, 0.0)
        return np.abs(corr)
    if method == "lasso":
        from sklearn.linear_model import Lasso

        a = (codes_a - codes_a.mean(0)) / np.where(codes_a.std(0) > 0, codes_a.std(0), 1.0)
        b = (codes_b - codes_b.mean(0)) / np.where(codes_b.std(0) > 0, codes_b.std(0), 1.0)
        model = Lasso(alpha=0.1, random_state=random_state).fit(a, b)
        return np.abs(np.atleast_2d(model.coef_)).T
    raise ValueError(f"method={method!r} is invalid; expected spearman or lasso")


def pairwise_udr(similarity: np.ndarray, informative_a: np.ndarray, informative_b: np.ndarray) -> float:
    """UDR_ab of Duan et al. (Eq. 3) from R [D_a, D_b] and the informative latents of a and b."""
    r = similarity[np.ix_(informative_a, informative_b)]
    d_a, d_b = r.shape
    if d_a + d_b == 0 or r.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = np.where(r.sum(axis=0) > 0, r.max(axis=0) ** 2 / r.sum(axis=0), 0.0)
        rows = np.where(r.sum(axis=1) > 0, r.max(axis=1) ** 2 / r.sum(axis=1), 0.0)
    return float((columns.sum() + rows.sum()) / (d_a + d_b))


def udr_scores(representations: Mapping[Any, tuple[np.ndarray, np.ndarray | None]], groups: Mapping[Any, Any], *,
               method: str = "spearman", kl_threshold: float = 0.01, random_state: int = 0) -> pd.Series:
    """UDR of each trial: ``representations[trial] = (codes [N, D], logvar [N, D] or None)`` on the same
    N images for every trial; ``groups[trial]`` the key of its hyperparameter setting."""
    informative = {trial: informative_latents(codes, logvar, kl_threshold=kl_threshold)
                   for trial, (codes, logvar) in representations.items()}
    scores = {}
    for trial in representations:
        others = [other for other in representations if other != trial and groups[other] == groups[trial]]
        values = []
        for other in others:
            r = similarity_matrix(representations[trial][0], representations[other][0], method=method,
                                  random_state=random_state)
            values.append(pairwise_udr(r, informative[trial], informative[other]))
        scores[trial] = float(np.median(values)) if values else float("nan")
    return pd.Series(scores, name="udr", dtype="float64")


def hyperparameter_groups(results: pd.DataFrame) -> pd.Series:
    """Per trial, a key of its hyperparameters (every column but seeds, metrics, losses and bookkeeping)."""
    columns = [c for c in results.columns if c not in NOT_HYPERPARAMETERS and not str(c).startswith("loss_")]
    keys = ["|".join(f"{column}={value}" for column, value in zip(columns, row))
            for row in results[columns].itertuples(index=False)]
    return pd.Series(keys, index=results["trial_id"].to_numpy(), name="group", dtype=object)


def udr(source: str | os.PathLike | pd.DataFrame, *, representations: Mapping[Any, tuple] | None = None,
        method: str = "spearman", num_points: int = 1000, kl_threshold: float = 0.01, random_state: int = 0,
        device: str = "cpu") -> pd.DataFrame:
    """UDR of every finished trial of a run directory or results DataFrame.

    ``representations``: ``trial_id -> (codes, logvar or None)`` on shared images; None reads each
    trial's checkpoint and encodes ``num_points`` test images of the first trial's dataset (seeded by
    ``random_state``). Returns ``trial_id``, ``group`` and ``udr`` (plus ``udr_rank``, 1 = best), one
    row per trial, best first.
    """
    if isinstance(source, pd.DataFrame):
        results = source
    else:
        from analysis.results import load_results

        results = load_results(source)
    if "status" in results.columns:
        results = results[results["status"].isin(["finished", "stopped_early"])]
    if representations is None:
        from analysis.checkpoints import read_trial_codes

        usable = results[results["checkpoint"].notna()]
        codes = read_trial_codes(list(usable["checkpoint"]), num_points=num_points, seed=random_state, device=device)
        representations = dict(zip(usable["trial_id"], codes))
        results = usable
    results = results[results["trial_id"].isin(list(representations))]
    groups = hyperparameter_groups(results)
    scores = udr_scores({t: representations[t] for t in results["trial_id"]}, groups.to_dict(), method=method,
                        kl_threshold=kl_threshold, random_state=random_state)
    frame = pd.DataFrame({"trial_id": scores.index, "group": groups.reindex(scores.index).to_numpy(),
                          "udr": scores.to_numpy()})
    frame["udr_rank"] = frame["udr"].rank(ascending=False, method="min")
    return frame.sort_values("udr", ascending=False, na_position="last").reset_index(drop=True)


def udr_vs_metric(results: pd.DataFrame, udr_frame: pd.DataFrame, metric: str = "dci") -> dict[str, float]:
    """Spearman correlation between UDR and ``metric`` over the trials that have both, and how many."""
    merged = results[["trial_id", metric]].merge(udr_frame[["trial_id", "udr"]], on="trial_id").dropna()
    if len(merged) < 3:
        return {"spearman": float("nan"), "trials": float(len(merged))}
    rho = merged["udr"].rank().corr(merged[metric].rank())
    return {"spearman": float(rho), "trials": float(len(merged))}
