"""Run and resume sweeps: Ray start-up, the Tune ``Tuner``, results collection and the summary.

A run lives in ``<storage>/<name>``: Tune's experiment state, one directory per trial, ``sweep.yaml``
(the resolved sweep config, which ``--resume`` reads back) and, once the sweep ends or is resumed,
``results.parquet``, ``results.csv`` and ``history.parquet`` (written by ``analysis.write_results``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import yaml

from search.schema import SweepConfig, check_optuna_storage, load_sweep_config
from search.space import build_searcher, total_trials
from trainables.errors import WeakdisError
from trainables.logs import is_quiet
from weakdis.files import write_text_atomically
from weakdis.registry import PROGRESS_NAMES

SWEEP_FILE = "sweep.yaml"
OPTUNA_FILE = "optuna.db"      # the Optuna studies of a local run: optuna-dashboard sqlite:///<run>/optuna.db
RESULT_FILES = ("results.parquet", "results.csv", "history.parquet")
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "hdfs://")
PROGRESS_METRICS = ("step", *PROGRESS_NAMES)   # weakdis.registry: the columns marked progress=True
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
CLAIM_PREFIX = ".weakdis-claim-"
INTERRUPTED = 130   # the exit status of a sweep stopped by Ctrl-C (128 + SIGINT)

# A function trainable taking the flat trial config, before resources are attached (tests pass one).
FunctionTrainable = Callable[[dict], Any]


@dataclass(frozen=True)
class SweepOutcome:
    run_dir: str              # absolute local path or a remote URI
    num_trials: int
    results: Any = None       # the per-trial pandas DataFrame, when results could be collected
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT): resume with resume_command
    resume_command: str = ""  # the exact `weakdis sweep ... --resume --name NAME` to continue


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def resolve_storage(storage: str) -> str:
    """A remote URI unchanged, a local path made absolute (Tune needs one)."""
    if is_remote(storage):
        return storage.rstrip("/")
    if "://" in storage and not storage.startswith("file://"):
        raise WeakdisError(
            f"storage={storage!r} is invalid; expected a local path, s3://bucket/path or gs://bucket/path"
        )
    return str(Path(storage.removeprefix("file://")).expanduser().resolve())


def default_run_name(config: SweepConfig, now: float | None = None) -> str:
    """``<config name>-<YYYYmmdd-HHMMSS>-<6 random hex>``: unique even when sweeps start in the same
    second (the directory is then created atomically, see :func:`claim_run`)."""
    stamp = time.strftime('%Y%m%d-%H%M%S', time.localtime(now))
    return f"{config.name}-{stamp}-{uuid.uuid4().hex[:6]}"


def check_run_name(name: str) -> str:
    """A run name is one directory name: letters, digits, '.', '_', '-'; no path separator, no '..'."""
    if not isinstance(name, str) or not RUN_NAME_PATTERN.match(name) or ".." in name:
        raise WeakdisError(
            f"--name {name!r} is invalid; expected one directory name of letters, digits, '.', '_' and '-' "
            "(no '/', no '..', at most 200 characters)"
        )
    return name


def join_uri(storage: str, name: str) -> str:
    return f"{storage}/{name}" if is_remote(storage) else str(Path(storage) / name)


def latest_run(storage: str, config_name: str) -> str:
    """The most recently created run of a config (``<name>-<timestamp>[-<suffix>]``) in a local storage."""
    root = Path(storage)
    candidates = sorted(
        (p for p in root.glob(f"{config_name}-*") if (p / SWEEP_FILE).is_file()),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    if not candidates:
        raise WeakdisError(
            f"--resume: no run of config {config_name!r} in storage {storage!r} "
            f"(expected a directory {config_name}-<timestamp> holding {SWEEP_FILE}); pass --name"
        )
    return candidates[-1].name


# -- Ray ----------------------------------------------------------------------------------------------


def start_ray(address: str | None, threads_per_trial: int = 1) -> bool:
    """Connect to ``address`` (e.g. ``auto``) or start a quiet local Ray sized to this machine.
    Returns True when this call initialised Ray (the caller then shuts it down), False when the
    process was already connected (a notebook, a test session).

    Trial processes get ``OMP_NUM_THREADS = threads_per_trial`` (the CPUs each trial is given):
    Ray sets it only when the driver's environment does not, and torch threads beyond a trial's
    share make concurrent trials spin against each other.
    """
    import ray

    # Checkpoint retention forces a state snapshot per checkpoint; Tune warns about it every time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    runtime_env = {"env_vars": {"OMP_NUM_THREADS": str(max(1, threads_per_trial))}}
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=runtime_env)
    else:
        # Ray detects the CPUs itself, honouring cgroup (container) and affinity (Slurm) limits,
        # which os.cpu_count() ignores.
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env=runtime_env)
    return True


@contextlib.contextmanager
def _classic_progress_table() -> Iterator[None]:
    # Tune's newer console output ignores custom reporters; the classic one shows our metric columns.
    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous


# -- Tune pieces --------------------------------------------------------------------------------------


def build_trainable(config: SweepConfig, function: FunctionTrainable | None = None, run_uri: str | None = None):
    """The resource-wrapped trainable: ``trainables.tune.with_trial_resources`` by default; a given
    function (tests) gets the same CPU / GPU request with one worker. Either way a trial that raises
    a WeakdisError (diverged, invalid) is recorded as failed and not retried
    (``trainables.tune.recording_failures``). Multi-worker trials keep their inner TorchTrainer
    checkpoints in the run (``<run>/.ray-train``), on the sweep's storage that every node reaches."""
    from trainables.tune import recording_failures

    resources = config.resources
    if function is None:
        from trainables.tune import with_trial_resources

        inner_storage = join_uri(run_uri, ".ray-train") if run_uri is not None else None
        # ASHA counts reports (training_iteration) as time: a repeated report would move a restored
        # trial towards max_t early, so restored trials re-report only without ASHA.
        return with_trial_resources(cpus=resources.cpus, gpus=resources.gpus, workers=resources.workers,
                                    objectives=config.metrics, storage=inner_storage,
                                    rereport_restored=config.scheduler.kind != "asha")
    from ray import tune

    if resources.workers != 1:
        raise WeakdisError("resources.workers > 1 needs the weakdis trainable (trainables.tune)")
    return tune.with_resources(recording_failures(function, config.metrics),
                               {"cpu": resources.cpus, "gpu": resources.gpus})


