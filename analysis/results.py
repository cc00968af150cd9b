"""Sweep results as tidy pandas DataFrames, read straight from a Ray Tune experiment directory.

A run directory is a Tune experiment directory (``<storage>/<name>``): ``experiment_state-*.json``
(the controller's snapshot: each trial's status, config and directory), one directory per trial
holding ``params.json`` (the config), ``result.json`` (one JSON line per ``tune.report``: the metrics
at top level, the config under ``"config"``), ``progress.csv`` and, for a failed trial,
``error.txt``. Nothing here imports Ray: the files are read as they lie.

``collect_results`` turns them into one row per trial (its last evaluation) and one row per
evaluation; ``write_results`` stores them as ``results.parquet``, ``results.csv`` and
``history.parquet``; ``load_results`` / ``load_history`` read those back (rebuilding them in
memory when they are missing or older than the trials' own files) and concatenate several runs
with a ``run`` column.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from weakdis.errors import WeakdisError
from weakdis.files import replaced_atomically
from weakdis.registry import METRIC_NAMES, METRICS, metrics_placed

PathLike = Union[str, os.PathLike]

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
HISTORY_PARQUET = "history.parquet"
EXPERIMENT_STATE_GLOB = "experiment_state-*.json"

STATUSES = ("finished", "failed", "stopped_early", "running", "pending")

# Every registered metric column (weakdis.registry.METRICS), in registry order.
METRIC_COLUMNS = METRIC_NAMES
METRIC_DTYPES = {column.name: column.dtype for column in METRICS}
# Trial config keys whose type is fixed (trainables.config.TrialConfig); others are inferred.
INTEGER_CONFIG_KEYS = (
    "steps", "batch_size", "latent_dim", "tau", "warmup_steps", "eval_every", "eval_points", "seed", "data_seed",
    "data_images", "rel_batch_size", "prior_refit_every", "relation_depth", "checkpoint_every",
)
FLOAT_CONFIG_KEYS = ("lr", "beta", "gamma", "alpha", "noise_level", "rel_lr", "disc_lr")
TEXT_CONFIG_KEYS = ("model", "dataset", "device", "precision", "data_path", "noise", "dci_method", "extra",
                    "tau_sampling")
BOOLEAN_CONFIG_KEYS = ("compile",)

# The per-trial table's leading columns, in order (contract first, then the bookkeeping ones). Each
# metric's registry ``placement`` puts it here, so that a new metric never moves an existing column.
RESULT_COLUMNS = (
    "trial_id", "status", "error", "model", "dataset", "seed", "beta", "latent_dim", "tau", "alpha",
    "steps", *metrics_placed("contract"), "train_seconds", *metrics_placed("extra"), "step", "trial_dir",
    "checkpoint", *metrics_placed("appended"),
)
HISTORY_COLUMNS = ("trial_id", "step", "train_seconds", *metrics_placed("contract"), *metrics_placed("extra"),
                   "training_iteration", "time_total_s", *metrics_placed("appended"))

# What Tune adds to every report; kept out of the tables (time_total_s and training_iteration are
# kept in the history, where they tell the progress of a trial).
_TUNE_BOOKKEEPING = frozenset({
    "timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "trial_id", "date",
    "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
    "iterations_since_restore", "experiment_tag", "training_iteration",
})
# Tune names a trial directory "<trainable>_<trial_id>_<index>_<tag>_<date>"; trial ids are
# "<5 hex>_<5 digits>" from the basic variant generator or 8 hex digits from a searcher.
_TRIAL_ID_IN_DIRNAME = re.compile(r"_([0-9a-f]{5}_[0-9]{5}|[0-9a-f]{8})(?:_|$)")
# A trial that failed for good reports {"weakdis_error": message} last (trainables.tune.FAILED_KEY)
# and ends normally, so that Tune does not retry it: it is a failed trial with that error.
FAILED_REPORT_KEY = "weakdis_error"
_TUNE_STATUS = {"TERMINATED": "finished", "ERROR": "failed", "RUNNING": "running",
                "PAUSED": "running", "PENDING": "pending"}


# ----------------------------------------------------------------------------- reading Tune files

def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The reports of one trial; a half-written last line (a trial still running) is skipped."""
    reports = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return reports
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            reports.append(value)
    return reports


