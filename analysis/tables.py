"""The papers' tables from a run, with the published numbers beside the run's.

- ``disentanglement_table``: relational Table 1 / modular Table 2 (DCI, MIG, SAP per method and dataset).
- ``relations_by_version_table``: modular Table 1 (relation accuracy per dataset version, AbsAE vs M-AE).
- ``clustering_table``: relational Table 4 (AbsAE clustering accuracy and accepted ratio by alpha and tau).
- ``relations_by_depth_table``: relational Table 5 (ReL relation accuracy by alpha and depth).

Each returns a plain DataFrame (``NaN`` where the run or the paper has no value); ``to_markdown``
and ``to_latex`` format any of them; ``paper_tables`` builds all four and ``write_tables`` writes
them as CSV, Markdown and LaTeX.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from analysis import published
from analysis.pareto import aggregate_seeds
from weakdis.errors import WeakdisError
from weakdis.registry import ALPHA_GRID, DEPTH_GRID, MODELS, clustering_column, relation_column

MODEL_LABELS = {entry.name: entry.label for entry in MODELS}   # from weakdis.registry
METRIC_LABELS = {"dci": "DCI", "mig": "MIG", "sap": "SAP"}
COMPLETED = ("finished", "stopped_early")


def model_label(model: str) -> str:
    return MODEL_LABELS.get(str(model), str(model))


def dataset_family(dataset: str) -> str:
    """``"dsprites:v2"`` -> ``"dsprites"``."""
    return str(dataset).split(":", 1)[0]


def completed_trials(results: pd.DataFrame) -> pd.DataFrame:
    """The trials whose last evaluation is final (finished or stopped early).

    A sweep with none yet (still running) falls back to every trial that has reported, so that a
    partial run still gets tables; the report says which it used.
    """
    if "status" not in results.columns:
        return results
    done = results[results["status"].isin(COMPLETED)]
    if len(done):
        return done
    started = results["status"].isin(("running", "failed"))
    if "step" in results.columns:
        started &= results["step"].notna()
    return results[started]


def _with_family(results: pd.DataFrame) -> pd.DataFrame:
    frame = completed_trials(results).copy()
    frame["family"] = frame["dataset"].map(dataset_family).astype("string") if "dataset" in frame else pd.NA
    return frame


def _best_configuration_means(frame: pd.DataFrame, group: list[str], select: str,
                              metrics: list[str]) -> pd.DataFrame:
    """Per group, the seed-averaged configuration with the highest ``select`` mean."""
    present = [metric for metric in metrics if metric in frame.columns]
    if frame.empty or select not in frame.columns or frame[select].isna().all():
        return pd.DataFrame(columns=[*group, *present, "n_seeds"])
    means = aggregate_seeds(frame[frame[select].notna()], metrics=present)
    if "family" not in means.columns and "dataset" in means.columns:
        means["family"] = means["dataset"].map(dataset_family)
    best = means.sort_values(select, ascending=False, kind="stable").groupby(group, sort=True).head(1)
    return best.sort_values(group).reset_index(drop=True)


def disentanglement_table(results: pd.DataFrame, select: str = "dci", published_rows: bool = True) -> pd.DataFrame:
    """Relational Table 1 / modular Table 2: DCI, MIG and SAP per method (rows) and dataset.

    The run's row for a model and dataset is its best configuration by the seed-averaged ``select``
    metric, averaged over that configuration's seeds (``n_seeds`` per dataset says how many).
    """
    frame = _with_family(results)
    best = _best_configuration_means(frame, ["model", "family"], select, ["dci", "mig", "sap"])
    families = list(dict.fromkeys([*published.DATASET_FAMILIES, *best.get("family", pd.Series(dtype=str)).dropna()]))
    columns = ["method", "source"] + [f"{family} {METRIC_LABELS[m]}" for family in families for m in METRIC_LABELS] \
        + [f"{family} seeds" for family in families]
    rows = []
    for model in sorted(best["model"].dropna().unique(), key=lambda name: list(MODEL_LABELS).index(name)
                        if name in MODEL_LABELS else len(MODEL_LABELS)):
        row = {"method": model_label(model), "source": f"this run (best by {select})"}
        for family in families:
            match = best[(best["model"] == model) & (best["family"] == family)]
            for metric, label in METRIC_LABELS.items():
                row[f"{family} {label}"] = float(match[metric].iloc[0]) if len(match) and metric in match else math.nan
            row[f"{family} seeds"] = int(match["n_seeds"].iloc[0]) if len(match) else math.nan
        rows.append(row)
    if published_rows:
        for label, _, source, values in published.DISENTANGLEMENT:
            row = {"method": label, "source": f"published ({source})"}
            for family in families:
                for metric, metric_label in METRIC_LABELS.items():
                    row[f"{family} {metric_label}"] = values.get(family, {}).get(metric, math.nan)
                row[f"{family} seeds"] = math.nan
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    seed_columns = [column for column in table.columns if column.endswith(" seeds")]
    table[seed_columns] = table[seed_columns].astype("Int64")
    return table


def relations_by_version_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Modular Table 1: relation accuracy per dataset version, the run's AbsAE and M-AE beside the paper's.

    The run's value for a model and version is its best configuration's seed-averaged
    ``relation_accuracy`` (its ``tau`` is shown beside it), and that configuration's
    ``relation_accuracy_moved`` (the moved factors alone; docs/metrics.md) where the results have it.
    """
    frame = _with_family(results)
    frame = frame[frame["model"].isin(("absae", "mae"))] if "model" in frame else frame
    best = _best_configuration_means(frame, ["model", "dataset"], "relation_accuracy",
                                     ["relation_accuracy", "relation_accuracy_moved"])
    moved = "relation_accuracy_moved" in best.columns
    versions = list(published.RELATION_ACCURACY_BY_VERSION) if published_rows else []
    versions += [version for version in sorted(best.get("dataset", pd.Series(dtype=str)).dropna().unique())
                 if version not in versions]
    rows = []
    for version in versions:
        paper = published.RELATION_ACCURACY_BY_VERSION.get(version)
        row = {"version": version, "combinations": paper[0] if paper else pd.NA}
        for model in ("absae", "mae"):
            match = best[(best["model"] == model) & (best["dataset"] == version)] if len(best) else best
            label = model_label(model)
            row[f"{label} accuracy"] = float(match["relation_accuracy"].iloc[0]) if len(match) else math.nan
            if moved:
                row[f"{label} accuracy (moved factors)"] = (float(match["relation_accuracy_moved"].iloc[0])
                                                            if len(match) else math.nan)
            row[f"{label} tau"] = match["tau"].iloc[0] if len(match) and "tau" in match else pd.NA
        if published_rows:
            row["AbsAE accuracy (paper)"] = paper[1] if paper else math.nan
            row["AbsAE tau (paper)"] = paper[2] if paper else pd.NA
            row["M-AE accuracy (paper)"] = paper[3] if paper else math.nan
            row["M-AE tau (paper)"] = paper[4] if paper else pd.NA
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in table.columns:
        if column.endswith(" tau") or column.endswith("tau (paper)") or column == "combinations":
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    if not rows:
        table = pd.DataFrame(columns=["version", "combinations", "AbsAE accuracy", "AbsAE tau",
                                      "M-AE accuracy", "M-AE tau"])
    return table


