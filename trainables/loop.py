"""The training loop of one trial, runnable without Ray.

``train(cfg)`` loads the dataset version onto the device, builds the model, hands it the ``tau``
labelled samples, then runs ``cfg.steps`` iterations of ``model.train_step`` on batches gathered on
the device. Every ``eval_every`` steps and at the end it evaluates (``trainables.evaluation``),
appends a row to the history, calls ``report`` and writes a checkpoint.

Speed: batches are index gathers on the device; losses stay on the device and are summed there;
the host reads them back only at an evaluation or a divergence check (every ``log_every`` steps).
Determinism: Python, NumPy and torch are seeded from ``cfg.seed`` and the rank under data parallel
(``weakdis.seeds.derive_seed``); batch sampling and noise use their own ``torch.Generator``; all of these states are checkpointed,
so a resumed trial ends with the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from trainables.checkpoint import (
    capture_rng_states,
    has_checkpoint,
    load_checkpoint,
    load_model_state,
    restore_rng_states,
    save_checkpoint,
)
from trainables.config import TrialConfig
from trainables.environment import record_environment
from trainables.errors import WeakdisError
from trainables.evaluation import METRIC_KEYS, evaluate
from trainables.models.capabilities import TakesWeakSupervision
from weakdis.files import replaced_atomically, write_text_atomically
from weakdis.registry import WEAK_SUPERVISION, model_entry
from weakdis.seeds import derive_seed

log = logging.getLogger(__name__)

ReportFn = Callable[[dict[str, float], "str | None"], None]

CONFIG_COLUMNS = ("model", "dataset", "seed", "data_seed", "beta", "latent_dim", "tau", "alpha", "steps")


@dataclass
class TrialResult:
    """What ``train`` returns: the final evaluation and one row per evaluation."""

    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint_dir: str | None = None


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else as torch understands it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise WeakdisError(f"device={name!r} is invalid; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WeakdisError(f"device={name!r}: CUDA is not available on this machine; use device=cpu or auto")
    return device


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) without torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# The two factories are module attributes so that a caller (or a test) can swap in other
# components; they are looked up at call time.
def load_trial_dataset(cfg: TrialConfig, device: torch.device) -> Any:
    """The dataset version of ``cfg`` on ``device`` (generated once into the cache if needed)."""
    from trainables.data import load_dataset

    return load_dataset(cfg.dataset, cfg.data_path, device=str(device), seed=cfg.seed,
                        generate_images=cfg.data_images, data_seed=cfg.data_seed)


def build_trial_model(cfg: TrialConfig, dataset: Any) -> torch.nn.Module:
    from trainables.models import build_model

    return build_model(cfg, dataset)


def _noise_config(cfg: TrialConfig) -> Any:
    if cfg.noise == "none":
        return None
    from trainables.data import NoiseConfig

    return NoiseConfig(kind=cfg.noise, p=cfg.noise_level, std=cfg.noise_level)


class LossTracker:
    """Sums the losses of each step on the device and remembers the first non-finite one.

    Nothing here reads a tensor back to the host; ``means`` and ``divergence`` do, and the loop
    calls them only at evaluations and divergence checks. Losses are summed per set of names (a
    model may return other losses after its warm-up), one stacked vector each.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[tuple[str, ...], torch.Tensor] = {}
        self.counts: dict[tuple[str, ...], int] = {}
        self.key_sets: list[tuple[str, ...]] = []
        self.first_bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.first_bad_key_set = torch.zeros((), dtype=torch.int64, device=device)   # index into key_sets
        self.first_bad_position = torch.zeros((), dtype=torch.int64, device=device)  # index into that set
        self.first_bad_value = torch.zeros((), dtype=torch.float32, device=device)

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        if not losses:
            return
        keys = tuple(losses)
        if keys not in self.key_sets:
            self.key_sets.append(keys)
        key_set = self.key_sets.index(keys)
        values = torch.stack([losses[k].detach().float().reshape(()) for k in keys])
        self.sums[keys] = self.sums[keys] + values if keys in self.sums else values
        self.counts[keys] = self.counts.get(keys, 0) + 1
        bad = ~torch.isfinite(values)
        new = bad.any() & (self.first_bad_step < 0)
        position = bad.to(torch.int64).argmax()
        self.first_bad_step = torch.where(new, step, self.first_bad_step)
        self.first_bad_key_set = torch.where(new, key_set, self.first_bad_key_set)
        self.first_bad_position = torch.where(new, position, self.first_bad_position)
        self.first_bad_value = torch.where(new, values[position], self.first_bad_value)

    def divergence(self) -> tuple[int, str, float] | None:
        """(step, loss name, value) of the first non-finite loss, or None."""
        step = int(self.first_bad_step.item())
        if step < 0:
            return None
        name = self.key_sets[int(self.first_bad_key_set.item())][int(self.first_bad_position.item())]
        return step, name, float(self.first_bad_value.item())

    def means(self) -> dict[str, float]:
        """``loss_<name>``: the mean of each loss over the steps since the last ``reset``."""
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}
        for keys, sums in self.sums.items():
            for key, value in zip(keys, sums.cpu().tolist()):
                totals[key] = totals.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + self.counts[keys]
        return {f"loss_{key}": totals[key] / counts[key] for key in totals}

    def reset(self) -> None:
        self.sums, self.counts = {}, {}

    def state(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.sums = {tuple(k): v.to(self.device) for k, v in state["sums"].items()}
        self.counts = {tuple(k): v for k, v in state["counts"].items()}
        for keys in self.sums:
            if keys not in self.key_sets:
                self.key_sets.append(keys)


def _format_value(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:g}"


def _write_history_row(path: Path, row: dict[str, Any]) -> None:
    """Append one evaluation to ``history.csv``; rewrite the file when new columns appear."""
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    if path.exists():
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    new_columns = [k for k in row if k not in columns]
    if path.exists() and not new_columns:
        with path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=columns, restval="").writerow(row)
        return
    columns += new_columns
    with replaced_atomically(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows + [row])