def max_evaluations(config: SweepConfig) -> int:
    """The most evaluations any trial can make: ASHA's max_t in training iterations."""
    from trainables.config import TrialConfig

    defaults = TrialConfig()
    most = 1
    for family in config.models:
        space = {**config.space, **family.space}
        values = {**config.fixed, **family.fixed}

        def largest(key: str) -> float:
            if key in space:
                return max(v for v in space[key].corners() if v is not None)
            return values.get(key, getattr(defaults, key))

        def smallest(key: str) -> float:
            if key in space:
                return min(v for v in space[key].corners() if v is not None)
            return values.get(key, getattr(defaults, key))

        every = smallest("eval_every") or largest("steps")
        most = max(most, math.ceil(largest("steps") / max(every, 1)) + 1)
    return most


def build_scheduler(config: SweepConfig):
    if config.scheduler.kind == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration", metric=config.metrics[0], mode=config.modes[0],
        max_t=max_evaluations(config), grace_period=config.scheduler.grace_period,
        reduction_factor=config.scheduler.reduction_factor,
    )


def build_reporter(config: SweepConfig):
    from ray.tune import CLIReporter

    metrics = list(dict.fromkeys([*PROGRESS_METRICS[:1], *config.metrics, *PROGRESS_METRICS[1:]]))
    searched = dict.fromkeys([*config.space, *(key for family in config.models for key in family.space)])
    parameters = ["model", *(key for key in searched if key != "seed"), "seed"]
    return CLIReporter(
        metric_columns=metrics, parameter_columns=parameters, max_report_frequency=20,
        max_progress_rows=30, print_intermediate_tables=True,
    )


