"""Ray wrappers of the training loop: a Tune function trainable and, for several workers per trial,
a Ray Train ``TorchTrainer`` started inside it (Ray 2.60 no longer accepts a Trainer in a Tuner).

- ``trial_function(config)``: one process. Resumes from ``ray.tune.get_checkpoint()`` when Tune
  restores the trial and calls ``ray.tune.report(metrics, checkpoint=...)`` at every evaluation,
  each report carrying every metric column (NaN where not applicable), so Tune's strict metric
  check passes whatever objective the searcher uses.
- ``distributed_trial_function(config)`` (via ``with_trial_resources(workers > 1)``): starts a
  ``TorchTrainer`` with ``config["_workers"]`` workers (DDP over gloo on CPU, nccl on GPU). Every
  worker runs ``train``; the models average gradients themselves; rank 0 evaluates and writes the
  checkpoint. A Train callback forwards each report (rank 0's metrics, the text of its
  ``history.csv`` and ``environment.json``, and the persisted checkpoint) to this Tune trial, which
  writes the files into its directory and reports the rest to Tune, so Tune holds the checkpoints and a
  restored trial hands its checkpoint to the TorchTrainer's workers in their config (Train v2 refuses
  ``resume_from_checkpoint``). The
  TorchTrainer keeps its own checkpoints under the sweep's storage (``<run>/.ray-train``), which
  every node of a cluster reaches, not under a node-local temporary directory.
- ``recording_failures(function)``: a trial that raises a WeakdisError (it diverged, or its config
  is invalid) reports one last result ``{"weakdis_error": message, <objectives>: NaN}`` and ends
  normally. Training is deterministic, so a retry would fail again: Tune does not retry it (its
  FailureConfig retries only crashes: a killed worker, an out-of-memory kill), the searcher sees
  non-finite objectives (Optuna records the configuration as failed) and the results table marks
  the trial ``failed`` with the message as its ``error``.

Only this module and ``search`` import Ray.
"""
from __future__ import annotations

import functools
import math
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from trainables.config import TrialConfig
from trainables.errors import WeakdisError
from trainables.loop import final_metrics_record, train, write_json
from weakdis.files import write_text_atomically

# Keys Tune may put in a trial config beside the TrialConfig keys.
NON_TRIAL_KEYS = ("trial_label", "_workers", "_use_gpu", "_cpus_per_worker", "_gpus_per_worker", "_storage",
                  "_trial_files", "_restored_checkpoint")
# The report key of a trial that failed for good (see recording_failures); analysis.results reads it.
FAILED_KEY = "weakdis_error"
_DONE = "__weakdis_done__"
# A multi-worker trial's rank 0 writes these into a directory of its own and sends their text with each
# report (under _FILES_KEY); the Tune trial writes them into its directory, which goes to storage.
FORWARDED_FILES = ("history.csv", "environment.json")
_FILES_KEY = "_weakdis_files"
# The Tune function of a multi-worker trial only waits on its TorchTrainer; Tune refuses a zero request.
DRIVER_CPUS = 0.1


def trial_config_from(config: dict[str, Any]) -> TrialConfig:
    values = {k: v for k, v in config.items() if k not in NON_TRIAL_KEYS}
    return TrialConfig.from_dict(values, source="Tune trial config")


def _restored_checkpoint_dir(checkpoint: Any) -> str | None:
    """A local copy of a Tune / Train checkpoint, or None."""
    if checkpoint is None:
        return None
    return checkpoint.to_directory(tempfile.mkdtemp(prefix="weakdis-restore-"))


def trial_function(config: dict[str, Any], rereport_restored: bool = True) -> None:
    """A Tune function trainable running one trial in this process; see the module docstring.

    ``rereport_restored``: a restored trial first reports its checkpoint's evaluation again (see
    :func:`_report_restored_evaluation`); off under ASHA, which counts reports as time."""
    import ray.tune

    cfg = trial_config_from(config)
    resume_from = _restored_checkpoint_dir(ray.tune.get_checkpoint())
    work = Path(tempfile.mkdtemp(prefix="weakdis-trial-"))
    if resume_from is not None and rereport_restored:
        _report_restored_evaluation(resume_from)

    def report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.tune.report(dict(metrics), checkpoint=checkpoint)

    try:
        train(cfg, out_dir=_trial_dir(), report=report, checkpoint_dir=work / "checkpoint",
              resume_from=resume_from)
    finally:  # Tune has persisted every reported checkpoint by now
        _remove(work, resume_from)