def _grid_rows(frame: pd.DataFrame, key: str, grid: list[tuple[float, int | None, str, str]],
               plain: tuple[str, str]) -> pd.DataFrame:
    """One row per (trial, alpha, key level) with its ``ACC`` and ``AR``.

    A trial that reports the grid columns (``grid``: (alpha, level or None = the trial's own
    ``key``, accuracy column, accepted-ratio column)) gives one row per grid cell; an older trial
    gives one row at its own ``alpha`` and ``key`` from the ``plain`` columns.
    """
    rows = []
    grid_columns = [column for _, _, acc, ar in grid for column in (acc, ar) if column in frame.columns]
    for _, trial in frame.iterrows():
        has_grid = bool(grid_columns) and trial[grid_columns].notna().any()
        if has_grid:
            for alpha, level, accuracy, ratio in grid:
                level = trial.get(key) if level is None else level
                rows.append({"family": trial["family"], "alpha": alpha, key: level,
                             "ACC": trial.get(accuracy, math.nan), "AR": trial.get(ratio, math.nan)})
        elif plain[0] in frame.columns:
            rows.append({"family": trial["family"], "alpha": trial.get("alpha"), key: trial.get(key),
                         "ACC": trial.get(plain[0], math.nan), "AR": trial.get(plain[1], math.nan)})
    long = pd.DataFrame(rows, columns=["family", "alpha", key, "ACC", "AR"])
    long = long[long["alpha"].notna() & long[key].notna()]
    for column in ("alpha", "ACC", "AR"):
        long[column] = pd.to_numeric(long[column], errors="coerce").astype("float64")
    return long