def trial_name(trial: Any) -> str:
    """``<model>_<trial id>``: short trial names in the progress table and as directory names."""
    return f"{trial.config.get('model', 'trial')}_{trial.trial_id}"


def with_default_study_storage(config: SweepConfig, run_uri: str) -> SweepConfig:
    """An Optuna sweep without ``searcher.storage`` keeps its studies in ``<run>/optuna.db`` (SQLite)
    when the run is local, so that optuna-dashboard can open them and ``--resume`` continues them;
    the resolved URL is what sweep.yaml records. A remote run (s3://, gs://) keeps them in memory:
    SQLite needs a local file (set ``searcher.storage`` to a database URL to keep them)."""
    if config.searcher.kind != "optuna" or config.searcher.storage is not None or is_remote(run_uri):
        return config
    url = f"sqlite:///{Path(run_uri).resolve() / OPTUNA_FILE}"
    return dataclasses.replace(config, searcher=dataclasses.replace(config.searcher, storage=url))


def build_callbacks(config: SweepConfig) -> list[Any]:
    """Ray Tune logger callbacks from the config's ``callbacks:`` (MLflow, W&B). A relative local
    MLflow ``tracking_uri`` (``file:./mlruns`` or ``./mlruns``) is made absolute; naming a file
    store opts in to it (MLflow 3 refuses one unless ``MLFLOW_ALLOW_FILE_STORE`` is set; a
    ``sqlite:///mlflow.db`` URI is MLflow's recommended local store)."""
    callbacks: list[Any] = []
    for name, options in config.callbacks.items():
        options = dict(options)
        if name == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            uri = options.get("tracking_uri")
            if isinstance(uri, str) and ("://" not in uri or uri.startswith("file:")):
                local = uri.removeprefix("file:")
                local = local[2:] if local.startswith("//") else local     # file:///abs -> /abs
                options["tracking_uri"] = Path(local).expanduser().resolve().as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            options.setdefault("experiment_name", config.name)
            callbacks.append(MLflowLoggerCallback(**options))
        elif name == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback

            options.setdefault("project", config.name)
            callbacks.append(WandbLoggerCallback(**options))
    return callbacks


def build_tuner(config: SweepConfig, storage: str, name: str, trainable: Any):
    from ray import tune

    scheduler = build_scheduler(config)
    tune_config = tune.TuneConfig(
        search_alg=build_searcher(config, study_name=name),
        num_samples=total_trials(config),
        max_concurrent_trials=config.budget.max_concurrent_trials,
        time_budget_s=config.budget.time_budget_s,
        # Trials share one resource shape, so a finished trial's worker process (torch imported, data
        # cached) runs the next one; a crashed worker is replaced as usual.
        reuse_actors=True,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
        **({"scheduler": scheduler} if scheduler is not None else {}),
    )
    run_config = tune.RunConfig(
        name=name,
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=config.failure.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=config.checkpoint.num_to_keep),
        # The trials' own files (trainables.tune._trial_dir) go to storage from whichever worker or node
        # ran them, a reused worker included.
        sync_config=tune.SyncConfig(sync_artifacts=True),
        progress_reporter=build_reporter(config),
        callbacks=build_callbacks(config) or None,
        verbose=0 if is_quiet() else 1,        # weakdis sweep -q: no progress table
        log_to_file=True,
    )
    return tune.Tuner(trainable, param_space={}, tune_config=tune_config, run_config=run_config)


def remote_filesystem(uri: str):
    """(pyarrow filesystem, path inside it) of an s3:// / gs:// URI."""
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(uri)


# -- sweep.yaml ---------------------------------------------------------------------------------------


def write_sweep_file(config: SweepConfig, run_uri: str) -> None:
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    if is_remote(run_uri):
        filesystem, path = remote_filesystem(run_uri)
        filesystem.create_dir(path, recursive=True)
        with filesystem.open_output_stream(f"{path}/{SWEEP_FILE}") as stream:
            stream.write(text.encode())
        return
    Path(run_uri).mkdir(parents=True, exist_ok=True)
    write_text_atomically(Path(run_uri) / SWEEP_FILE, text)