def _report_restored_evaluation(checkpoint_dir: str) -> None:
    """Report the restored checkpoint's own evaluation once more (no checkpoint attached).

    When a worker dies right after a report, Tune can keep the report's checkpoint (and restore from
    it) but lose the report's line in ``result.json``; the history would then miss that evaluation.
    ``analysis.results`` keeps the latest report per step, so the repeat never duplicates a row."""
    import ray.tune

    from trainables.checkpoint import load_checkpoint

    history = load_checkpoint(checkpoint_dir)[1].get("history") or []
    if history:
        ray.tune.report(dict(history[-1]))


def _trial_dir() -> str | None:
    """The trial's working directory on this worker (history.csv, metrics.json, environment.json land
    there), if Tune gives one; the sweep's ``SyncConfig(sync_artifacts=True)`` uploads it to the trial's
    storage directory at every checkpoint and when the trial ends.

    Not ``get_trial_dir()``: that is the driver's staging directory for the first trial of a worker but
    the unsynced working directory for a trial in a reused worker, and either is lost for a trial on
    another node of a cluster."""
    try:
        import ray.tune

        return ray.tune.get_context().get_storage().trial_working_directory
    except Exception:  # outside a Tune session, or a Ray version without it
        return None


def train_worker_loop(config: dict[str, Any]) -> None:
    """The per-worker function of the TorchTrainer: ``train`` under torch.distributed.

    Every worker calls ``ray.train.report`` at every evaluation (Train needs the same number of
    reports from all); rank 0 attaches the metrics and the checkpoint.
    """
    import ray.train

    cfg = trial_config_from(config)
    context = ray.train.get_context()
    if cfg.device == "auto" or cfg.device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            cfg = cfg.replace(device=f"cuda:{context.get_local_rank()}")
        elif cfg.device == "auto":
            cfg = cfg.replace(device="cpu")
    # Train's own latest checkpoint after a Train-level retry, else the restored Tune trial's
    resume_from = _restored_checkpoint_dir(ray.train.get_checkpoint() or config.get("_restored_checkpoint"))
    work = Path(tempfile.mkdtemp(prefix=f"weakdis-rank{context.get_world_rank()}-"))
    files = work / "files" if context.get_world_rank() == 0 else None
    if files is not None:
        files.mkdir()
        _write_trial_files(files, config.get("_trial_files") or {})   # a restored trial's records so far

    def report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        payload: dict[str, Any] = dict(metrics)
        if files is not None:
            payload[_FILES_KEY] = _read_trial_files(files)
        ray.train.report(payload, checkpoint=checkpoint)

    try:
        train(cfg, out_dir=files, report=report, checkpoint_dir=work / "checkpoint", resume_from=resume_from)
    finally:
        _remove(work, resume_from)


def _remove(*directories: str | Path | None) -> None:
    for directory in directories:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _forwarding_callback(items: Any) -> Any:
    from ray.train.v2.api.callback import UserCallback

    class ForwardReports(UserCallback):
        """Runs in the Train controller: hands rank 0's metrics and the checkpoint to the Tune trial."""

        def __init__(self, target: Any) -> None:
            self.target = target

        def after_report(self, run_context, metrics, checkpoint):
            self.target.put((dict(metrics[0]), checkpoint))

    return ForwardReports(items)


def distributed_trial_function(config: dict[str, Any]) -> None:
    """A Tune function trainable that runs the trial on a TorchTrainer; see the module docstring."""
    import ray.tune
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Queue

    cfg = trial_config_from(config)  # fail here, in the Tune trial, on a bad config
    trial_dir = _trial_dir()
    restored = ray.tune.get_checkpoint()
    workers = int(config.get("_workers", 2))
    use_gpu = bool(config.get("_use_gpu", False))
    resources = {"CPU": float(config.get("_cpus_per_worker", 1))}
    if use_gpu:
        resources["GPU"] = float(config.get("_gpus_per_worker", 1))
    items = Queue(maxsize=1, actor_options={"num_cpus": 0})
    context = ray.tune.get_context()
    trainer = TorchTrainer(
        train_worker_loop,
        train_loop_config={**config, "_restored_checkpoint": restored,
                           "_trial_files": _read_trial_files(trial_dir) if restored is not None else {}},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=f"train-{context.get_trial_id()}",
            # The sweep's storage (reachable from every node), not node-local /tmp, which Ray
            # rejects for a run spanning nodes; without a sweep (tests), a temporary directory.
            storage_path=config.get("_storage") or os.path.join(tempfile.gettempdir(), "weakdis-ray-train"),
            callbacks=[_forwarding_callback(items)],
        ),
    )
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as error:  # re-raised in the Tune thread below
            outcome["error"] = error
        finally:
            items.put((_DONE, None))

    thread = threading.Thread(target=fit, name="weakdis-torchtrainer", daemon=True)
    thread.start()
    last_metrics: dict[str, Any] = {}
    while True:
        try:
            metrics, checkpoint = items.get(timeout=1.0)
        except queue.Empty:
            continue
        except Exception as error:  # ray.util.queue.Empty subclasses queue.Empty; anything else is real
            if type(error).__name__ == "Empty":
                continue
            raise
        if metrics == _DONE:
            break
        _write_trial_files(trial_dir, metrics.pop(_FILES_KEY, None) or {})
        ray.tune.report(metrics, checkpoint=checkpoint)
        last_metrics = metrics
    thread.join()
    if "error" in outcome:
        raise _unwrap_train_error(outcome["error"])
    result = outcome.get("result")
    if result is not None and getattr(result, "error", None) is not None:
        raise _unwrap_train_error(result.error)
    if trial_dir is not None and last_metrics:   # what train() writes at the end of a one-process trial
        write_json(Path(trial_dir) / "metrics.json", final_metrics_record(cfg, last_metrics))


