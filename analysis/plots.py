"""Figures for papers and reports: one function per figure, each returning a matplotlib Figure.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend), so
they are safe in scripts, tests and worker processes; save them with ``fig.savefig(path)``.
Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies) and
every model also has its own marker, so the figures read in greyscale too.

A figure whose data the run lacks (no trial reported the metric yet) raises ``MissingDataError``
with a message that says what is missing; ``weakdis analyze`` lists those in its report.
"""
from __future__ import annotations

import math
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.checkpoints import TrialImages, read_trial_images
from analysis.pareto import pareto_front
from analysis.tables import completed_trials, dataset_family, expand_evaluation_grid, model_label, tau_per_component
from weakdis.registry import METRICS, MODELS

# Okabe & Ito (2008), "Color universal design".
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
MODEL_STYLES: dict[str, tuple[str, str]] = {  # model -> (colour, marker), from weakdis.registry
    entry.name: (entry.colour, entry.marker) for entry in MODELS
}
SEQUENCE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
SEQUENCE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
METRIC_NAMES = {column.name: column.label for column in METRICS}   # axis labels, from weakdis.registry
_RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
       "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
       "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 150}


class MissingDataError(ValueError):
    """The run holds no data for this figure (yet)."""


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _width(width: float) -> float:
    """Figures are at least 6 inches wide, so that titles and legends fit one-panel figures too."""
    return max(6.0, width)


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def model_style(model: str, index: int = 0) -> tuple[str, str]:
    """(colour, marker) of a model; unknown models take the palette in order."""
    return MODEL_STYLES.get(str(model), (OKABE_ITO[index % len(OKABE_ITO)], SEQUENCE_MARKERS[index % 8]))


