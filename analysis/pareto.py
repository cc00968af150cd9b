"""Pareto frontiers, hypervolume and aggregation over seeds, on the per-trial DataFrame."""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

DEFAULT_OBJECTIVES: Mapping[str, str] = {"recon_error": "min", "dci": "max"}

# Columns that identify a trial or describe its outcome rather than its configuration.
NON_CONFIG_COLUMNS = frozenset({
    "run", "trial_id", "status", "error", "trial_dir", "checkpoint", "step", "train_seconds",
    "training_iteration", "time_total_s", "trial_label", "seed", "device", "data_path",
})


def _senses(objectives: Mapping[str, str]) -> np.ndarray:
    """+1 for a minimised objective, -1 for a maximised one (so that smaller is better after scaling)."""
    if not objectives:
        raise ValueError("objectives is empty; expected a mapping like {'recon_error': 'min', 'dci': 'max'}")
    signs = []
    for name, sense in objectives.items():
        if sense not in ("min", "max"):
            raise ValueError(f"objective {name!r}: sense {sense!r} is invalid; expected 'min' or 'max'")
        signs.append(1.0 if sense == "min" else -1.0)
    return np.asarray(signs)


def non_dominated_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points`` [n, k] (all minimised) that no other row dominates.

    Row a dominates row b when a <= b everywhere and a < b somewhere; identical rows do not dominate
    each other, so ties on the front are all kept.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points has shape {points.shape}; expected [n, k]")
    count = len(points)
    keep = np.zeros(count, dtype=bool)
    if count == 0:
        return keep
    # In lexicographic order a point can only be dominated by points before it, and a point on the
    # front is never dominated later: one pass that compares each point with the front so far.
    order = np.lexsort(points.T[::-1])
    front = np.empty_like(points)
    size = 0
    for index in order:
        point = points[index]
        current = front[:size]
        dominated = np.any(np.all(current <= point, axis=1) & np.any(current < point, axis=1)) if size else False
        if not dominated:
            front[size] = point
            size += 1
            keep[index] = True
    return keep


def _group_keys(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES,
                 by: str | Sequence[str] | None = "model") -> pd.DataFrame:
    """The rows that no other row of the same group dominates, for any number of objectives.

    ``objectives`` maps a column to ``"min"`` or ``"max"``; ``by`` names the grouping column(s)
    (``None``: one front over all rows). Rows with a missing objective take no part. Identical points
    are all kept. The result keeps ``df``'s index and row order.
    """
    signs = _senses(objectives)
    columns = list(objectives)
    keys = _group_keys(by)
    missing = [column for column in columns + keys if column not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is not in the DataFrame; it has {', '.join(map(str, df.columns))}")
    values = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) * signs
    complete = np.all(np.isfinite(values), axis=1)
    keep = np.zeros(len(df), dtype=bool)
    if keys:
        group_ids = df[keys].astype(object).where(df[keys].notna(), "<NA>").apply(tuple, axis=1)
        groups = pd.Series(np.arange(len(df))).groupby(group_ids.to_numpy(), sort=False)
        positions = [np.asarray(members) for _, members in groups]
    else:
        positions = [np.arange(len(df))]
    for members in positions:
        members = members[complete[members]]
        if len(members):
            keep[members] = non_dominated_mask(values[members])
    return df[keep]