def _read_trial_files(trial_dir: str | os.PathLike | None) -> dict[str, str]:
    """The text of the FORWARDED_FILES that ``trial_dir`` holds."""
    if trial_dir is None:
        return {}
    paths = (Path(trial_dir, name) for name in FORWARDED_FILES)
    return {path.name: path.read_text() for path in paths if path.exists()}


def _write_trial_files(trial_dir: str | os.PathLike | None, files: dict[str, str]) -> None:
    """Write ``{name: text}`` of the FORWARDED_FILES into ``trial_dir``, each replaced whole."""
    if trial_dir is None:
        return
    for name, text in files.items():
        if name in FORWARDED_FILES:
            write_text_atomically(Path(trial_dir, name), text)


def _unwrap_train_error(error: BaseException) -> BaseException:
    """A worker's WeakdisError (e.g. a diverged trial) comes back as itself, with its message."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WeakdisError):
            return current
        for attribute in ("worker_failures", "_worker_failures"):
            failures = getattr(current, attribute, None)
            if isinstance(failures, dict):
                for failure in failures.values():
                    found = _unwrap_train_error(failure)
                    if isinstance(found, WeakdisError):
                        return found
        current = current.__cause__ or current.__context__
    if "WeakdisError" in str(error):
        message = str(error).split("WeakdisError:")[-1].strip().splitlines()[0]
        return WeakdisError(message)
    return error


def recording_failures(function: Callable[[dict[str, Any]], Any],
                       objectives: Sequence[str] = ()) -> Callable[[dict[str, Any]], Any]:
    """``function`` (a Tune function trainable) with its WeakdisErrors recorded instead of raised; see
    the module docstring. Other exceptions propagate, so Tune retries a crashed trial from its
    checkpoint as ``failure.max_failures`` allows."""

    @functools.wraps(function)
    def trial(config: dict[str, Any]) -> Any:
        try:
            return function(config)
        except WeakdisError as error:
            import ray.tune

            from trainables.evaluation import METRIC_KEYS

            failed = {key: math.nan for key in (*METRIC_KEYS, *objectives)}
            failed[FAILED_KEY] = " ".join(str(error).split()) or "WeakdisError"
            ray.tune.report(failed)
            return None

    return trial


def with_trial_resources(cpus: float = 1, gpus: float = 0, workers: int = 1, objectives: Sequence[str] = (),
                         storage: str | None = None, rereport_restored: bool = True) -> Callable[..., Any]:
    """The trainable for a Tuner, with its resource request.

    ``workers == 1``: ``trial_function`` with ``{"CPU": cpus, "GPU": gpus}`` (fractional GPUs pack
    several small trials on one GPU). ``workers > 1``: ``distributed_trial_function`` with a
    ``DRIVER_CPUS`` driver; the TorchTrainer it starts asks for ``workers`` workers of ``cpus`` CPUs and
    ``gpus`` GPUs each (whole or fractional).
    """
    import ray.tune

    if workers < 1:
        raise WeakdisError(f"resources.workers={workers!r} is invalid; expected an integer >= 1")
    if cpus < 0 or gpus < 0:
        raise WeakdisError(f"resources cpus={cpus!r}, gpus={gpus!r}: expected numbers >= 0")
    if workers == 1:
        function = trial_function
        if not rereport_restored:
            def function(config: dict[str, Any]) -> None:
                trial_function(config, rereport_restored=False)

            function.__name__ = "trial_function"
        return ray.tune.with_resources(recording_failures(function, objectives), {"CPU": cpus, "GPU": gpus})

    def distributed(config: dict[str, Any]) -> None:
        distributed_trial_function({**config, "_workers": workers, "_use_gpu": gpus > 0,
                                    "_cpus_per_worker": cpus, "_gpus_per_worker": gpus,
                                    **({"_storage": storage} if storage else {})})

    distributed.__name__ = "distributed_trial_function"
    return ray.tune.with_resources(recording_failures(distributed, objectives), {"CPU": DRIVER_CPUS})