def write_json(path: Path, values: dict[str, Any]) -> None:
    # NaN is written as NaN (Python's json): readable by json.load and pandas.
    write_text_atomically(path, json.dumps(values, indent=2, sort_keys=True))


def final_metrics_record(cfg: TrialConfig, metrics: dict[str, float]) -> dict[str, Any]:
    """metrics.json: the config columns of the results table and the final evaluation."""
    return {**{key: getattr(cfg, key) for key in CONFIG_COLUMNS}, **metrics}


def train(cfg: TrialConfig, out_dir: str | os.PathLike | None = None, report: ReportFn | None = None,
          checkpoint_dir: str | os.PathLike | None = None,
          resume_from: str | os.PathLike | None = None, progress: Any = None) -> TrialResult:
    """Run one trial; see the module docstring.

    ``out_dir``: when given, ``history.csv`` (one row appended per evaluation), ``metrics.json``
    (at the end), ``environment.json`` (versions, device and CPU, an entry per start or resume) and,
    unless ``checkpoint_dir`` is given, the checkpoint in ``out_dir/checkpoint``.
    ``report(metrics, checkpoint_dir)`` is called at every evaluation (on rank 0 with the metrics;
    on other ranks with an empty dict, so that a distributed reporter sees the same number of
    calls); ``checkpoint_dir`` is the directory just written, or None.
    ``resume_from``: a checkpoint directory to continue from (its config must match ``cfg``
    except for ``steps``, ``eval_every``, ``checkpoint_every``, ``log_every`` and ``device``).

    A non-finite loss stops the trial with a WeakdisError naming the step and the loss; the
    history and the last good checkpoint are kept.
    ``progress``: an object whose ``update(step, losses)`` is called after every step, ``losses``
    returning the mean losses since the last evaluation (``trainables.progress.TrainProgress``).
    """
    cfg.validate()
    run = _start_trial(cfg, out_dir, checkpoint_dir)
    if resume_from is None and run.out_path is not None and run.is_main:
        (run.out_path / "history.csv").unlink(missing_ok=True)   # a fresh trial in a reused directory
    if resume_from is not None:
        _resume(run, resume_from)
    if run.is_main and run.out_path is not None:
        record_environment(run.out_path, run.step, run.device, run.world_size, fresh=resume_from is None)
    # Precision (bf16 autocast) and compilation (cfg.compile) are the models' own business: they
    # read both from the config, autocast their networks and keep priors and losses in float32.
    run.model.train()
    eval_steps = _evaluation_steps(cfg)
    log_every = max(1, cfg.log_every)
    metrics: dict[str, float] = run.history[-1] if run.history else {}

    started = time.perf_counter()
    while run.step < cfg.steps:
        _train_step(run)
        step = run.step
        if progress is not None:
            progress.update(step, run.tracker.means)
        if step == cfg.steps:
            _finish_training(run, progress)
        evaluate_now = step in eval_steps
        if evaluate_now or step % log_every == 0:
            _fail_if_diverged(run.tracker)
        checkpoint_due = bool(cfg.checkpoint_every) and step % cfg.checkpoint_every == 0
        if not evaluate_now and not checkpoint_due:
            continue
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        run.train_seconds += time.perf_counter() - started
        if evaluate_now:
            metrics = _evaluate_and_record(run)
        saved = None
        if checkpoint_due or (evaluate_now and (cfg.checkpoint_every == 0 or step == cfg.steps)):
            saved = _save_checkpoint(run)
            run.last_checkpoint = saved or run.last_checkpoint
        if evaluate_now and report is not None:
            report(metrics if run.is_main else {}, saved)
        started = time.perf_counter()

    if run.is_main and run.out_path is not None and metrics:
        write_json(run.out_path / "metrics.json", final_metrics_record(cfg, metrics))
    return TrialResult(metrics=metrics, history=run.history, checkpoint_dir=run.last_checkpoint)