def _read_progress_csv(path: Path) -> list[dict[str, Any]]:
    """Fallback when result.json is absent: progress.csv holds the same metrics, without config."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    return [{key: _parse_csv_value(value) for key, value in row.items() if key} for row in rows]


def _parse_csv_value(text: str | None) -> Any:
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    return text


def _error_message(trial_dir: Path, filename: str | None) -> str:
    """The exception's message on one line, from the last failure recorded in error.txt."""
    path = trial_dir / (filename or "error.txt")
    try:
        text = path.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return "the trial failed; its error.txt is missing"
    # Tune appends a "Failure # n (occurred at ...)" block per failure; the last one counts.
    blocks = text.split("Failure # ")
    lines = [line.rstrip() for line in blocks[-1].splitlines() if line.strip()]
    # The exception line is the last "SomeError: message" line that is not indented (traceback
    # frames and carets are); the message may continue over the following lines.
    start = None
    for index, line in enumerate(lines):
        head = line.split(":", 1)[0]
        if line == line.lstrip() and ":" in line and head.replace(".", "").replace("_", "").isalnum() \
                and (head.endswith("Error") or head.endswith("Exception") or head.endswith("Interrupt")):
            start = index
    if start is None:
        return lines[-1].strip() if lines else "the trial failed; its error.txt is empty"
    message = " ".join(line.strip() for line in lines[start:])
    return message


def _plain(value: Any) -> Any:
    """Tune's JSON encoder writes unpicklable config values as {"_type": ..., "value": ...}."""
    if isinstance(value, Mapping) and "_type" in value and "value" in value:
        return f"<{value['_type']}>"
    if isinstance(value, Mapping):
        return json.dumps({key: _plain(item) for key, item in value.items()}, sort_keys=True)
    if isinstance(value, (list, tuple)):
        return json.dumps([_plain(item) for item in value])
    return value


def _experiment_state(run_dir: Path) -> dict[str, dict[str, Any]] | None:
    """trial_id -> {"status", "config", "relative_logdir", "error_filename", "last_result"}."""
    files = sorted(run_dir.glob(EXPERIMENT_STATE_GLOB))
    if not files:
        return None
    newest = max(files, key=lambda path: path.name)  # Tune names them by timestamp and picks max()
    try:
        state = json.loads(newest.read_text())
        trials: dict[str, dict[str, Any]] = {}
        for trial_json, metadata_json in state["trial_data"]:
            trial = json.loads(trial_json)
            metadata = json.loads(metadata_json)
            trials[trial["trial_id"]] = {
                "status": trial.get("status"),
                "config": trial.get("config") or {},
                "relative_logdir": trial.get("relative_logdir"),
                "error_filename": metadata.get("error_filename"),
                "last_result": metadata.get("last_result") or {},
            }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise WeakdisError(f"{newest}: not a readable Ray Tune experiment state ({type(error).__name__}: {error}); "
              "expected the JSON written by Ray Tune 2.x")
    return trials


def _trial_dirs(run_dir: Path) -> dict[str, Path]:
    """trial_id -> directory, for every subdirectory holding Tune's per-trial files."""
    found: dict[str, Path] = {}
    for child in sorted(run_dir.iterdir()):
        if not child.is_dir() or not ((child / "params.json").exists() or (child / "result.json").exists()):
            continue
        trial_id = _first_report_trial_id(child / "result.json")
        if trial_id is None:
            match = _TRIAL_ID_IN_DIRNAME.search(child.name)
            trial_id = match.group(1) if match else child.name
        found[str(trial_id)] = child
    return found


def _first_report_trial_id(path: Path) -> str | None:
    try:
        with path.open() as handle:
            first = handle.readline()
        return json.loads(first).get("trial_id")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def _is_run_dir(run_dir: Path) -> bool:
    return any(run_dir.glob(EXPERIMENT_STATE_GLOB)) or bool(_trial_dirs(run_dir)) \
        or (run_dir / RESULTS_PARQUET).exists()


def _check_run_dir(run_dir: PathLike) -> Path:
    text = os.fspath(run_dir)
    if "://" in text:
        raise WeakdisError(f"{text}: remote run directories are not read directly; copy the run locally first "
              f"(e.g. `aws s3 sync {text} ./run` or `gsutil -m rsync -r {text} ./run`)")
    path = Path(text).expanduser()
    if not path.exists():
        raise WeakdisError(f"{path}: run directory not found; expected a Ray Tune experiment directory written by "
              "`weakdis sweep`")
    if not path.is_dir():
        raise WeakdisError(f"{path}: is a file; expected a Ray Tune experiment directory written by `weakdis sweep`")
    if not _is_run_dir(path):
        nested = [child for child in sorted(path.iterdir()) if child.is_dir() and _is_run_dir(child)]
        hint = (f"; it contains the run director{'y' if len(nested) == 1 else 'ies'} "
                + ", ".join(str(child) for child in nested[:5])) if nested else ""
        raise WeakdisError(f"{path}: not a sweep run directory (no {EXPERIMENT_STATE_GLOB}, no trial directories with "
              f"params.json / result.json, no {RESULTS_PARQUET}){hint}")
    return path


