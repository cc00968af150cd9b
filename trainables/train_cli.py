"""``weakdis train [CONFIG] [--set key=value ...] [--out DIR] [--resume | --overwrite]``: one trial,
locally, no Ray.

Writes into DIR: ``history.csv`` (a row per evaluation, appended as it happens), ``checkpoint/``,
``metrics.json`` (the final evaluation), ``reconstructions.png`` and, for models with a mixture
prior and a relational learner, ``prior_means.png`` and ``relations.png``.

A DIR holding an earlier run (any of those files) is refused unless ``--resume`` continues it or
``--overwrite`` replaces it, so an earlier history and checkpoint are never deleted by accident.
"""
from __future__ import annotations

import argparse
import errno
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from trainables.config import TrialConfig
from trainables.errors import WeakdisError

PROGRESS_KEYS = ("recon_error", "dci", "mig", "sap", "clustering_accuracy", "relation_accuracy")
# What a `weakdis train` output directory holds; any of them marks an earlier run.
RUN_FILES = ("history.csv", "metrics.json", "checkpoint", "checkpoint.previous", "reconstructions.png",
             "prior_means.png", "relations.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=None,
                        help="YAML file of trial config keys (default: the TrialConfig defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one trial config key; repeat for more")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output directory (default: ./weakdis-train/<model>-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from DIR/checkpoint (CONFIG defaults to the checkpoint's config)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the earlier run in DIR (its history, checkpoint and images are deleted)")


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WeakdisError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set steps=300")
        values[key.strip()] = value.strip()
    return values


def read_config_file(path: str | Path) -> dict[str, Any]:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise WeakdisError(f"config file '{file}': not found")
    try:
        values = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise WeakdisError(f"config file '{file}': not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(values, dict):
        raise WeakdisError(f"config file '{file}': expected a mapping of trial config keys, got {type(values).__name__}")
    return values


def resolve_config(config_path: str | None, overrides: list[str], base: dict[str, Any] | None = None) -> TrialConfig:
    """File values (or ``base``), then ``--set`` overrides, validated as a TrialConfig."""
    values: dict[str, Any] = dict(base or {})
    source = "trial config"
    if config_path is not None:
        values.update(read_config_file(config_path))
        source = f"config file '{config_path}'"
    values.update(parse_overrides(overrides))
    return TrialConfig.from_dict(values, source=source if not overrides else f"{source} with --set")


def _progress_line(cfg: TrialConfig, metrics: dict[str, float]) -> str:
    parts = [f"step {int(metrics['step'])}/{cfg.steps}"]
    for key in PROGRESS_KEYS:
        value = metrics.get(key, math.nan)
        if not math.isnan(value):
            parts.append(f"{key} {value:.4g}")
    losses = [f"{k[5:]} {v:.4g}" for k, v in metrics.items() if k.startswith("loss_")]
    if losses:
        parts.append("losses: " + ", ".join(losses))
    parts.append(f"{metrics['train_seconds']:.1f}s")
    return "  ".join(parts)


def write_image_grids(model: Any, dataset: Any, out_dir: Path, seed: int) -> list[Path]:
    from trainables.images import prior_means_grid, reconstruction_grid, relation_grid, save_png

    written = [save_png(reconstruction_grid(model, dataset, n=8, seed=seed), out_dir / "reconstructions.png")]
    if getattr(model, "prior", None) is not None:
        written.append(save_png(prior_means_grid(model), out_dir / "prior_means.png"))
    if hasattr(model, "relational_model") and getattr(model, "relations", None):
        written.append(save_png(relation_grid(model, dataset, n=4, seed=seed), out_dir / "relations.png"))
    return written


def earlier_run_files(out_dir: Path) -> list[str]:
    """The names of an earlier run's files in ``out_dir`` (empty when it is new or empty)."""
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise WeakdisError(f"--out '{out_dir}': is a file; expected a directory (new, empty or an earlier run)")
    return [name for name in RUN_FILES if (out_dir / name).exists()]


def check_out_dir(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a directory holding an earlier run unless --resume or --overwrite says what to do."""
    if resume and overwrite:
        raise WeakdisError("--resume and --overwrite exclude each other: continue the run in --out or replace it")
    earlier = earlier_run_files(out_dir)
    if earlier and not resume and not overwrite:
        raise WeakdisError(
            f"--out '{out_dir}' holds an earlier run ({', '.join(earlier)}); pass --resume to continue it, "
            "--overwrite to replace it, or another --out"
        )


def remove_earlier_run(out_dir: Path) -> None:
    for name in earlier_run_files(out_dir):
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def run(args: argparse.Namespace) -> int:
    """`weakdis train`; OS-level failures (a full disk, a read-only directory, a name taken by a
    file) and arithmetic overflows become one-line errors naming the file or value."""
    try:
        return _run(args)
    except OverflowError as error:
        raise WeakdisError(f"a config value is out of range ({error}); expected finite numbers") from None
    except OSError as error:
        raise WeakdisError(os_error_message(error)) from None


def os_error_message(error: OSError) -> str:
    """``'<file>': <what went wrong>`` for an OSError, e.g. a full disk while writing a checkpoint."""
    where = error.filename if error.filename is not None else "a file"
    reason = error.strerror or errno.errorcode.get(error.errno or 0, "") or str(error)
    if error.errno == errno.ENOSPC:
        reason += "; free some space or write elsewhere with --out"
    return f"cannot write or read '{where}': {reason}"


def _run(args: argparse.Namespace) -> int:
    from trainables.checkpoint import has_checkpoint, load_checkpoint
    from trainables.loop import load_trial, train

    resume_from = None
    base = None
    if args.resume and getattr(args, "overwrite", False):
        raise WeakdisError("--resume and --overwrite exclude each other: continue the run in --out or replace it")
    if getattr(args, "overwrite", False) and args.out is None:
        raise WeakdisError("--overwrite needs --out DIR: the directory of the run to replace")
    if args.resume:
        if args.out is None:
            raise WeakdisError("--resume needs --out DIR: the directory of the trial to continue")
        resume_from = Path(args.out) / "checkpoint"
        if not has_checkpoint(resume_from):
            raise WeakdisError(f"--resume: '{resume_from}' holds no checkpoint to continue from")
        if args.config is None:
            base = load_checkpoint(resume_from)[0].to_dict()
    cfg = resolve_config(args.config, args.overrides, base)
    out_dir = Path(args.out) if args.out else Path("weakdis-train") / f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_out_dir(out_dir, args.resume, getattr(args, "overwrite", False))
    from trainables.loop import resolve_device
    from trainables.validation import check_trial_inputs

    # Everything that can be checked is checked before anything is written.
    check_trial_inputs(cfg, source=f"config file '{args.config}'" if args.config else "trial config")
    resolve_device(cfg.device)
    if getattr(args, "overwrite", False):
        remove_earlier_run(out_dir)
    print(f"weakdis train: {cfg.model} on {cfg.dataset}, {cfg.steps} steps -> {out_dir}", flush=True)

    def report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        print(_progress_line(cfg, metrics), flush=True)

    result = train(cfg, out_dir=out_dir, report=report, resume_from=resume_from)
    _, model, dataset = load_trial(result.checkpoint_dir or out_dir / "checkpoint", device=cfg.device)
    grids = write_image_grids(model, dataset, out_dir, cfg.seed)
    print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'history.csv'}, {out_dir / 'checkpoint'}, "
          + ", ".join(str(p) for p in grids), file=sys.stdout)
    return 0