def _exists_message(run_uri: str) -> str:
    return f"run {run_uri} exists already; pass --resume to continue it or choose another --name"


def claim_run(config: SweepConfig, run_uri: str) -> None:
    """Create the run directory for this sweep alone, then write sweep.yaml into it.

    Local storage: ``mkdir`` without ``exist_ok`` is atomic, so of two sweeps started with the same
    name exactly one gets the directory and the other is refused. Remote storage (s3://, gs://, any
    pyarrow / fsspec filesystem) has no atomic mkdir: the run must not exist yet, then each starter
    writes its own claim object ``.weakdis-claim-<uuid>`` and lists the claims; a starter that sees any
    claim but its own withdraws. Both may withdraw under a race, never both proceed."""
    if not is_remote(run_uri):
        run_dir = Path(run_uri)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise WeakdisError(_exists_message(run_uri)) from None
        try:
            write_sweep_file(config, run_uri)
        except BaseException:
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)  # ours alone: just created above
            raise
        return
    import pyarrow.fs as pafs

    filesystem, path = remote_filesystem(run_uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        raise WeakdisError(_exists_message(run_uri))
    filesystem.create_dir(path, recursive=True)
    mine = f"{CLAIM_PREFIX}{uuid.uuid4().hex}"
    with filesystem.open_output_stream(f"{path}/{mine}") as stream:
        stream.write(f"{os.getpid()} {time.time()}\n".encode())
    claims = [info.base_name for info in filesystem.get_file_info(pafs.FileSelector(path))
              if info.base_name.startswith(CLAIM_PREFIX)]
    if claims != [mine]:
        filesystem.delete_file(f"{path}/{mine}")
        raise WeakdisError(_exists_message(run_uri) + " (another sweep claimed the name at the same time)")
    write_sweep_file(config, run_uri)


def read_sweep_file(run_uri: str) -> SweepConfig:
    if is_remote(run_uri):
        filesystem, path = remote_filesystem(run_uri)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / SWEEP_FILE
            try:
                with filesystem.open_input_stream(f"{path}/{SWEEP_FILE}") as stream:
                    local.write_bytes(stream.read())
            except (FileNotFoundError, OSError):
                raise WeakdisError(f"--resume: {run_uri} has no {SWEEP_FILE}; is it a weakdis run?") from None
            return load_sweep_config(local)
    path = Path(run_uri) / SWEEP_FILE
    if not path.is_file():
        raise WeakdisError(f"--resume: {run_uri} has no {SWEEP_FILE}; expected a run directory made by weakdis sweep")
    return load_sweep_config(path)


# -- results ------------------------------------------------------------------------------------------


def collect_results(run_uri: str):
    """Write results.parquet / results.csv / history.parquet into the run (a remote run is copied to a
    temporary directory, collected there and the three files uploaded) and return the results."""
    from analysis.results import write_results

    if not is_remote(run_uri):
        results, _history = write_results(run_uri)
        return results
    import pyarrow.fs as pafs

    filesystem, path = remote_filesystem(run_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "run"
        pafs.copy_files(path, str(local), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
        results, _history = write_results(local)
        for name in RESULT_FILES:
            pafs.copy_files(str(local / name), f"{path}/{name}", source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=filesystem)
    return results


def summary(results, config: SweepConfig, run_uri: str, stream: TextIO = sys.stdout) -> None:
    """Print where the results are and the best trade-off trials (the Pareto front over the
    objectives, or the best few trials of a single objective)."""
    import pandas as pd

    print(f"\nResults: {run_uri}", file=stream)
    for name in RESULT_FILES:
        print(f"  {join_uri(run_uri, name)}", file=stream)
    if results is None or len(results) == 0:
        print("No trials ran.", file=stream)
        return
    counts = results["status"].value_counts().to_dict()
    print("Trials: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())), file=stream)
    finished = results[results["status"].isin(["finished", "stopped_early"])]
    objectives = dict(config.objectives)
    columns = [c for c in ("trial_id", "status", "model", "beta", "latent_dim", "tau", "seed", *objectives)
               if c in results.columns]
    if len(finished) == 0:
        print("No trial finished; see the error column of results.csv.", file=stream)
        return
    if len(objectives) > 1:
        from analysis.pareto import pareto_front

        best = pareto_front(finished, objectives=objectives, by="model")
        title = ("Best trade-off trials (Pareto front of " + ", ".join(f"{m} {d}" for m, d in objectives.items())
                 + " per model):")
    else:
        (metric, mode), = objectives.items()
        best = finished.sort_values(metric, ascending=mode == "min").head(5)
        title = f"Best trials by {metric} ({mode}):"
    first = next(iter(objectives))
    best = best.sort_values(["model", first], ascending=[True, objectives[first] == "min"])
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(title, file=stream)
        print(best[columns].to_string(index=False), file=stream)
    failed = results[results["status"] == "failed"]
    for _, row in failed.iterrows():
        print(f"Failed trial {row['trial_id']}: {row.get('error')}", file=stream)
    crashed = [row["trial_id"] for _, row in failed.iterrows() if _is_crash(row.get("error"))]
    if crashed:
        print(f"{len(crashed)} trial(s) crashed ({', '.join(crashed)}); `weakdis sweep --resume` continues "
              "them from their last checkpoint", file=stream)


def _is_crash(error: Any) -> bool:
    """A failure of the trial's process (not a WeakdisError recorded by the trial itself)."""
    text = str(error or "")
    return any(word in text for word in ("ActorDiedError", "actor died", "worker process has died",
                                         "Worker unexpectedly exits", "OutOfMemoryError", "NodeDiedError"))


# -- entry points -------------------------------------------------------------------------------------


def run_sweep(
    config: SweepConfig,
    *,
    address: str | None = None,
    storage: str | None = None,
    name: str | None = None,
    num_samples: int | None = None,
    function: FunctionTrainable | None = None,
    stream: TextIO = sys.stdout,
) -> SweepOutcome:
    """Run a sweep to the end and collect its results."""
    if num_samples is not None:
        if config.searcher.kind == "grid":
            raise WeakdisError("--num-samples applies to Optuna searches; searcher.kind 'grid' runs every grid point")
        if num_samples < 1:
            raise WeakdisError(f"--num-samples={num_samples} is invalid; expected an integer >= 1")
        config = dataclasses.replace(config, num_samples=num_samples)
    storage_uri = resolve_storage(storage or config.storage)
    chosen = name
    name = check_run_name(name) if name is not None else default_run_name(config)
    run_uri = join_uri(storage_uri, name)
    # Everything is validated before the run directory exists and before Ray starts.
    check_optuna_storage(config.searcher.storage, config.source)
    requested = config
    for attempt in range(5):
        config = with_default_study_storage(requested, run_uri)   # sweep.yaml records the study's URL
        try:
            claim_run(config, run_uri)
            break
        except WeakdisError:
            if chosen is not None or attempt == 4:
                raise
            name = default_run_name(requested)   # a generated name collided: draw another suffix
            run_uri = join_uri(storage_uri, name)
    trainable = build_trainable(config, function, run_uri)

    def start() -> Any:
        print(f"weakdis sweep: {total_trials(config)} trials of {', '.join(f.model for f in config.models)} "
              f"on {', '.join(config.datasets)}; run directory {run_uri}", file=stream, flush=True)
        return build_tuner(config, storage_uri, name, trainable)

    try:
        return _fit_and_collect(config, run_uri, address, stream, start)
    except BaseException:
        _remove_unstarted_run(run_uri)
        raise


def _remove_unstarted_run(run_uri: str) -> None:
    """A local run that holds nothing but our sweep.yaml (Ray failed to start, Ctrl-C before the first
    trial) is removed, so that a later `--resume` does not pick a run with nothing to resume."""
    if is_remote(run_uri):
        return
    run_dir = Path(run_uri)
    try:
        if run_dir.is_dir() and [p.name for p in run_dir.iterdir()] == [SWEEP_FILE]:
            (run_dir / SWEEP_FILE).unlink()
            run_dir.rmdir()
    except OSError:
        pass


def resume_sweep(
    run_uri: str,
    *,
    address: str | None = None,
    function: FunctionTrainable | None = None,
    stream: TextIO = sys.stdout,
) -> SweepOutcome:
    """Continue an interrupted sweep from its experiment state (the searcher's state included); trials
    that finished are not run again, trials whose process crashed continue from their checkpoint,
    trials recorded as failed (diverged, invalid) stay failed. A finished sweep only gets its results
    re-collected."""
    from ray import tune

    config = read_sweep_file(run_uri)
    if not tune.Tuner.can_restore(run_uri):
        raise WeakdisError(f"--resume: {run_uri} holds no Tune experiment state to restore")
    # Restoring reads Tune's and Optuna's pickled searcher state from the run directory: resume only
    # your own runs (weakdis analyze / load_results never unpickle anything).
    trainable = build_trainable(config, function, run_uri)

    def restore() -> Any:
        print(f"weakdis sweep: resuming {run_uri}", file=stream, flush=True)
        # Errored trials are crashes (a WeakdisError ends a trial normally, recorded as failed; see
        # trainables.tune.recording_failures), so they continue from their checkpoint. This also
        # covers Tune 2.60 marking a trial ERROR without a retry when its worker dies while two
        # tasks of the trial are in flight (restore and train).
        return tune.Tuner.restore(run_uri, trainable=trainable, resume_unfinished=True, resume_errored=True)

    return _fit_and_collect(config, run_uri, address, stream, restore)


def resume_command(run_uri: str, address: str | None = None) -> str:
    """The exact command line that continues the run."""
    if is_remote(run_uri):
        storage, _, name = run_uri.rstrip("/").rpartition("/")
    else:
        storage, name = str(Path(run_uri).parent), Path(run_uri).name
    parts = ["weakdis", "sweep", "--storage", storage]
    if address:
        parts += ["--address", address]
    parts += ["--resume", "--name", name]
    return " ".join(shlex.quote(part) for part in parts)


class _TuneRestoreHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)" (a Python hint); weakdis prints the
    `weakdis sweep ... --resume` command instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore" not in record.getMessage()


@contextlib.contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """Ctrl-C during ``fit``: the first SIGINT asks Tune to stop cleanly (through Tune's SIGUSR1
    handler: trials are stopped and the experiment state saved) and is remembered, so the run can be
    reported as interrupted; a second SIGINT raises KeyboardInterrupt at once."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous_handler = signal.getsignal(signal.SIGINT)
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"   # ours below asks Tune to stop instead

    def on_sigint(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("\nweakdis sweep: stopping after Ctrl-C (the running trials keep their last checkpoint; "
              "press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
        tune_handler = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if callable(tune_handler):
            tune_handler(signal.SIGUSR1, frame)
        else:
            raise KeyboardInterrupt

    hint_filter = _TuneRestoreHint()
    tune_logger = logging.getLogger("ray.tune.tune")
    signal.signal(signal.SIGINT, on_sigint)
    tune_logger.addFilter(hint_filter)
    try:
        yield interrupted
    finally:
        tune_logger.removeFilter(hint_filter)
        signal.signal(signal.SIGINT, previous_handler)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def _fit_and_collect(config: SweepConfig, run_uri: str, address: str | None, stream: TextIO,
                     make_tuner: Callable[[], Any]) -> SweepOutcome:
    """Start (or join) Ray, fit the tuner that ``make_tuner`` builds, stop a Ray this call started,
    then collect and summarise the run's results (also after a Ctrl-C, which is reported in the
    outcome with the command that resumes the run)."""
    started = start_ray(address, threads_per_trial=int(config.resources.cpus))
    try:
        with _classic_progress_table(), _interruptible() as interrupted:
            make_tuner().fit()
    finally:
        if started:
            import ray

            ray.shutdown()
    results = collect_results(run_uri)
    summary(results, config, run_uri, stream)
    command = resume_command(run_uri, address)
    if interrupted.is_set():
        print(f"\nInterrupted; the results so far are written. Continue with:\n{command}", file=stream, flush=True)
    return SweepOutcome(run_uri, len(results), results, interrupted=interrupted.is_set(), resume_command=command)

