"""``weakdis train [CONFIG] [--set key=value ...] [--out DIR] [--resume]``: one trial, locally, no Ray.

Writes into DIR: ``history.csv`` (a row per evaluation, appended as it happens), ``checkpoint/``,
``metrics.json`` (the final evaluation), ``reconstructions.png`` and, for models with a mixture
prior and a relational learner, ``prior_means.png`` and ``relations.png``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from trainables.config import TrialConfig
from trainables.errors import WeakdisError

PROGRESS_KEYS = ("recon_error", "dci", "mig", "sap", "clustering_accuracy", "relation_accuracy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=None,
                        help="YAML file of trial config keys (default: the TrialConfig defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one trial config key; repeat for more")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output directory (default: ./weakdis-train/<model>-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from DIR/checkpoint (CONFIG defaults to the checkpoint's config)")


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


def run(args: argparse.Namespace) -> int:
    from trainables.checkpoint import has_checkpoint, load_checkpoint
    from trainables.loop import load_trial, train

    resume_from = None
    base = None
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
    print(f"weakdis train: {cfg.model} on {cfg.dataset}, {cfg.steps} steps -> {out_dir}", flush=True)

    def report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        print(_progress_line(cfg, metrics), flush=True)

    result = train(cfg, out_dir=out_dir, report=report, resume_from=resume_from)
    _, model, dataset = load_trial(result.checkpoint_dir or out_dir / "checkpoint", device=cfg.device)
    grids = write_image_grids(model, dataset, out_dir, cfg.seed)
    print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'history.csv'}, {out_dir / 'checkpoint'}, "
          + ", ".join(str(p) for p in grids), file=sys.stdout)
    return 0