def _label(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def _usable(results: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    missing = [column for column in columns if column not in results.columns]
    if missing:
        raise MissingDataError(f"{what}: the results have no column {missing[0]!r}")
    frame = completed_trials(results)
    absent = [column for column in columns if frame[column].isna().all()]
    if absent:
        raise MissingDataError(f"{what}: no trial has a value for {', '.join(absent)} yet")
    frame = frame.dropna(subset=list(columns))
    if frame.empty:
        raise MissingDataError(f"{what}: no trial has values for all of {', '.join(columns)} yet")
    return frame


def _models(frame: pd.DataFrame) -> list[str]:
    order = list(MODEL_STYLES)
    return sorted(frame["model"].dropna().unique(), key=lambda m: (order.index(m) if m in order else 99, m))


def _share_legend(fig, axes_list, right: bool = False) -> None:
    handles, labels = {}, []
    for ax in axes_list:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    if labels and right:
        fig.legend([handles[label] for label in labels], labels, loc="outside right upper", frameon=False)
    elif labels:
        fig.legend([handles[label] for label in labels], labels, loc="outside lower center",
                   ncol=min(len(labels), 5), frameon=False)


# ----------------------------------------------------------------------------- Figure 5

def tradeoff_grid(results: pd.DataFrame, metrics: Sequence[str] = ("dci", "mig", "sap"),
                  x: str = "recon_error", frontier: bool = True) -> Any:
    """Figure 5: each disentanglement metric against reconstruction error, per model.

    Rows are datasets, columns metrics; every finished trial is a point; with ``frontier`` each
    model's Pareto frontier (``x`` minimised, the metric maximised) is drawn as a staircase.
    """
    frame = _usable(results, [x, "model", "dataset"], "trade-off grid")
    metrics = [metric for metric in metrics if metric in frame.columns and frame[metric].notna().any()]
    if not metrics:
        raise MissingDataError("trade-off grid: no trial has reported dci, mig or sap yet")
    datasets = sorted(frame["dataset"].dropna().unique())
    with _rc():
        fig = _figure(_width(3.2 * len(metrics)), 2.7 * len(datasets) + 0.5)
        axes = fig.subplots(len(datasets), len(metrics), squeeze=False)
        for row, dataset in enumerate(datasets):
            subset = frame[frame["dataset"] == dataset]
            for col, metric in enumerate(metrics):
                ax = axes[row][col]
                for index, model in enumerate(_models(subset)):
                    points = subset[(subset["model"] == model)].dropna(subset=[metric])
                    if points.empty:
                        continue
                    colour, marker = model_style(model, index)
                    ax.scatter(points[x], points[metric], s=22, color=colour, marker=marker, alpha=0.55,
                               edgecolors="none", label=None if frontier else model_label(model))
                    if frontier:
                        front = pareto_front(points, {x: "min", metric: "max"}, by=None).sort_values(x)
                        ax.step(front[x], front[metric], where="post", color=colour, linewidth=1.6)
                        ax.scatter(front[x], front[metric], s=34, color=colour, marker=marker,
                                   edgecolors="black", linewidths=0.6, zorder=3, label=model_label(model))
                ax.set_xlabel(_label(x))
                ax.set_ylabel(_label(metric))
                ax.set_title(f"{dataset}: {METRIC_NAMES.get(metric, metric).split(' (')[0]}")
        _share_legend(fig, axes.ravel())
        if frontier:
            fig.suptitle("Disentanglement vs reconstruction (outlined points and lines: Pareto frontier per model)",
                         fontsize=10)
    return fig


# ----------------------------------------------------------------------------- score vs beta

def score_vs_beta(results: pd.DataFrame, metric: str = "dci", confidence: float = 0.95) -> Any:
    """A metric against beta per model: each seed as a faint point, the mean with its confidence band.

    One panel per dataset. Trials that differ in other hyperparameters at the same beta are pooled.
    """
    from scipy import stats

    frame = _usable(results, ["beta", metric, "model", "dataset"], f"{metric} against beta")
    datasets = sorted(frame["dataset"].dropna().unique())
    with _rc():
        fig = _figure(_width(3.6 * len(datasets)), 3.2)
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, dataset in zip(axes, datasets):
            subset = frame[frame["dataset"] == dataset]
            for index, model in enumerate(_models(subset)):
                points = subset[subset["model"] == model]
                colour, marker = model_style(model, index)
                ax.scatter(points["beta"], points[metric], s=12, color=colour, alpha=0.35, marker=marker,
                           edgecolors="none")
                grouped = points.groupby("beta")[metric]
                betas = np.asarray(sorted(grouped.groups), dtype=float)
                means = grouped.mean().reindex(betas).to_numpy()
                counts = grouped.count().reindex(betas).to_numpy()
                stds = grouped.std(ddof=1).reindex(betas).fillna(0.0).to_numpy()
                half = np.array([stats.t.ppf(0.5 + confidence / 2, n - 1) * s / math.sqrt(n) if n > 1 else 0.0
                                 for n, s in zip(counts, stds)])
                ax.plot(betas, means, color=colour, marker=marker, markersize=4, linewidth=1.5,
                        label=model_label(model))
                ax.fill_between(betas, means - half, means + half, color=colour, alpha=0.18, linewidth=0)
            positive = frame["beta"][frame["beta"] > 0]
            if len(positive) and positive.max() / positive.min() >= 10 and (subset["beta"] > 0).all():
                ax.set_xscale("log")
            ax.set_xlabel("β")
            ax.set_ylabel(_label(metric))
            ax.set_title(dataset)
        _share_legend(fig, axes)
        fig.suptitle(f"{_label(metric)} against β (line: mean over seeds, band: {confidence:.0%} CI)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- Figure 2

def _grouped_lines(ax, frame: pd.DataFrame, x: str, y: str, group: str, linestyle: str = "-",
                   label_prefix: str = "", label: bool = True) -> None:
    for index, (level, points) in enumerate(sorted(frame.groupby(group), key=lambda item: item[0])):
        summary = points.groupby(x)[y].agg(["mean", "min", "max"]).sort_index()
        colour = SEQUENCE_COLOURS[index % len(SEQUENCE_COLOURS)]
        marker = SEQUENCE_MARKERS[index % len(SEQUENCE_MARKERS)]
        ax.plot(summary.index, summary["mean"], color=colour, marker=marker, markersize=4, linestyle=linestyle,
                linewidth=1.5, label=f"{label_prefix}{_format_level(level)}" if label else None)
        if (summary["max"] > summary["min"]).any():
            ax.fill_between(summary.index, summary["min"], summary["max"], color=colour, alpha=0.09, linewidth=0)


def _format_level(level: Any) -> str:
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return f"{level:g}" if isinstance(level, (float, np.floating)) else str(level)


def clustering_vs_alpha(results: pd.DataFrame, model: str = "absae") -> Any:
    """Figure 2: clustering accuracy (top) and accepted ratio (bottom) against alpha, one line per tau
    (labelled images per prior component, as in the paper: ``tables.tau_per_component``).

    Each trial gives a point per alpha of the evaluation grid (``expand_evaluation_grid``).

    One column per dataset family; lines are means over seeds (and any other hyperparameter),
    bands the range.
    """
    frame = _usable(expand_evaluation_grid(tau_per_component(results), "clustering"),
                    ["alpha", "tau", "clustering_accuracy", "dataset"],
                    "clustering accuracy against alpha")
    frame = frame[frame["model"] == model] if "model" in frame.columns else frame
    if frame.empty:
        raise MissingDataError(f"clustering accuracy against alpha: no {model} trial has reported it yet")
    frame = frame.assign(family=frame["dataset"].map(dataset_family))
    families = sorted(frame["family"].unique())
    with _rc():
        fig = _figure(_width(3.3 * len(families)), 5.2)
        axes = fig.subplots(2, len(families), squeeze=False, sharex="col")
        for col, family in enumerate(families):
            subset = frame[frame["family"] == family]
            _grouped_lines(axes[0][col], subset, "alpha", "clustering_accuracy", "tau", label_prefix="τ = ")
            _grouped_lines(axes[1][col], subset.dropna(subset=["accepted_ratio"]), "alpha", "accepted_ratio", "tau",
                           linestyle="--", label=False)
            axes[0][col].set_title(family)
            axes[0][col].set_ylabel("clustering accuracy")
            axes[1][col].set_ylabel("accepted ratio")
            axes[1][col].set_xlabel("α (acceptance threshold)")
        _share_legend(fig, axes[0])
        fig.suptitle(f"{model_label(model)}: latent-space clustering against α, per supervision τ", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- Figure 3

def relation_accuracy_vs_depth(results: pd.DataFrame, model: str | None = None) -> Any:
    """Figure 3: ReL relation accuracy against relation depth, one line per alpha, a panel per dataset.

    Each trial gives a point per depth and alpha of the evaluation grid (``expand_evaluation_grid``).

    ``model`` restricts to one model (default: every model with a relational learner in the run).
    """
    frame = _usable(expand_evaluation_grid(results, "relations"), ["relation_depth", "relation_accuracy", "alpha",
                                                                   "dataset"], "relation accuracy against depth")
    if model is not None:
        frame = frame[frame["model"] == model]
        if frame.empty:
            raise MissingDataError(f"relation accuracy against depth: no {model} trial has reported it yet")
    frame = frame.assign(family=frame["dataset"].map(dataset_family))
    panels = sorted(frame.groupby(["family", "model"]).groups)
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    with _rc():
        fig = _figure(_width(3.3 * columns), 2.9 * rows + 0.5)
        grid = fig.subplots(rows, columns, squeeze=False)
        axes = grid.ravel()
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, (family, name) in zip(axes, panels):
            subset = frame[(frame["family"] == family) & (frame["model"] == name)]
            _grouped_lines(ax, subset, "relation_depth", "relation_accuracy", "alpha", label_prefix="α = ")
            ax.set_title(f"{family}: {model_label(name)} + ReL")
            ax.set_xlabel("relation depth")
            ax.set_ylabel("relation accuracy")
            depths = sorted(subset["relation_depth"].unique())
            ax.set_xticks([int(depth) for depth in depths])
        _share_legend(fig, axes[: len(panels)])
        fig.suptitle("Relation accuracy against the number of relations applied in sequence", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- progress of trials

def progress_figure(history: pd.DataFrame, results: pd.DataFrame, metrics: Sequence[str] = ("recon_error", "dci"),
                    top: int = 5, select: str = "dci", mode: str = "max") -> Any:
    """Each metric against training step for the ``top`` trials by their last ``select`` value."""
    if history.empty or "step" not in history.columns:
        raise MissingDataError("progress: no trial has reported an evaluation yet")
    ranked = results.dropna(subset=[select]) if select in results.columns else results.iloc[0:0]
    if ranked.empty:
        raise MissingDataError(f"progress: no trial has reported {select} yet")
    ranked = ranked.sort_values(select, ascending=(mode == "min"), kind="stable").head(top)
    key = ["run", "trial_id"] if "run" in ranked.columns and "run" in history.columns else ["trial_id"]
    metrics = [metric for metric in metrics if metric in history.columns and history[metric].notna().any()]
    if not metrics:
        raise MissingDataError("progress: the history holds none of the metrics asked for")
    with _rc():
        fig = _figure(_width(3.6 * len(metrics)), 3.2)
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for index, (_, trial) in enumerate(ranked.iterrows()):
            mask = np.ones(len(history), dtype=bool)
            for column in key:
                mask &= (history[column] == trial[column]).fillna(False).to_numpy()
            steps = history[mask].sort_values("step")
            colour = SEQUENCE_COLOURS[index % len(SEQUENCE_COLOURS)]
            label = f"{model_label(trial.get('model', ''))} {trial['trial_id']}"
            for ax, metric in zip(axes, metrics):
                ax.plot(steps["step"], steps[metric], color=colour, marker=SEQUENCE_MARKERS[index % 8],
                        markersize=3, linewidth=1.3, label=label)
        for ax, metric in zip(axes, metrics):
            ax.set_xlabel("training step")
            ax.set_ylabel(_label(metric))
        _share_legend(fig, axes, right=True)
        fig.suptitle(f"Progress of the {len(ranked)} best trials by {select}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- image grids

def image_grid_figure(grid: np.ndarray, title: str | None = None, row_labels: Sequence[str] | None = None,
                      col_labels: Sequence[str] | None = None, dpi: float = 100.0, scale: float = 1.5) -> Any:
    """Show a uint8 image grid ([H, W] or [H, W, 3]) at ``scale`` x its pixel size, with labels.

    ``row_labels`` / ``col_labels`` name the grid's rows / columns of tiles (tiles of equal size).
    """
    grid = np.asarray(grid)
    if grid.dtype != np.uint8 or grid.ndim not in (2, 3) or (grid.ndim == 3 and grid.shape[2] not in (1, 3, 4)):
        raise ValueError(f"grid has dtype {grid.dtype} and shape {grid.shape}; expected uint8 [H, W] or [H, W, 3]")
    if grid.ndim == 3 and grid.shape[2] == 1:
        grid = grid[:, :, 0]
    height, width = grid.shape[:2]
    margin_left = 1.3 if row_labels else 0.1
    figure_width = width * scale / dpi + margin_left
    if title:
        # a narrow grid (one column of prior means) must not clip its title: wrap it to the figure
        title = textwrap.fill(title, width=max(16, int(figure_width * 72 / (_RC["axes.titlesize"] * 0.6))))
    with _rc():
        margin_top = (0.1 + 0.25 * (title.count("\n") + 1) if title else 0.1) + (0.35 if col_labels else 0.0)
        fig = _figure(figure_width, height * scale / dpi + margin_top)
        fig.set_dpi(dpi)
        ax = fig.add_subplot()
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        if col_labels:
            columns = len(col_labels)
            ax.set_xticks([(index + 0.5) * width / columns for index in range(columns)])
            ax.set_xticklabels(list(col_labels))
            ax.tick_params(axis="x", length=0, top=True, labeltop=True, bottom=False, labelbottom=False)
        else:
            ax.set_xticks([])
        ax.grid(False)
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_visible(False)
        if row_labels:
            rows = len(row_labels)
            ax.set_yticks([(index + 0.5) * height / rows for index in range(rows)])
            ax.set_yticklabels(list(row_labels))
            ax.tick_params(axis="y", length=0)
        else:
            ax.set_yticks([])
        if title:
            ax.set_title(title)
    return fig


def load_trial_for_images(checkpoint: str, device: str = "cpu") -> TrialImages:
    """The image grids of a trial's checkpoint (``analysis.checkpoints.read_trial_images``)."""
    return read_trial_images(checkpoint, device=device)


def _loaded(trial: Any, **sizes: int) -> TrialImages:
    return trial if isinstance(trial, TrialImages) else read_trial_images(trial, **sizes)


def reconstruction_figure(trial: Any, n: int = 8, seed: int = 0) -> Any:
    """Figures 6-8 (left): ``n`` test images and their reconstructions. ``trial``: a checkpoint path,
    the ``(config, model, dataset)`` of ``trainables.load_trial`` or a ``TrialImages``."""
    images = _loaded(trial, reconstructions=n, seed=seed)
    return image_grid_figure(images.reconstructions,
                             title=f"{model_label(images.model)} on {images.dataset}: reconstructions",
                             row_labels=["input", "reconstruction"])


def prior_means_figure(trial: Any, max_images: int = 64) -> Any:
    """Figures 6-8 (right): the decoded mean of each prior mixture component (AbsAE / M-AE)."""
    images = _loaded(trial, max_prior_means=max_images)
    if images.prior_means is None:
        raise MissingDataError(f"prior means: {images.model} has no mixture prior")
    return image_grid_figure(images.prior_means,
                             title=f"{model_label(images.model)} on {images.dataset}: decoded prior means")


def relation_figure(trial: Any, n: int = 4, seed: int = 0) -> Any:
    """Figures 9-12: inputs, reconstructions and each learned relation applied once (AbsAE / M-AE);
    for HWF's binary relations the two operands a, b and each of a + b, a - b, a x b (Figure 9)."""
    images = _loaded(trial, relation_images=n, seed=seed)
    if images.relations is None:
        raise MissingDataError(f"relation grid: {images.model} has no relational learner")
    # one row per test image (per pair for a binary ReL); columns: the input and its reconstruction
    # (the two operands a, b), then each relation applied once
    operands = ["a", "b"] if images.relation_arity == 2 else ["input", "reconstruction"]
    labels = [*operands, *images.relation_names]
    return image_grid_figure(images.relations,
                             title=f"{model_label(images.model)} + ReL on {images.dataset}: relations",
                             col_labels=labels)


def save_figure(fig: Any, path_without_suffix: str, formats: Sequence[str] = ("png", "pdf")) -> list[str]:
    """Save ``fig`` as ``<path>.png`` and ``<path>.pdf``; returns the paths written."""
    written = []
    for suffix in formats:
        target = f"{path_without_suffix}.{suffix}"
        fig.savefig(target, dpi=150 if suffix == "png" else None)
        written.append(target)
    return written


FIGURE_NAMES: Mapping[str, str] = {
    "tradeoff": "Figure 5: disentanglement vs reconstruction, Pareto frontier per model",
    "dci_vs_beta": "DCI against β (seed spread)",
    "clustering_vs_alpha": "Figure 2: clustering accuracy and accepted ratio against α per τ",
    "relations_vs_depth": "Figure 3: relation accuracy against depth",
    "progress": "Progress of the best trials",
}


def udr_vs_metric(results: pd.DataFrame, udr_frame: pd.DataFrame, metric: str = "dci") -> Any:
    """UDR (Duan et al.) against a supervised metric, one point per trial, coloured by model."""
    from analysis.udr import udr_vs_metric as udr_correlation

    merged = results.merge(udr_frame[["trial_id", "udr"]], on="trial_id")
    merged = _usable(merged, ["udr", metric], "UDR against " + metric)
    with _rc():
        fig = _figure(_width(4.0), 3.5)
        ax = fig.add_subplot()
        for index, model in enumerate(_models(merged)):
            colour, marker = model_style(model, index)
            part = merged[merged["model"] == model]
            ax.scatter(part["udr"], part[metric], color=colour, marker=marker, label=model_label(model))
        ax.set_xlabel("UDR (unsupervised)")
        ax.set_ylabel(_label(metric))
        correlation = udr_correlation(results, udr_frame, metric)
        if correlation["trials"] >= 3:
            ax.set_title(f"Spearman ρ = {correlation['spearman']:.2f} over {int(correlation['trials'])} trials",
                         fontsize="medium")
        ax.legend()
    return fig
