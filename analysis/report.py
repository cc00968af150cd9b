"""``analyze``: every figure, the frontier, the tables and a self-contained HTML report for runs.

Works on a finished, partial or still-running sweep: whatever has no data yet is listed under
"What is missing" in the report (and returned in ``AnalysisOutput.missing``) instead of failing.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from analysis import plots, tables
from analysis.pareto import DEFAULT_OBJECTIVES, hypervolume, pareto_front
from analysis.results import PathLike, load_history, load_results
from weakdis.environment import read_environment
from weakdis.errors import WeakdisError

SWEEP_FILE = "sweep.yaml"
FRONTIER_FILE = "frontier.csv"
REPORT_FILE = "report.html"
UDR_FILE = "udr.csv"
# the supervised metrics UDR is compared with. Duan et al. compare with DCI's disentanglement score
# (disentanglement_lib's), not with the mean of D, C and I that the papers call DCI.
UDR_METRICS = {"dci": "DCI", "dci_disentanglement": "DCI disentanglement (Duan et al.'s)", "mig": "MIG"}
FRONTIER_COLUMNS = ("run", "trial_id", "model", "dataset", "seed", "beta", "latent_dim", "tau", "alpha", "lr",
                    "steps", "step", "status", "recon_error", "dci", "mig", "sap", "clustering_accuracy",
                    "accepted_ratio", "relation_accuracy", "checkpoint")


@dataclass
class AnalysisOutput:
    """What ``analyze`` wrote: paths by name, and the notes on what the runs lack."""

    out_dir: Path
    report: Path
    frontier: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    udr: pd.DataFrame | None = None
    udr_correlation: dict[str, float] = field(default_factory=dict)   # analysis.udr.udr_vs_metric's, with DCI
    # the same with every supervised metric of UDR_METRICS that the results have, DCI included
    udr_correlations: dict[str, dict[str, float]] = field(default_factory=dict)


def default_out_dir(run_dirs: Sequence[PathLike]) -> Path:
    """``<run>/analysis`` for one run; ``./weakdis-out/analysis`` for several."""
    if len(run_dirs) == 1:
        return Path(os.fspath(run_dirs[0])).expanduser() / "analysis"
    return Path("weakdis-out") / "analysis"


def sweep_objectives(run_dirs: Sequence[PathLike]) -> dict[str, str] | None:
    """The objectives the sweep optimised (its ``sweep.yaml``), when it names two or more."""
    import yaml

    for run_dir in run_dirs:
        path = Path(os.fspath(run_dir)).expanduser() / SWEEP_FILE
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        objectives = data.get("objectives") if isinstance(data, Mapping) else None
        if isinstance(objectives, Mapping) and len(objectives) >= 2 \
                and all(sense in ("min", "max") for sense in objectives.values()):
            return {str(name): str(sense) for name, sense in objectives.items()}
    return None


def frontier(results: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """The per-model Pareto frontier of the completed trials, by model, best first by the first objective."""
    completed = tables.completed_trials(results)
    usable = [name for name in objectives if name in completed.columns]
    if len(usable) != len(objectives) or completed.empty:
        front = completed.iloc[0:0]
    else:
        by = ["run", "model"] if "run" in completed.columns and completed["run"].nunique() > 1 else "model"
        front = pareto_front(completed, objectives, by=by)
    first, sense = next(iter(objectives.items()))
    columns = [column for column in (*FRONTIER_COLUMNS, *objectives) if column in front.columns]
    columns = list(dict.fromkeys(columns))
    if len(front):  # each model's trials, best first by the first objective
        front = front.sort_values(["model", first], ascending=[True, sense == "min"], kind="stable")
    return front[columns].reset_index(drop=True)


def hypervolumes(results: pd.DataFrame, objectives: Mapping[str, str] = DEFAULT_OBJECTIVES) -> pd.DataFrame:
    """Each model's hypervolume against a common reference: every objective's worst completed value.

    Larger is better; comparable between models of one run (the reference moves with the run).
    """
    completed = tables.completed_trials(results)
    names = list(objectives)
    if completed.empty or any(name not in completed.columns for name in names):
        return pd.DataFrame(columns=["model", "trials", "front_size", "hypervolume"])
    usable = completed.dropna(subset=names)
    if usable.empty:
        return pd.DataFrame(columns=["model", "trials", "front_size", "hypervolume"])
    reference = {name: float(usable[name].max() if sense == "min" else usable[name].min())
                 for name, sense in objectives.items()}
    rows = []
    for model, group in usable.groupby("model", sort=True):
        front = pareto_front(group, objectives, by=None)
        rows.append({"model": model, "trials": len(group), "front_size": len(front),
                     "hypervolume": hypervolume(front, reference, objectives)})
    table = pd.DataFrame(rows)
    table.attrs["reference"] = reference
    return table


def _png_base64(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _status_notes(results: pd.DataFrame) -> tuple[dict[str, int], list[str]]:
    counts = {status: int((results["status"] == status).sum()) for status in
              ("finished", "stopped_early", "failed", "running", "pending")}
    notes = []
    if counts["pending"] or counts["running"]:
        notes.append(f"the sweep is not complete: {counts['running']} trial(s) running or paused, "
                     f"{counts['pending']} pending; figures and tables use the "
                     f"{counts['finished'] + counts['stopped_early']} finished or stopped trial(s)")
    if counts["finished"] + counts["stopped_early"] == 0:
        notes.append("no trial has finished yet: figures and tables use the last evaluation of running "
                     "and failed trials")
    if counts["failed"]:
        notes.append(f"{counts['failed']} trial(s) failed (their errors are listed under Status)")
    return counts, notes


_ENVIRONMENT_KEYS = ("device", "gpu", "cpu", "cpu_id", "cpu_capability", "torch", "torch_threads")


def _trial_environments(results: pd.DataFrame) -> pd.DataFrame:
    """How many trials ran on each set-up, from the trials' ``environment.json`` (an entry per start
    or resume; a trial resumed elsewhere counts once for each set-up)."""
    counts: dict[tuple, int] = {}
    for trial_dir in results.get("trial_dir", pd.Series(dtype=object)).dropna():
        try:
            entries = read_environment(trial_dir)
        except (OSError, ValueError):
            continue              # a damaged record was warned about when it was written
        setups = {tuple(str(entry.get(key, "")) for key in _ENVIRONMENT_KEYS) for entry in entries
                  if isinstance(entry, dict)}
        for setup in setups:
            counts[setup] = counts.get(setup, 0) + 1
    frame = pd.DataFrame([(*setup, n) for setup, n in counts.items()], columns=[*_ENVIRONMENT_KEYS, "trials"])
    return frame.loc[:, [c for c in frame.columns if c == "trials" or (frame[c] != "").any()]]


def _best_trials(results: pd.DataFrame, objectives: Mapping[str, str], top: int = 10) -> pd.DataFrame:
    first, sense = next(iter(objectives.items()))
    if first not in results.columns:
        return results.iloc[0:0]
    ranked = results.dropna(subset=[first]).sort_values(first, ascending=(sense == "min"), kind="stable").head(top)
    columns = [column for column in ("run", "trial_id", "status", "model", "dataset", "seed", "beta", "latent_dim",
                                     "tau", "alpha", "lr", "step", "recon_error", "dci", "mig", "sap",
                                     "clustering_accuracy", "relation_accuracy", "train_seconds")
               if column in ranked.columns and (column not in ("run",) or ranked["run"].nunique() > 1)]
    return ranked[columns]


def _html_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A table that scrolls sideways inside the page when it is wider than the text, with every
    missing value shown as "–" (nullable integer columns included, which pandas prints as <NA>)."""
    if frame.empty:
        return "<p><em>(empty)</em></p>"
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_extension_array_dtype(values.dtype) and pd.api.types.is_numeric_dtype(values.dtype):
            frame[column] = values.astype("float64")
        elif values.dtype == object:
            frame[column] = values.map(lambda value: "–" if value is pd.NA or value is None else value)
    table = frame.to_html(index=False, na_rep="–", float_format=lambda value: f"{value:.{digits}g}",
                          classes="data", border=0, escape=True)
    return f"<div class='table-wrap'>{table}</div>"


