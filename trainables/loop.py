"""The training loop of one trial, runnable without Ray.

``train(cfg)`` loads the dataset version onto the device, builds the model, hands it the ``tau``
labelled samples, then runs ``cfg.steps`` iterations of ``model.train_step`` on batches gathered on
the device. Every ``eval_every`` steps and at the end it evaluates (``trainables.evaluation``),
appends a row to the history, calls ``report`` and writes a checkpoint.

Speed: batches are index gathers on the device; losses stay on the device and are summed there;
the host reads them back only at an evaluation or a divergence check (every ``log_every`` steps).
Determinism: Python, NumPy and torch are seeded with ``cfg.seed`` (+ rank under data parallel);
batch sampling and noise use their own ``torch.Generator``; all of these states are checkpointed,
so a resumed trial ends with the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import csv
import json
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
from trainables.errors import WeakdisError
from trainables.evaluation import METRIC_KEYS, evaluate

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
        self.first_bad_key = torch.zeros((), dtype=torch.int64, device=device)
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
        self.first_bad_key = torch.where(new, key_set * 1000 + position, self.first_bad_key)
        self.first_bad_value = torch.where(new, values[position], self.first_bad_value)

    def divergence(self) -> tuple[int, str, float] | None:
        """(step, loss name, value) of the first non-finite loss, or None."""
        step = int(self.first_bad_step.item())
        if step < 0:
            return None
        code = int(self.first_bad_key.item())
        name = self.key_sets[code // 1000][code % 1000]
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
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows + [row])
    os.replace(tmp, path)


def _write_json(path: Path, values: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    # NaN is written as NaN (Python's json): readable by json.load and pandas.
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True))
    os.replace(tmp, path)


def final_metrics_record(cfg: TrialConfig, metrics: dict[str, float]) -> dict[str, Any]:
    """metrics.json: the config columns of the results table and the final evaluation."""
    return {**{key: getattr(cfg, key) for key in CONFIG_COLUMNS}, **metrics}


def train(cfg: TrialConfig, out_dir: str | os.PathLike | None = None, report: ReportFn | None = None,
          checkpoint_dir: str | os.PathLike | None = None,
          resume_from: str | os.PathLike | None = None, progress: Any = None) -> TrialResult:
    """Run one trial; see the module docstring.

    ``out_dir``: when given, ``history.csv`` (one row appended per evaluation), ``metrics.json``
    (at the end) and, unless ``checkpoint_dir`` is given, the checkpoint in ``out_dir/checkpoint``.
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
    device = resolve_device(cfg.device)
    rank, world_size = distributed_rank()
    is_main = rank == 0
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None and is_main:
        out_path.mkdir(parents=True, exist_ok=True)
    ckpt_path = Path(checkpoint_dir) if checkpoint_dir is not None else (
        out_path / "checkpoint" if out_path is not None else None)

    seed_everything(cfg.seed + rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dataset = load_trial_dataset(cfg, device)
    model = build_trial_model(cfg, dataset).to(device)
    if cfg.tau > 0 and hasattr(model, "set_supervision"):
        labelled = dataset.labelled_indices(cfg.tau, cfg.seed)
        model.set_supervision(dataset.images[labelled.to(dataset.images.device)],
                              dataset.factors[labelled.to(dataset.factors.device)])

    batch_generator = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + 17 + rank)
    noise_generator = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + 29 + rank)
    generators = {"batch": batch_generator, "noise": noise_generator}
    noise = _noise_config(cfg)
    tracker = LossTracker(device)
    history: list[dict[str, float]] = []
    start_step = 0
    train_seconds = 0.0

    if resume_from is None and out_path is not None and is_main:
        (out_path / "history.csv").unlink(missing_ok=True)   # a fresh trial in a reused directory
    if resume_from is not None:
        saved_cfg, state = load_checkpoint(resume_from, map_location=device)
        _check_resumable(saved_cfg, cfg, resume_from)
        load_model_state(model, state["model"], resume_from)
        start_step = int(state["step"])
        history = list(state.get("history", []))
        train_seconds = float(state.get("loop", {}).get("train_seconds", 0.0))
        tracker.load_state(state.get("loop", {}).get("losses", {"sums": {}, "counts": {}}))
        ranks = state.get("rng_by_rank", [state["rng"]])
        restore_rng_states(ranks[rank] if rank < len(ranks) else ranks[0], generators)
        if out_path is not None and is_main:
            # Rows written after the checkpoint (before a crash) will be evaluated again.
            (out_path / "history.csv").unlink(missing_ok=True)
            for row in history:
                _write_history_row(out_path / "history.csv", row)

    # Precision (bf16 autocast) and compilation (cfg.compile) are the models' own business: they
    # read both from the config, autocast their networks and keep priors and losses in float32.
    model.train()
    eval_steps = _evaluation_steps(cfg)
    log_every = max(1, cfg.log_every)
    last_checkpoint: str | None = str(ckpt_path) if ckpt_path is not None and has_checkpoint(ckpt_path) else None
    metrics: dict[str, float] = history[-1] if history else {}

    def checkpoint(step: int) -> str | None:
        if ckpt_path is None:
            return None
        rng = capture_rng_states(generators)
        state = {
            "step": step,
            "model": model.state_dict(),
            "rng": rng,
            "rng_by_rank": _gather_objects(rng, world_size),
            "history": history,
            "loop": {"train_seconds": train_seconds, "losses": tracker.state()},
        }
        if is_main:
            save_checkpoint(ckpt_path, cfg, state)
            return str(ckpt_path)
        return None

    def fail_if_diverged() -> None:
        diverged = tracker.divergence()
        if diverged is not None:
            step, name, value = diverged
            raise WeakdisError(f"trial diverged at step {step}: loss {name!r} is {_format_value(value)}")

    started = time.perf_counter()
    step = start_step
    while step < cfg.steps:
        indices = dataset.sample_indices("train", cfg.batch_size, batch_generator)
        batch = dataset.batch(indices, noise=noise, generator=noise_generator)
        losses = model.train_step(batch, step)
        tracker.add(step, losses)
        step += 1
        if progress is not None:
            progress.update(step, tracker.means)
        evaluate_now = step in eval_steps
        if evaluate_now or step % log_every == 0:
            fail_if_diverged()
        if not evaluate_now and not (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            continue
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds += time.perf_counter() - started
        if evaluate_now:
            metrics = {key: math.nan for key in METRIC_KEYS}
            if is_main:
                metrics = evaluate(model, dataset, cfg)
            metrics.update(step=step, train_seconds=train_seconds, **tracker.means())
            tracker.reset()
            if is_main:
                history.append(metrics)
                if out_path is not None:
                    _write_history_row(out_path / "history.csv", metrics)
        saved = None
        if evaluate_now and (cfg.checkpoint_every == 0 or step % cfg.checkpoint_every == 0 or step == cfg.steps) \
                or (not evaluate_now and cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            saved = checkpoint(step)
            last_checkpoint = saved or last_checkpoint
        if evaluate_now and report is not None:
            report(metrics if is_main else {}, saved)
        started = time.perf_counter()

    if is_main and out_path is not None and metrics:
        _write_json(out_path / "metrics.json", final_metrics_record(cfg, metrics))
    return TrialResult(metrics=metrics, history=history, checkpoint_dir=last_checkpoint)


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