@dataclass
class _Run:
    """The state of one trial while it trains: what a checkpoint holds, and where it goes."""

    cfg: TrialConfig
    device: torch.device
    rank: int
    world_size: int
    dataset: Any
    model: torch.nn.Module
    generators: dict[str, torch.Generator]
    noise: Any
    tracker: LossTracker
    out_path: Path | None
    checkpoint_path: Path | None
    step: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    last_checkpoint: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _start_trial(cfg: TrialConfig, out_dir: str | os.PathLike | None,
                 checkpoint_dir: str | os.PathLike | None) -> _Run:
    """Seed, load the dataset onto the device, build the model and give it the labelled samples."""
    device = resolve_device(cfg.device)
    rank, world_size = distributed_rank()
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None and rank == 0:
        out_path.mkdir(parents=True, exist_ok=True)
    checkpoint_path = Path(checkpoint_dir) if checkpoint_dir is not None else (
        out_path / "checkpoint" if out_path is not None else None)

    seed_everything(derive_seed(cfg.seed, f"global/rank{rank}"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dataset = load_trial_dataset(cfg, device)
    model = build_trial_model(cfg, dataset).to(device)
    if cfg.tau > 0 and model_entry(cfg.model).has(WEAK_SUPERVISION):
        give_supervision(model, dataset, cfg)
    generators = {
        stream: torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, f"{stream}/rank{rank}"))
        for stream in ("batch", "noise")
    }
    return _Run(cfg=cfg, device=device, rank=rank, world_size=world_size, dataset=dataset, model=model,
                generators=generators, noise=_noise_config(cfg), tracker=LossTracker(device), out_path=out_path,
                checkpoint_path=checkpoint_path,
                last_checkpoint=str(checkpoint_path) if checkpoint_path is not None and has_checkpoint(checkpoint_path)
                else None)


def labelled_indices(dataset: Any, cfg: TrialConfig) -> torch.Tensor:
    """The training rows whose factors a weakly supervised trial is given: ``cfg.tau`` of them, drawn
    with the trial's seed and ``tau_sampling``."""
    return dataset.labelled_indices(cfg.tau, cfg.seed, sampling=cfg.tau_sampling)


def unlabelled_indices(dataset: Any, cfg: TrialConfig, n: int) -> torch.Tensor:
    """int64 [<= n]: training rows other than the labelled ones, drawn with the trial's seed: the
    unlabelled images given to a model that asks for them (``unlabelled_wanted``: pseudo_labels,
    single_code_spread_images)."""
    labelled = labelled_indices(dataset, cfg).cpu()
    train = dataset.splits["train"].cpu()
    train = train[~torch.isin(train, labelled)]
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "unlabelled"))
    return train[torch.randperm(len(train), generator=generator)[:n]]


def give_supervision(model: TakesWeakSupervision, dataset: Any, cfg: TrialConfig) -> None:
    """Hand ``model`` the images and factors of the trial's labelled rows (``labelled_indices``), and
    the unlabelled training images it asks for (``unlabelled_indices``)."""
    labelled = labelled_indices(dataset, cfg)
    model.set_supervision(dataset.images[labelled.to(dataset.images.device)],
                          dataset.factors[labelled.to(dataset.factors.device)])
    wanted = getattr(model, "unlabelled_wanted", 0)
    if wanted:
        model.set_unlabelled(dataset.images[unlabelled_indices(dataset, cfg, wanted).to(dataset.images.device)])


def _resume(run: _Run, resume_from: str | os.PathLike) -> None:
    """Load the model, loop state and random states of a checkpoint into ``run``."""
    saved_cfg, state = load_checkpoint(resume_from, map_location=run.device)
    _check_resumable(saved_cfg, run.cfg, resume_from)
    load_model_state(run.model, state["model"], resume_from)
    run.step = int(state["step"])
    run.history = list(state.get("history", []))
    run.train_seconds = float(state.get("loop", {}).get("train_seconds", 0.0))
    run.tracker.load_state(state.get("loop", {}).get("losses", {"sums": {}, "counts": {}}))
    ranks = state.get("rng_by_rank", [state["rng"]])
    restore_rng_states(ranks[run.rank] if run.rank < len(ranks) else ranks[0], run.generators)
    if run.out_path is not None and run.is_main:
        # Rows written after the checkpoint (before a crash) will be evaluated again.
        (run.out_path / "history.csv").unlink(missing_ok=True)
        for row in run.history:
            _write_history_row(run.out_path / "history.csv", row)


