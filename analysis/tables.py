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

MODEL_LABELS = {"absae": "AbsAE", "mae": "M-AE", "betavae": "β-VAE", "factorvae": "FactorVAE",
                "betatcvae": "β-TCVAE"}
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
    ``relation_accuracy`` (its ``tau`` is shown beside it).
    """
    frame = _with_family(results)
    frame = frame[frame["model"].isin(("absae", "mae"))] if "model" in frame else frame
    best = _best_configuration_means(frame, ["model", "dataset"], "relation_accuracy", ["relation_accuracy"])
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


def _grid_table(results: pd.DataFrame, key: str, value_columns: dict[str, str],
                paper: dict[tuple[float, int], dict[str, tuple[float, float]]], published_rows: bool) -> pd.DataFrame:
    """Rows (alpha, key); per dataset family the run's seed-and-config means and the paper's ACC / AR."""
    frame = _with_family(results)
    frame = frame[frame["model"] == "absae"] if "model" in frame else frame
    present = {label: column for label, column in value_columns.items() if column in frame.columns}
    if len(frame) and key in frame.columns and present:
        frame = frame[frame["alpha"].notna() & frame[key].notna()]
        run = frame.groupby(["family", "alpha", key])[list(present.values())].mean().reset_index()
    else:
        run = pd.DataFrame(columns=["family", "alpha", key])
    families = list(dict.fromkeys([*published.DATASET_FAMILIES, *run["family"].dropna().unique()]))
    keys = set(zip(run["alpha"].astype(float), run[key].astype(int))) if len(run) else set()
    if published_rows:
        keys |= set(paper)
    rows = []
    for alpha, level in sorted(keys):
        row = {"alpha": alpha, key: level}
        for family in families:
            match = run[(run["family"] == family) & np.isclose(run["alpha"].astype(float), alpha)
                        & (run[key].astype(int) == level)] if len(run) else run
            for label in value_columns:
                column = present.get(label)
                row[f"{family} {label}"] = float(match[column].iloc[0]) if column and len(match) else math.nan
            if published_rows:
                values = paper.get((alpha, level), {}).get(family)
                row[f"{family} ACC (paper)"] = values[0] if values else math.nan
                row[f"{family} AR (paper)"] = values[1] if values else math.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=["alpha", key] + [
        f"{family} {label}" for family in families
        for label in [*value_columns, *(["ACC (paper)", "AR (paper)"] if published_rows else [])]])
    table["alpha"] = table["alpha"].astype("float64")
    table[key] = table[key].astype("Int64")
    return table


def clustering_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Relational Table 4: AbsAE clustering accuracy (ACC) and accepted ratio (AR) by alpha and tau.

    The run's cells average every finished AbsAE trial with that alpha and tau (seeds and other
    hyperparameters alike). The paper's tau values are 10, 20, 30 labelled samples.
    """
    return _grid_table(results, "tau", {"ACC": "clustering_accuracy", "AR": "accepted_ratio"},
                       published.CLUSTERING, published_rows)


def relations_by_depth_table(results: pd.DataFrame, published_rows: bool = True) -> pd.DataFrame:
    """Relational Table 5: ReL relation accuracy by alpha and depth (``relation_depth``) for AbsAE.

    AR is the trials' ``relation_accepted_ratio`` (empty for runs made before it was reported).
    """
    return _grid_table(results, "relation_depth", {"ACC": "relation_accuracy", "AR": "relation_accepted_ratio"},
                       published.RELATIONS, published_rows)


TABLES = {
    "table1_disentanglement": ("Table 1: disentanglement scores (relational Table 1, modular Table 2)",
                               disentanglement_table),
    "table2_relations_by_version": ("Table 2: relation accuracy per dataset version (modular Table 1)",
                                    relations_by_version_table),
    "table4_clustering": ("Table 4: AbsAE clustering accuracy and accepted ratio by alpha and tau "
                          "(relational Table 4)", clustering_table),
    "table5_relations_by_depth": ("Table 5: ReL relation accuracy by alpha and depth (relational Table 5)",
                                  relations_by_depth_table),
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