def _grid_table(results: pd.DataFrame, key: str, grid: list[tuple[float, int | None, str, str]],
                plain: tuple[str, str], paper: dict[tuple[float, int], dict[str, tuple[float, float]]],
                published_rows: bool) -> pd.DataFrame:
    """Rows (alpha, key); per dataset family the run's seed-and-config means and the paper's ACC / AR."""
    frame = _with_family(results)
    frame = frame[frame["model"] == "absae"] if "model" in frame else frame
    if len(frame) and key in frame.columns:
        long = _grid_rows(frame, key, grid, plain)
        long[key] = long[key].astype(float).round(2)
        run = long.groupby(["family", "alpha", key])[["ACC", "AR"]].mean().reset_index()
    else:
        run = pd.DataFrame(columns=["family", "alpha", key, "ACC", "AR"])
    families = list(dict.fromkeys([*published.DATASET_FAMILIES, *run["family"].dropna().unique()]))
    keys = set(zip(run["alpha"].astype(float), run[key].astype(float))) if len(run) else set()
    if published_rows:
        keys |= set(paper)
    labels = ("ACC", "AR")
    rows = []
    for alpha, level in sorted(keys):
        row = {"alpha": alpha, key: level}
        for family in families:
            match = run[(run["family"] == family) & np.isclose(run["alpha"].astype(float), alpha)
                        & np.isclose(run[key].astype(float), level)] if len(run) else run
            for label in labels:
                row[f"{family} {label}"] = float(match[label].iloc[0]) if len(match) else math.nan
            if published_rows:
                values = paper.get((alpha, level), {}).get(family)
                row[f"{family} ACC (paper)"] = values[0] if values else math.nan
                row[f"{family} AR (paper)"] = values[1] if values else math.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=["alpha", key] + [
        f"{family} {label}" for family in families
        for label in [*labels, *(["ACC (paper)", "AR (paper)"] if published_rows else [])]])
    table["alpha"] = table["alpha"].astype("float64")
    levels = table[key].astype("float64")
    table[key] = levels.astype("Int64") if np.allclose(levels, levels.round()) else levels
    return table