def _train_step(run: _Run) -> None:
    """One optimisation step on a batch drawn (and noised) on the device."""
    indices = run.dataset.sample_indices("train", run.cfg.batch_size, run.generators["batch"])
    # Models that need more than images (pairs, factor labels) draw their own batch from the indices.
    make_batch = getattr(run.model, "training_batch", None)
    batch = (make_batch(run.dataset, indices, run.generators["noise"]) if make_batch is not None
             else run.dataset.batch(indices, noise=run.noise, generator=run.generators["noise"]))
    run.tracker.add(run.step, run.model.train_step(batch, run.step))
    run.step += 1


def _finish_training(run: _Run, progress: Any) -> None:
    """The model's own work after the last step, before the last evaluation (AbsAE / M-AE:
    ``rel_final_iterations``); its lines go above the progress bar, else to the log."""
    finish = getattr(run.model, "finish_training", None)
    if finish is None:
        return
    finish(run.step, (getattr(progress, "write", None) or log.info) if run.is_main else None)


def _fail_if_diverged(tracker: LossTracker) -> None:
    diverged = tracker.divergence()
    if diverged is not None:
        step, name, value = diverged
        raise WeakdisError(f"trial diverged at step {step}: loss {name!r} is {_format_value(value)}")


def _evaluate_and_record(run: _Run) -> dict[str, float]:
    """Evaluate (on rank 0), add the step, time and mean losses, and append the history row."""
    metrics = evaluate(run.model, run.dataset, run.cfg) if run.is_main else {key: math.nan for key in METRIC_KEYS}
    metrics.update(step=run.step, train_seconds=run.train_seconds, **run.tracker.means())
    run.tracker.reset()
    if run.is_main:
        run.history.append(metrics)
        if run.out_path is not None:
            _write_history_row(run.out_path / "history.csv", metrics)
    return metrics


def _save_checkpoint(run: _Run) -> str | None:
    """Write the checkpoint (rank 0; every rank's random states are gathered first)."""
    if run.checkpoint_path is None:
        return None
    rng = capture_rng_states(run.generators)
    state = {
        "step": run.step,
        "model": run.model.state_dict(),
        "rng": rng,
        "rng_by_rank": _gather_objects(rng, run.world_size),
        "history": run.history,
        "loop": {"train_seconds": run.train_seconds, "losses": run.tracker.state()},
    }
    if run.is_main:
        save_checkpoint(run.checkpoint_path, run.cfg, state)
        return str(run.checkpoint_path)
    return None


def _evaluation_steps(cfg: TrialConfig) -> set[int]:
    steps = set(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every)) if cfg.eval_every else set()
    steps.add(cfg.steps)
    return steps


def _gather_objects(value: Any, world_size: int) -> list[Any]:
    """Every rank's ``value`` (a collective: all ranks must call it)."""
    if world_size == 1:
        return [value]
    gathered: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(gathered, value)
    return gathered


RESUME_MAY_DIFFER = frozenset({"steps", "eval_every", "checkpoint_every", "log_every", "device", "compile"})


def _check_resumable(saved: TrialConfig, cfg: TrialConfig, where: Any) -> None:
    saved_values, values = saved.to_dict(), cfg.to_dict()
    for key in sorted(values):
        if key not in RESUME_MAY_DIFFER and saved_values.get(key) != values[key]:
            raise WeakdisError(
                f"cannot resume from '{where}': its {key}={saved_values.get(key)!r} differs from the "
                f"config's {key}={values[key]!r}"
            )


def load_trial(path: str | os.PathLike, device: str = "cpu") -> tuple[TrialConfig, torch.nn.Module, Any]:
    """(TrialConfig, trained model in eval mode, dataset) rebuilt from a checkpoint directory.

    ``path`` is a checkpoint directory written by ``train`` or a ``weakdis train`` output
    directory (its ``checkpoint/`` is used).
    """
    directory = Path(path)
    if not has_checkpoint(directory) and has_checkpoint(directory / "checkpoint"):
        directory = directory / "checkpoint"
    torch_device = resolve_device(device)
    cfg, state = load_checkpoint(directory, map_location=torch_device)
    cfg = cfg.replace(device=str(torch_device))
    dataset = load_trial_dataset(cfg, torch_device)
    model = build_trial_model(cfg, dataset).to(torch_device)
    load_model_state(model, state["model"], directory)
    model.eval()
    return cfg, model, dataset