def hypervolume(front: pd.DataFrame | np.ndarray, reference: Mapping[str, float] | Sequence[float],
                objectives: Mapping[str, str] = DEFAULT_OBJECTIVES) -> float:
    """The volume dominated by ``front`` and bounded by the ``reference`` point.

    ``front``: a DataFrame (its ``objectives`` columns are used) or an array [n, k] already in
    the objectives' order. ``reference``: one value per objective (a mapping by name or a sequence),
    worse than every point that should count; points not strictly better than it in every objective
    add nothing. Exact for any number of objectives (recursive slicing; fine for fronts of a few
    hundred points in two or three dimensions).
    """
    signs = _senses(objectives)
    names = list(objectives)
    if isinstance(front, pd.DataFrame):
        points = front[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    else:
        points = np.asarray(front, dtype=float)
        if points.ndim == 1 and points.size == 0:
            points = points.reshape(0, len(names))
    if points.ndim != 2 or points.shape[1] != len(names):
        raise ValueError(f"front has shape {points.shape}; expected [n, {len(names)}] for objectives {names}")
    if isinstance(reference, Mapping):
        absent = [name for name in names if name not in reference]
        if absent:
            raise ValueError(f"reference has no value for objective {absent[0]!r}")
        ref = np.asarray([reference[name] for name in names], dtype=float)
    else:
        ref = np.asarray(list(reference), dtype=float)
    if ref.shape != (len(names),) or not np.all(np.isfinite(ref)):
        raise ValueError(f"reference {list(ref)} is invalid; expected {len(names)} finite numbers for {names}")
    points = points[np.all(np.isfinite(points), axis=1)] * signs
    ref = ref * signs
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[non_dominated_mask(points)]
    return float(_hypervolume_minimise(np.unique(points, axis=0), ref))


def _hypervolume_minimise(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    order = np.argsort(points[:, 0], kind="stable")
    points = points[order]
    volume = 0.0
    # Slab between consecutive first coordinates: the points to its left, projected on the rest.
    for index in range(len(points)):
        upper = points[index + 1, 0] if index + 1 < len(points) else ref[0]
        width = upper - points[index, 0]
        if width <= 0:
            continue
        projected = points[: index + 1, 1:]
        projected = projected[non_dominated_mask(projected)]
        volume += width * _hypervolume_minimise(projected, ref[1:])
    return volume


def config_columns(df: pd.DataFrame, metrics: Iterable[str] = ()) -> list[str]:
    """The columns that describe a trial's configuration (seed excluded), present in ``df``."""
    from analysis.results import (BOOLEAN_CONFIG_KEYS, FLOAT_CONFIG_KEYS, INTEGER_CONFIG_KEYS,
                                  TEXT_CONFIG_KEYS)

    known = set(INTEGER_CONFIG_KEYS) | set(FLOAT_CONFIG_KEYS) | set(TEXT_CONFIG_KEYS) | set(BOOLEAN_CONFIG_KEYS)
    excluded = set(NON_CONFIG_COLUMNS) | set(metrics)
    return [column for column in df.columns if column in known and column not in excluded]


def aggregate_seeds(df: pd.DataFrame, metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Mean and confidence interval of each metric over the seeds of each configuration.

    ``by``: the configuration columns (default: every config key present except ``seed``, ``device``
    and ``data_path``; plus ``run`` when several runs are mixed). ``metrics``: default every contract
    metric present. One row per configuration with ``n_seeds``, ``<metric>`` (the mean),
    ``<metric>_std``, ``<metric>_ci_low`` and ``<metric>_ci_high`` (Student-t interval at
    ``confidence``; equal to the mean for a single seed). Missing metric values are skipped.
    """
    from analysis.results import METRIC_COLUMNS

    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} is invalid; expected a number in (0, 1)")
    if metrics is None:
        metrics = [column for column in (*METRIC_COLUMNS, "train_seconds") if column in df.columns]
    metrics = list(metrics)
    if by is None:
        by = config_columns(df, metrics)
        if "run" in df.columns and df["run"].nunique(dropna=True) > 1:
            by = ["run", *by]
    by = list(by)
    absent = [column for column in [*by, *metrics] if column not in df.columns]
    if absent:
        raise ValueError(f"column {absent[0]!r} is not in the DataFrame")
    # Constant columns would only add noise to the key; all-NA ones would drop every row in groupby.
    by = [column for column in by if df[column].notna().any()]
    from scipy import stats

    rows = []
    grouped = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_seeds"] = int(group["seed"].nunique()) if "seed" in group.columns else len(group)
        row["n_trials"] = len(group)
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").dropna().to_numpy(dtype=float)
            mean = float(values.mean()) if len(values) else math.nan
            std = float(values.std(ddof=1)) if len(values) > 1 else (0.0 if len(values) else math.nan)
            if len(values) > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * std / math.sqrt(len(values))
            else:
                half = 0.0 if len(values) else math.nan
            row[metric] = mean
            row[f"{metric}_std"] = std
            row[f"{metric}_ci_low"] = mean - half
            row[f"{metric}_ci_high"] = mean + half
        rows.append(row)
    result = pd.DataFrame(rows)
    for column in by:
        result[column] = result[column].astype(df[column].dtype)
    return result


def seed_aggregated_front(df: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES,
                          by: str | Sequence[str] | None = "model", aggregate: str = "before",
                          confidence: float = 0.95) -> pd.DataFrame:
    """A Pareto front with seeds aggregated ``"before"`` or ``"after"`` it is taken, or ``"none"``.

    - ``"none"``: the front over individual trials (``pareto_front``).
    - ``"before"``: average each configuration over its seeds, then take the front of the means.
    - ``"after"``: take the front over individual trials, then report, for every configuration with
      at least one trial on it, the mean and interval over all of that configuration's seeds
      (``front_trials`` counts its trials on the front).
    """
    if aggregate == "none":
        return pareto_front(df, objectives, by)
    keys = _group_keys(by)
    config = [column for column in config_columns(df, objectives) if column not in keys]
    if "run" in df.columns and df["run"].nunique(dropna=True) > 1:
        config = ["run", *config]
    group = [*keys, *config]
    if aggregate == "before":
        means = aggregate_seeds(df, by=group, confidence=confidence)
        return pareto_front(means, objectives, keys or None).reset_index(drop=True)
    if aggregate == "after":
        front = pareto_front(df, objectives, by)
        means = aggregate_seeds(df, by=group, confidence=confidence)
        group = [column for column in group if column in means.columns]
        counts = front.groupby(group, dropna=False).size().rename("front_trials").reset_index()
        merged = means.merge(counts, on=group, how="inner")
        return merged.reset_index(drop=True)
    raise ValueError(f"aggregate={aggregate!r} is invalid; expected 'before', 'after' or 'none'")