# Columns that identify a row: never folded into the "every row" note.
_IDENTITY_COLUMNS = ("run", "trial_id", "model", "status")


def _fold_constant_columns(frame: pd.DataFrame, keep: Iterable[str] = ()) -> tuple[pd.DataFrame, str]:
    """Drop the columns that hold one value in every row (of two or more rows) and say them once:
    ``(narrower frame, "Every row: dataset dsprites:v2, seed 0.")``; identity columns and ``keep``
    stay."""
    if len(frame) < 2:
        return frame, ""
    keep = set(_IDENTITY_COLUMNS) | set(keep)
    constant = [column for column in frame.columns if column not in keep
                and frame[column].notna().all() and frame[column].astype(str).nunique() == 1]
    if not constant:
        return frame, ""

    def shown(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    note = "Every row: " + ", ".join(f"{column} {shown(frame[column].iloc[0])}" for column in constant) + "."
    return frame.drop(columns=constant), note


def _folded_table(frame: pd.DataFrame, keep: Iterable[str] = ()) -> str:
    narrow, note = _fold_constant_columns(frame, keep)
    return (f"<p class='note'>{html.escape(note)}</p>" if note else "") + _html_table(narrow)


def _image_trials(results: pd.DataFrame, select: str, limit_per_model: int) -> list[pd.Series]:
    if "checkpoint" not in results.columns:
        return []
    candidates = tables.completed_trials(results).dropna(subset=["checkpoint"])
    if select in candidates.columns:
        candidates = candidates.sort_values(select, ascending=False, kind="stable", na_position="last")
    chosen = []
    for _, group in candidates.groupby("model", sort=True):
        chosen.extend(row for _, row in group.head(limit_per_model).iterrows())
    return chosen


def analyze(run_dirs: PathLike | Iterable[PathLike], out_dir: PathLike | None = None, *, images: bool = True,
            image_trials_per_model: int = 1, formats: Sequence[str] = ("png", "pdf"),
            objectives: Mapping[str, str] | None = None, log: Callable[[str], None] | None = None,
            udr: bool = True) -> AnalysisOutput:
    """Write figures (PNG and PDF), ``frontier.csv``, the tables and ``report.html`` for one or more runs.

    ``objectives`` for the frontier default to the sweep's own (``sweep.yaml``) or else
    ``{"recon_error": "min", "dci": "max"}``. ``images``: also decode image grids from the best
    checkpoint of each model (needs the trial's dataset, regenerated into the cache if absent).
    ``udr``: rank the finished trials by UDR (``analysis.udr``; needs trials that differ only in seed
    and their checkpoints) beside DCI, write ``udr.csv`` and the ``udr_vs_dci`` figure.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    run_dirs = list(run_dirs)
    results = load_results(run_dirs)
    history = load_history(run_dirs)
    if results.empty:
        raise WeakdisError(f"{', '.join(map(str, run_dirs))}: the run holds no trials yet; "
                           "expected at least one trial started by `weakdis sweep`")
    say = log or (lambda message: None)
    out = Path(os.fspath(out_dir)).expanduser() if out_dir is not None else default_out_dir(run_dirs)
    if out.exists() and not out.is_dir():
        raise WeakdisError(f"--out {out}: is a file; expected a directory to write the analysis into")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    objectives = dict(objectives or sweep_objectives(run_dirs) or DEFAULT_OBJECTIVES)
    counts, missing = _status_notes(results)

    front = frontier(results, objectives)
    frontier_path = out / FRONTIER_FILE
    front.to_csv(frontier_path, index=False)
    if front.empty:
        missing.append(f"frontier: no completed trial has reported {' and '.join(objectives)} yet")
    say(f"wrote {frontier_path} ({len(front)} trials on the frontier)")

    output = AnalysisOutput(out_dir=out, report=out / REPORT_FILE, frontier=frontier_path, missing=missing,
                            status_counts=counts)
    embedded: list[tuple[str, str, str]] = []  # (name, caption, base64 png)
    builders: dict[str, Callable[[], Any]] = {
        "tradeoff": lambda: plots.tradeoff_grid(results),
        "dci_vs_beta": lambda: plots.score_vs_beta(results, "dci"),
        "clustering_vs_alpha": lambda: plots.clustering_vs_alpha(results),
        "relations_vs_depth": lambda: plots.relation_accuracy_vs_depth(results),
        "progress": lambda: plots.progress_figure(history, results, metrics=list(objectives)[:2] or ("dci",),
                                                  select=next(iter(objectives)),
                                                  mode=next(iter(objectives.values()))),
    }
    for name, build in builders.items():
        try:
            fig = build()
        except plots.MissingDataError as error:
            missing.append(f"figure {name}: {error}")
            continue
        output.figures[name] = [Path(path) for path in plots.save_figure(fig, str(out / "figures" / name), formats)]
        embedded.append((name, plots.FIGURE_NAMES[name], _png_base64(fig)))
        say(f"wrote {out / 'figures' / name}.{{{','.join(formats)}}}")

    image_sections: list[tuple[str, str, str]] = []
    if images:
        image_sections = _image_grids(results, out, formats, image_trials_per_model, missing, output, say)
    else:
        missing.append("image grids: skipped (--no-images)")

    udr_section = None
    if udr:
        udr_section = _udr_ranking(results, out, formats, missing, output, say)
    else:
        missing.append("UDR ranking: skipped (--no-udr)")

    written = tables.write_tables(results, out / "tables")
    output.tables = {name: out / "tables" / f"{name}.md" for name in written}
    say(f"wrote {len(written)} tables to {out / 'tables'}")

    output.report.write_text(_render_html(run_dirs, results, history, objectives, front, counts, missing,
                                          embedded, image_sections, written, udr_section))
    say(f"wrote {output.report}")
    return output


def udr_sentence(correlations: Mapping[str, Mapping[str, float]]) -> str:
    """The report's and the command line's line on ``analysis.udr.udr_vs_metric``'s results:
    ``correlations[metric]`` for DCI and the other metrics of UDR_METRICS the results have."""
    dci = correlations["dci"]
    sentence = f"Spearman correlation of UDR and DCI over {int(dci['trials'])} trials: {dci['spearman']:.3f}"
    extra = [f"{UDR_METRICS[metric]} {result['spearman']:.3f}" for metric, result in correlations.items()
             if metric != "dci" and metric in UDR_METRICS]
    return sentence + (f"; with {', '.join(extra)}" if extra else "")


def _udr_ranking(results: pd.DataFrame, out: Path, formats: Sequence[str], missing: list[str],
                 output: AnalysisOutput, say: Callable[[str], None]) -> tuple[pd.DataFrame, str, str] | None:
    """UDR of the finished trials beside their DCI (udr.csv, figure udr_vs_dci): (table, sentence, png)."""
    from analysis.udr import hyperparameter_groups, udr as udr_frame, udr_vs_metric

    if not {"status", "checkpoint", "dci"} <= set(results.columns):
        missing.append("UDR ranking: the results have no status, checkpoint or dci column")
        return None
    finished = results[results["status"].isin(["finished", "stopped_early"]) & results["checkpoint"].notna()]
    if finished.empty or hyperparameter_groups(finished).value_counts().max() < 2:
        missing.append("UDR ranking: no two finished trials with checkpoints share hyperparameters and differ "
                       "only in seed (list several seeds: in the sweep config)")
        return None
    try:
        scores = udr_frame(finished)
    except (WeakdisError, OSError, RuntimeError, ValueError, KeyError) as error:
        missing.append(f"UDR ranking: cannot encode the trials' test images ({' '.join(str(error).split())})")
        return None
    metrics = [m for m in UDR_METRICS if m in finished.columns]
    columns = [c for c in ("trial_id", "model", "beta", "seed", *metrics) if c in finished.columns]
    table = finished[columns].merge(scores, on="trial_id")
    table["dci_rank"] = table["dci"].rank(ascending=False, method="min")
    table = table.sort_values(["udr_rank", "dci_rank"]).drop(columns="group").reset_index(drop=True)
    table.to_csv(out / UDR_FILE, index=False)
    output.udr = table
    output.udr_correlations = {metric: udr_vs_metric(finished, scores, metric) for metric in metrics}
    output.udr_correlation = output.udr_correlations["dci"]
    sentence = udr_sentence(output.udr_correlations)
    say(f"wrote {out / UDR_FILE} ({sentence})")
    try:
        fig = plots.udr_vs_metric(finished, scores, "dci")
    except plots.MissingDataError as error:
        missing.append(f"figure udr_vs_dci: {error}")
        return table, sentence, ""
    output.figures["udr_vs_dci"] = [Path(path) for path in
                                    plots.save_figure(fig, str(out / "figures" / "udr_vs_dci"), formats)]
    say(f"wrote {out / 'figures' / 'udr_vs_dci'}.{{{','.join(formats)}}}")
    return table, sentence, _png_base64(fig)


def _image_grids(results: pd.DataFrame, out: Path, formats: Sequence[str], per_model: int, missing: list[str],
                 output: AnalysisOutput, say: Callable[[str], None]) -> list[tuple[str, str, str]]:
    sections: list[tuple[str, str, str]] = []
    trials = _image_trials(results, "dci", per_model)
    if not trials:
        missing.append("image grids: no completed trial has a checkpoint")
        return sections
    for trial in trials:
        label = f"{trial['model']}_{trial['trial_id']}"
        try:
            loaded = plots.load_trial_for_images(str(trial["checkpoint"]))
        except (WeakdisError, ImportError, OSError, RuntimeError, ValueError, KeyError) as error:
            missing.append(f"image grids of trial {trial['trial_id']}: cannot load its checkpoint "
                           f"{trial['checkpoint']} ({' '.join(str(error).split())})")
            continue
        for kind, build in (("reconstructions", plots.reconstruction_figure), ("prior_means", plots.prior_means_figure),
                            ("relations", plots.relation_figure)):
            try:
                fig = build(loaded)
            except plots.MissingDataError:
                continue  # a VAE has no prior or relations: nothing is missing
            except (WeakdisError, RuntimeError, ValueError) as error:
                missing.append(f"{kind} of trial {trial['trial_id']}: {' '.join(str(error).split())}")
                continue
            name = f"{kind}_{label}"
            output.figures[name] = [Path(path) for path in plots.save_figure(fig, str(out / "figures" / name), formats)]
            sections.append((name, f"{kind.replace('_', ' ')}: {tables.model_label(trial['model'])}, trial "
                                   f"{trial['trial_id']} (dci {trial.get('dci', float('nan')):.3f})", _png_base64(fig)))
            say(f"wrote {out / 'figures' / name}.{{{','.join(formats)}}}")
    return sections


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table.data { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
table.data th, table.data td { padding: .25em .6em; border-bottom: 1px solid #e5e5e5; text-align: right; }
table.data th { background: #f5f5f5; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; } .missing li { color: #8a4b00; }
.table-wrap { overflow-x: auto; max-width: 100%; } p.note { font-size: .9em; color: #555; margin-bottom: 0; }
p.warning { color: #8a4b00; }
nav.toc { font-size: .9em; background: #f7f7f7; padding: .5em .8em; } nav.toc a { margin-right: 1em; }
"""

_SECTIONS = (("missing", "What is missing"), ("configuration", "Configuration"), ("status", "Status"),
             ("best", "Best trials"), ("frontier", "Pareto frontier"), ("figures", "Figures"),
             ("images", "Image grids"), ("udr", "UDR ranking"), ("tables", "Tables"))


def _render_html(run_dirs: Sequence[PathLike], results: pd.DataFrame, history: pd.DataFrame,
                 objectives: Mapping[str, str], front: pd.DataFrame, counts: Mapping[str, int],
                 missing: Sequence[str], figures: Sequence[tuple[str, str, str]],
                 image_sections: Sequence[tuple[str, str, str]], written_tables: Mapping[str, pd.DataFrame],
                 udr_section: tuple[pd.DataFrame, str, str] | None = None) -> str:
    escape = html.escape
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>weakdis report: {escape(', '.join(Path(os.fspath(d)).name for d in run_dirs))}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>weakdis sweep report</h1><p>Runs: {', '.join('<code>' + escape(str(d)) + '</code>' for d in run_dirs)}"
             f"<br>Generated {escape(_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))} from "
             f"{len(results)} trials and {len(history)} evaluations. Frontier objectives: "
             f"{escape(', '.join(f'{name} ({sense})' for name, sense in objectives.items()))}.</p>"]
    parts.append("<nav class='toc'>Contents: " + "".join(
        f"<a href='#{anchor}'>{escape(title)}</a>" for anchor, title in _SECTIONS
        if (anchor != "images" or image_sections) and (anchor != "udr" or udr_section)) + "</nav>")

    parts.append("<h2 id='missing'>What is missing</h2>")
    if missing:
        parts.append("<ul class='missing'>" + "".join(f"<li>{escape(note)}</li>" for note in missing) + "</ul>")
    else:
        parts.append("<p>Nothing: every trial finished and every figure, image grid and table has data.</p>")

    parts.append("<h2 id='configuration'>Configuration</h2>")
    for run_dir in run_dirs:
        path = Path(os.fspath(run_dir)).expanduser() / SWEEP_FILE
        if path.exists():
            parts.append(f"<p><code>{escape(str(path))}</code></p><pre>{escape(path.read_text())}</pre>")
        else:
            parts.append(f"<p><code>{escape(str(path))}</code> is absent; the trials' own configurations:</p>")
            config_columns = [c for c in ("model", "dataset", "steps", "batch_size", "lr", "latent_dim", "beta",
                                          "tau", "alpha", "seed")
                              if c in results.columns and results[c].notna().any()]
            summary = pd.DataFrame({
                "key": config_columns,
                "values": [", ".join(sorted({str(v) for v in results[c].dropna()})[:12]) for c in config_columns],
            })
            parts.append(_html_table(summary))

    parts.append("<h2 id='status'>Status</h2>")
    parts.append(_html_table(pd.DataFrame([counts])))
    failed = results[results["status"] == "failed"]
    if len(failed):
        parts.append(_html_table(failed[[c for c in ("run", "trial_id", "model", "step", "error")
                                         if c in failed.columns]]))

    environments = _trial_environments(results)
    if len(environments):
        parts.append("<p>Where the trials ran (their <code>environment.json</code>):</p>")
        parts.append(_html_table(environments))
        if len(environments) > 1:
            parts.append("<p class='warning'>The trials ran on more than one set-up. The same seed can give "
                         "different numbers on a different device, torch version, thread count or CPU "
                         "instruction set (docs/training.md, \"Determinism and resume\").</p>")

    parts.append(f"<h2 id='best'>Best trials by {escape(next(iter(objectives)))}</h2>")
    parts.append(_folded_table(_best_trials(results, objectives), keep=objectives))
    progress = [item for item in figures if item[0] == "progress"]
    for name, caption, data in progress:
        parts.append(_figure_html(caption, data))

    parts.append("<h2 id='frontier'>Pareto frontier per model</h2>")
    parts.append(f"<p>Written to <code>{FRONTIER_FILE}</code>: the completed trials that no other trial of the same "
                 "model dominates.</p>")
    parts.append(_folded_table(front.drop(columns=[c for c in ("checkpoint",) if c in front.columns]),
                               keep=objectives))
    volumes = hypervolumes(results, objectives)
    if len(volumes):
        reference = ", ".join(f"{name} = {value:.4g}" for name, value in volumes.attrs["reference"].items())
        parts.append(f"<p>Hypervolume of each model's frontier against the worst completed value of each objective "
                     f"({escape(reference)}); larger is better.</p>")
        parts.append(_html_table(volumes))

    parts.append("<h2 id='figures'>Figures</h2>")
    for name, caption, data in figures:
        if name != "progress":
            parts.append(_figure_html(caption, data))
    if image_sections:
        parts.append("<h2 id='images'>Image grids</h2>")
        for _, caption, data in image_sections:
            parts.append(_figure_html(caption, data))

    if udr_section:
        table, sentence, data = udr_section
        parts.append("<h2 id='udr'>UDR ranking</h2>")
        parts.append(f"<p>Unsupervised Disentanglement Ranking (Duan et al. 2020): each trial scored by how well "
                     f"its representation agrees with those of its other seeds, without labels; written to "
                     f"<code>{UDR_FILE}</code>, best first, beside the DCI ranking. {escape(sentence)}.</p>")
        parts.append(_html_table(table, digits=3))
        if data:
            parts.append(_figure_html("UDR against DCI, one point per trial", data))

    parts.append("<h2 id='tables'>Tables</h2><p>Run values beside the papers' published numbers (– where absent).</p>")
    for name, table in written_tables.items():
        parts.append(f"<h3>{escape(tables.TABLES[name][0])}</h3>")
        parts.append(_html_table(table, digits=3))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure_html(caption: str, data: str) -> str:
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