# ----------------------------------------------------------------------------- building the tables

def _status(tune_status: str | None, reports: list[dict[str, Any]], steps: Any, has_error: bool) -> str:
    if tune_status is None:  # no experiment state mentions the trial: judge from its files
        if has_error:
            return "failed"
        if reports and _reached_steps(reports, steps):
            return "finished"
        return "running" if reports else "pending"
    status = _TUNE_STATUS.get(tune_status, "running")
    if status == "finished" and not _reached_steps(reports, steps):
        return "stopped_early"
    return status


def _reached_steps(reports: list[dict[str, Any]], steps: Any) -> bool:
    if not reports:
        return False
    last_step = reports[-1].get("step")
    if last_step is None or steps is None or _is_missing(steps):
        # Without a step count we cannot tell a stopped trial from a finished one: trust Tune.
        return True
    return float(last_step) >= float(steps)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _metrics_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's own values: metrics, step, train_seconds and any extra numbers the loop sends."""
    return {key: value for key, value in report.items()
            if key not in _TUNE_BOOKKEEPING and not isinstance(value, (dict, list))}


def _deduplicate(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trial restored from a checkpoint re-reports the steps after it: keep the latest of each."""
    by_step: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    for index, report in enumerate(reports):
        key = report.get("step", ("iteration", report.get("training_iteration", index)))
        if key not in by_step:
            order.append(key)
        by_step[key] = report
    return [by_step[key] for key in order]


def _checkpoint(trial_dir: Path | None, reports: list[dict[str, Any]]) -> str | None:
    if trial_dir is None:
        return None
    for report in reversed(reports):
        name = report.get("checkpoint_dir_name")
        if name and (trial_dir / name).is_dir():
            return str(trial_dir / name)
    existing = sorted(trial_dir.glob("checkpoint_*"))
    return str(existing[-1]) if existing else None


def _trial_config_defaults() -> dict[str, Any]:
    """TrialConfig's defaults: a sweep's params.json holds only the keys it set, the trial ran with these."""
    from trainables.config import TrialConfig   # a plain dataclass: imports neither torch nor Ray

    defaults = TrialConfig().to_dict()
    defaults.pop("extra", None)
    return defaults


def collect_results(run_dir: PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Ray Tune experiment directory into ``(results, history)`` DataFrames.

    ``results``: one row per trial (its last evaluation), with the contract's columns (design notes,
    section 6) plus ``raw_dci``, ``raw_mig``, ``raw_sap``, ``step``, ``trial_dir``, ``checkpoint``, every
    other config key (``TrialConfig``'s default where the sweep did not set it) and any other number the
    trial reported. ``history``: one row per evaluation
    (``trial_id``, ``step``, ``train_seconds``, the metrics, ``training_iteration``, ``time_total_s``
    and the trial's config keys). Works on a sweep that is still running or was interrupted.
    """
    path = _check_run_dir(run_dir)
    state = _experiment_state(path)
    dirs = _trial_dirs(path)
    if state is not None:
        # The state knows each trial's directory: it overrides any id guessed from a directory name.
        for trial_id, info in state.items():
            candidate = path / info["relative_logdir"] if info.get("relative_logdir") else None
            if candidate is not None and candidate.is_dir():
                dirs = {key: value for key, value in dirs.items() if value != candidate}
                dirs[trial_id] = candidate
    trial_ids = sorted(set(dirs) | set(state or {}))
    defaults = _trial_config_defaults()

    result_rows: list[dict[str, Any]] = []
    history_rows: list[dict[str, Any]] = []
    for trial_id in trial_ids:
        info = (state or {}).get(trial_id, {})
        trial_dir = dirs.get(trial_id)
        reports: list[dict[str, Any]] = []
        config: dict[str, Any] = {}
        if trial_dir is not None:
            reports = _read_json_lines(trial_dir / "result.json") or _read_progress_csv(trial_dir / "progress.csv")
            params = trial_dir / "params.json"
            if params.exists():
                try:
                    config = json.loads(params.read_text())
                except json.JSONDecodeError:
                    config = {}
        if not config:
            config = dict(info.get("config") or (reports[-1].get("config") if reports else None) or {})
        if not reports and info.get("last_result", {}).get("training_iteration"):
            reports = [info["last_result"]]  # the trial's files are gone; the state still has its last report
        recorded_error = next((str(r[FAILED_REPORT_KEY]) for r in reversed(reports) if r.get(FAILED_REPORT_KEY)), None)
        reports = _deduplicate([r for r in reports if not r.get(FAILED_REPORT_KEY)])
        config = {key: _plain(value) for key, value in {**defaults, **config}.items() if key != "trial_id"}

        has_error = trial_dir is not None and ((trial_dir / (info.get("error_filename") or "error.txt")).exists())
        status = _status(info.get("status"), reports, config.get("steps"), has_error)
        error = _error_message(trial_dir, info.get("error_filename")) if status == "failed" and trial_dir else (
            "the trial failed; its directory is missing" if status == "failed" else None)
        if recorded_error is not None and status != "running":
            status, error = "failed", recorded_error

        for report in reports:
            history_rows.append({
                "trial_id": trial_id, **config, **_metrics_of(report),
                "training_iteration": report.get("training_iteration"),
                "time_total_s": report.get("time_total_s"),
            })
        last = _metrics_of(reports[-1]) if reports else {}
        result_rows.append({
            **config, **last, "trial_id": trial_id, "status": status, "error": error,
            "trial_dir": str(trial_dir) if trial_dir is not None else None,
            "checkpoint": _checkpoint(trial_dir, reports),
        })

    results = _with_schema(pd.DataFrame(result_rows), RESULT_COLUMNS)
    history = _with_schema(pd.DataFrame(history_rows), HISTORY_COLUMNS)
    if len(history):
        history = history.sort_values(["trial_id", "step"], kind="stable", na_position="last").reset_index(drop=True)
    return results, history


def _with_schema(frame: pd.DataFrame, leading: Sequence[str]) -> pd.DataFrame:
    """Contract columns first, in order, each with its dtype; missing ones are all-NA columns."""
    frame = frame.copy()
    for column in leading:
        if column not in frame.columns:
            frame[column] = pd.NA
    ordered = list(leading) + [column for column in frame.columns if column not in leading]
    frame = frame[ordered]
    for column in frame.columns:
        frame[column] = _as_column_dtype(column, frame[column])
    return frame.reset_index(drop=True)


def _as_column_dtype(name: str, column: pd.Series) -> pd.Series:
    if name in METRIC_DTYPES and METRIC_DTYPES[name] != "float64":
        return column.astype(METRIC_DTYPES[name])
    if name in METRIC_DTYPES or name in FLOAT_CONFIG_KEYS or name in ("train_seconds", "time_total_s"):
        return pd.to_numeric(column.astype(object).where(column.notna(), np.nan), errors="coerce").astype("float64")
    if name in INTEGER_CONFIG_KEYS or name in ("step", "training_iteration"):
        return _to_int64(name, column)
    if name in TEXT_CONFIG_KEYS or name in ("trial_id", "status", "error", "trial_dir", "checkpoint", "run"):
        return _to_string(column)
    if name in BOOLEAN_CONFIG_KEYS:
        return column.astype("boolean")
    return _inferred(name, column)


def _to_int64(name: str, column: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(column.astype(object).where(column.notna(), np.nan), errors="coerce")
    whole = numbers.dropna()
    if len(whole) and not np.all(np.equal(np.mod(whole.to_numpy(dtype=float), 1), 0)):
        return numbers.astype("float64")  # a non-integer value: keep it rather than truncate it
    return numbers.astype("Int64")


def _to_string(column: pd.Series) -> pd.Series:
    values = column.astype(object).where(column.notna(), None)
    return values.map(lambda value: value if value is None else str(value)).astype("string")


def _inferred(name: str, column: pd.Series) -> pd.Series:
    present = column.dropna()
    if present.empty:
        return column.astype("float64") if column.dtype != object or column.isna().all() else column
    values = list(present)
    if all(isinstance(value, (bool, np.bool_)) for value in values):
        return column.astype("boolean")
    if all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in values):
        return column.astype("Int64")
    if all(isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
           for value in values):
        return column.astype("float64")
    return _to_string(column)


# ----------------------------------------------------------------------------- files on disk

def write_results(run_dir: PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Collect the run and write ``results.parquet``, ``results.csv`` and ``history.parquet`` into it.

    Called by the sweep runner after a sweep and on resume; returns ``(results, history)``.
    Files are written to a temporary name first and renamed, so a reader never sees half a file.
    """
    path = _check_run_dir(run_dir)
    results, history = collect_results(path)
    with replaced_atomically(path / RESULTS_PARQUET) as temporary:
        results.to_parquet(temporary, index=False)
    with replaced_atomically(path / RESULTS_CSV) as temporary:
        results.to_csv(temporary, index=False)
    with replaced_atomically(path / HISTORY_PARQUET) as temporary:
        history.to_parquet(temporary, index=False)
    return results, history


def _newest_trial_file_mtime(run_dir: Path) -> float:
    newest = 0.0
    for pattern in (EXPERIMENT_STATE_GLOB, "*/result.json", "*/error.txt"):
        for file in run_dir.glob(pattern):
            try:
                newest = max(newest, file.stat().st_mtime)
            except FileNotFoundError:
                pass
    return newest


_TABLES = {"results": (RESULTS_PARQUET, RESULT_COLUMNS), "history": (HISTORY_PARQUET, HISTORY_COLUMNS)}


def _load_one(run_dir: PathLike, table: str) -> pd.DataFrame:
    """The ``table`` ("results" or "history") of one run: its parquet file, or rebuilt from Tune's files."""
    filename, columns = _TABLES[table]
    path = _check_run_dir(run_dir)
    stored = path / filename
    has_tune_files = any(path.glob(EXPERIMENT_STATE_GLOB)) or bool(_trial_dirs(path))
    if stored.exists() and (not has_tune_files or stored.stat().st_mtime >= _newest_trial_file_mtime(path)):
        try:
            frame = pd.read_parquet(stored)
        except Exception as error:  # pyarrow raises ArrowInvalid / OSError for a damaged file
            if not has_tune_files:
                raise WeakdisError(f"{stored}: not a readable parquet file ({' '.join(str(error).split())[:200]}), "
                                   f"and {path} holds no Ray Tune files to rebuild it from")
            # Rebuilt in memory from Tune's own files (as for a missing file); write_results or the
            # next `weakdis sweep --resume` replaces the damaged file.
            results, history = collect_results(path)
            return results if table == "results" else history
        if table == "results":
            frame = _reroot(frame, path)
        return _with_schema(frame, columns)
    if not has_tune_files:
        raise WeakdisError(f"{stored}: missing, and {path} holds no Ray Tune files to rebuild it from")
    results, history = collect_results(path)
    return results if table == "results" else history


def _reroot(frame: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Point trial_dir / checkpoint into ``run_dir`` when the run was collected elsewhere (copied
    from a cluster, or collected in a temporary copy of a remote run) and the stored paths are gone."""
    if "trial_dir" not in frame.columns or not len(frame):
        return frame
    frame = frame.copy()
    trial_dirs, checkpoints = [], []
    for trial_dir, checkpoint in zip(frame["trial_dir"], frame.get("checkpoint", [None] * len(frame))):
        if isinstance(trial_dir, str) and trial_dir and not Path(trial_dir).is_dir() \
                and (run_dir / Path(trial_dir).name).is_dir():
            local = run_dir / Path(trial_dir).name
            if isinstance(checkpoint, str) and checkpoint:
                checkpoint = str(local / Path(checkpoint).name)
            trial_dir = str(local)
        trial_dirs.append(trial_dir)
        checkpoints.append(checkpoint)
    frame["trial_dir"] = trial_dirs
    if "checkpoint" in frame.columns:
        frame["checkpoint"] = checkpoints
    return frame


def _run_labels(paths: Sequence[Path]) -> list[str]:
    names = [path.name or str(path) for path in paths]
    if len(set(names)) == len(names):
        return names
    return [str(path) for path in paths]


def _load_many(run_dirs: PathLike | Iterable[PathLike], table: str) -> pd.DataFrame:
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    paths = [_check_run_dir(run_dir) for run_dir in run_dirs]
    if not paths:
        raise WeakdisError("no run directory given; expected at least one Ray Tune experiment directory")
    frames = []
    for label, path in zip(_run_labels(paths), paths):
        frame = _load_one(path, table)
        frame.insert(0, "run", pd.array([label] * len(frame), dtype="string"))
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return _with_schema(combined, ("run", *_TABLES[table][1]))


def load_results(run_dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """One row per trial for one run directory or several (concatenated, with a ``run`` column).

    Reads ``results.parquet``; rebuilds the table from Tune's files (without writing) when the file
    is missing, damaged (not readable as parquet) or older than the trials' own files, e.g. while a
    sweep is still running. Only JSON, CSV and parquet are read: nothing is unpickled.
    """
    return _load_many(run_dirs, "results")


def load_history(run_dirs: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """One row per evaluation for one run directory or several (with a ``run`` column)."""
    return _load_many(run_dirs, "history")