def expand_evaluation_grid(results: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The results with one row per trial and grid cell, for the figures over alpha (and depth).

    ``kind="clustering"``: a row per alpha of ``ALPHA_GRID`` with ``alpha``, ``clustering_accuracy``
    and ``accepted_ratio`` taken from that alpha's grid columns. ``kind="relations"``: a row per
    (depth, alpha) with ``relation_depth``, ``alpha``, ``relation_accuracy`` and
    ``relation_accepted_ratio`` from the grid. Trials without the grid columns keep their own row.
    """
    if kind == "clustering":
        cells = [({"alpha": alpha}, {"clustering_accuracy": clustering_column(alpha),
                                     "accepted_ratio": clustering_column(alpha, "ratio")}) for alpha in ALPHA_GRID]
    elif kind == "relations":
        cells = [({"alpha": alpha, "relation_depth": depth},
                  {"relation_accuracy": relation_column(depth, alpha),
                   "relation_accepted_ratio": relation_column(depth, alpha, "ratio")})
                 for depth in DEPTH_GRID for alpha in ALPHA_GRID]
    else:
        raise ValueError(f"kind={kind!r}; expected 'clustering' or 'relations'")
    grid_columns = [column for _, columns in cells for column in columns.values() if column in results.columns]
    if not grid_columns or results.empty:
        return results
    has_grid = results[grid_columns].notna().any(axis=1)
    expanded = [results[~has_grid]]
    with_grid = results[has_grid]
    for settings, columns in cells:
        cell = with_grid.copy()
        for key, value in settings.items():
            cell[key] = value
        for target, source in columns.items():
            cell[target] = with_grid[source] if source in with_grid.columns else math.nan
        expanded.append(cell)
    return pd.concat(expanded, ignore_index=True)


def clustering_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Relational Table 4: AbsAE clustering accuracy (ACC) and accepted ratio (AR) by alpha and tau.

    Every evaluation reports both at each alpha of ``weakdis.registry.ALPHA_GRID``
    (``clustering_accuracy_a<alpha>``, ``accepted_ratio_a<alpha>``), so one trial per tau fills a
    column of the table; trials from runs without those columns count at their own ``alpha``. Cells
    average every finished AbsAE trial with that tau (seeds and other hyperparameters alike).

    ``tau`` here is labelled images per prior component, the paper's unit (10, 20, 30 samples: fewer
    than one per symbol otherwise on HWF): a trial's ``tau`` (all its labelled images) divided by its
    dataset version's number of factor combinations, e.g. 130 on hwf:v1 (13 symbols) is row 10.
    """
    grid = [(alpha, None, clustering_column(alpha), clustering_column(alpha, "ratio")) for alpha in ALPHA_GRID]
    return _grid_table(tau_per_component(results), "tau", grid, ("clustering_accuracy", "accepted_ratio"), published.CLUSTERING,
                       published_rows)


def tau_per_component(results: pd.DataFrame) -> pd.DataFrame:
    """The results with ``tau`` divided by the number of factor combinations of each trial's dataset
    version (labelled images per prior component, Table 4's and Figure 2's unit), to 2 decimals."""
    if not {"tau", "dataset"} <= set(results.columns):
        return results
    from trainables.data.versions import get_version

    def components(dataset: object) -> float:
        try:
            return float(get_version(str(dataset)).num_combinations)
        except WeakdisError:
            return math.nan   # a dataset without factor combinations: its tau stays as it is

    out = results.copy()
    counts = out["dataset"].map(components)
    out["tau"] = np.where(counts.notna(), out["tau"].astype(float) / counts, out["tau"].astype(float)).round(2)
    return out


def relations_by_depth_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Relational Table 5: ReL relation accuracy (ACC) and accepted ratio (AR) by alpha and depth for AbsAE.

    From the ``relation_accuracy_d<depth>_a<alpha>`` / ``relation_accepted_ratio_d<depth>_a<alpha>``
    columns over ``DEPTH_GRID`` x ``ALPHA_GRID`` (one trial fills the table); trials from runs without
    them count at their own ``alpha`` and ``relation_depth``.
    """
    grid = [(alpha, depth, relation_column(depth, alpha), relation_column(depth, alpha, "ratio"))
            for depth in DEPTH_GRID for alpha in ALPHA_GRID]
    return _grid_table(results, "relation_depth", grid, ("relation_accuracy", "relation_accepted_ratio"),
                       published.RELATIONS, published_rows)


def linear_probe_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Explicit-disentanglement Table 1: per paper row (model and beta), the seed mean of
    ``linear_probe_accuracy`` on each digits dataset beside the published accuracy."""
    frame = _with_family(results)
    rows = []
    for label, model, beta, paper in published.LINEAR_PROBE:
        row: dict[str, object] = {"method": label, "model": model}
        for family in published.LINEAR_PROBE_DATASETS:
            match = frame[(frame["model"] == model) & (frame["family"] == family)] if "model" in frame else frame[:0]
            if len(match) and "beta" in match.columns:
                match = match[np.isclose(match["beta"].astype(float), beta)]
            values = match["linear_probe_accuracy"].dropna() if "linear_probe_accuracy" in match.columns else []
            row[f"{family} (run)"] = float(np.mean(values)) if len(values) else math.nan
            row[f"{family} seeds"] = int(len(values))
            if published_rows:
                row[f"{family} (paper)"] = math.nan if paper[family] is None else paper[family]
        rows.append(row)
    return pd.DataFrame(rows)


TABLES = {
    "table1_disentanglement": ("Table 1: disentanglement scores (relational Table 1, modular Table 2)",
                               disentanglement_table),
    "table2_relations_by_version": ("Table 2: relation accuracy per dataset version (modular Table 1)",
                                    relations_by_version_table),
    "table4_clustering": ("Table 4: AbsAE clustering accuracy and accepted ratio by alpha and tau "
                          "(relational Table 4)", clustering_table),
    "table5_relations_by_depth": ("Table 5: ReL relation accuracy by alpha and depth (relational Table 5)",
                                  relations_by_depth_table),
    "explicit_table1_linear_probe": ("Linear-probe accuracy of the digit class from z (explicit-disentanglement "
                                     "Table 1)", linear_probe_table),
}


def paper_tables(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """All four tables, keyed by the names in ``TABLES``."""
    return {name: build(results) for name, (_, build) in TABLES.items()}


def _cell(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; missing values print as an en dash."""
    header = [str(column) for column in table.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(value, digits).replace("|", "\\|") for value in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                  "β": r"$\beta$", "–": "--", "τ": r"$\tau$", "α": r"$\alpha$"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(character, character) for character in text)


def to_latex(table: pd.DataFrame, digits: int = 3, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(_latex_escape(str(column)) for column in table.columns) + r" \\", r"\midrule"]
    for _, row in table.iterrows():
        lines.append(" & ".join(_latex_escape(_cell(value, digits)) for value in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_tables(results: pd.DataFrame, out_dir: str | os.PathLike,
                 names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Write each table as ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name in names or TABLES:
        caption, build = TABLES[name]
        table = build(results)
        table.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"**{caption}**\n\n" + to_markdown(table))
        (out / f"{name}.tex").write_text(to_latex(table, caption=caption, label=f"tab:{name}"))
        tables[name] = table
    return tables
