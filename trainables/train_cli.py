"""``weakdis train [CONFIG] [--set key=value ...] [--out DIR] [--resume | --overwrite]``: one trial,
locally, no Ray.

Writes into DIR: ``history.csv`` (a row per evaluation, appended as it happens), ``checkpoint/``,
``metrics.json`` (the final evaluation), ``environment.json`` (versions, device and CPU, an entry per
start or resume), ``reconstructions.png`` and, for models with a mixture
prior and a relational learner, ``prior_means.png`` and ``relations.png``; with the ``tracking``
extra installed, TensorBoard event files in ``tensorboard/``.

Progress: a tqdm bar (step, losses, images/s, time left) when stdout is a terminal, a plain line
every 10 seconds otherwise, and one line per evaluation; ``-q`` shows none of it.

A DIR holding an earlier run (any of those files) is refused unless ``--resume`` continues it or
``--overwrite`` replaces it, so an earlier history and checkpoint are never deleted by accident.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib.resources
import inspect
import io
import logging
import math
import re
import shutil
import sys
import time
import tokenize
from pathlib import Path
from typing import Any

from trainables.config import TrialConfig
from trainables.errors import WeakdisError
from weakdis.environment import ENVIRONMENT_FILE
from weakdis.registry import PROGRESS_NAMES

log = logging.getLogger(__name__)

PROGRESS_KEYS = PROGRESS_NAMES   # weakdis.registry: the columns marked progress=True
# What a `weakdis train` output directory holds; any of them marks an earlier run.
RUN_FILES = ("history.csv", "metrics.json", ENVIRONMENT_FILE, "checkpoint", "checkpoint.previous",
             "reconstructions.png", "prior_means.png", "relations.png", "tensorboard", "factor_interpolation.png")

PACKAGED_TRAIN_CONFIGS = "train"      # configs/train/*.yaml, shipped as search.configs data

# What each TrialConfig key means, for keys whose line in trainables/config.py carries no comment
# (a commented field's comment is used as it is). tests/test_loop_cli.py checks that every field of
# TrialConfig gets a meaning, so a new key cannot appear in --help without one.
KEY_MEANINGS = {
    "model": "model family: absae, mae, betavae, factorvae, betatcvae",
    "dataset": "'dataset:version', e.g. dsprites:v2, shapes3d:v3 (docs/data.md)",
    "steps": "training iterations",
    "batch_size": "images per training step",
    "lr": "learning rate (Adam)",
    "latent_dim": "code size (mae: the size of each factor's partition)",
    "beta": "weight of the prior / KL / TC term",
    "gamma": "weight of the relational learner's loss (AbsAE / M-AE)",
    "tau": "labelled training samples (fit the mixture prior; 0 = none)",
    "alpha": "acceptance threshold of clustering / relation accuracy, in [0, 1]",
    "warmup_steps": "AbsAE / M-AE: steps before the mixture prior is fitted",
    "eval_every": "steps between evaluations (0 = only at the end)",
    "eval_points": "test points the metrics use at an evaluation",
    "seed": "seed of everything: splits, supervision, batches, weights",
    "device": "auto (cuda when available), cpu, cuda or cuda:N",
    "precision": "fp32 or bf16 (autocast networks; priors and losses stay fp32)",
    "rel_batch_size": "AbsAE / M-AE: prior samples per relational-learner step",
    "rel_lr": "learning rate of the relational learner (null = lr)",
    "disc_lr": "learning rate of the discriminator (null = lr)",
    "compile": "torch.compile the networks (true / false)",
    "extra": "a model's own extras, a mapping (e.g. in CONFIG: extra: {fit_batch_size: 256})",
}

# Model extras whose line in the model's config dataclass carries no comment.
EXTRA_MEANINGS = {
    "dataset_size": "N of minibatch-weighted sampling (null = the training split's size)",
}

EPILOG_EXAMPLES = """\
examples:
  weakdis train --set model=absae --set steps=300 --set batch_size=64
  weakdis train absae-dsprites --set seed=3 --out runs/absae-s3    (a packaged train config)
  weakdis train my-trial.yaml --set device=cuda --set batch_size=1024
  weakdis train --resume --set steps=5000 --out runs/absae-s3      (continue a stopped trial)
  weakdis train --set steps=300 | tee train.log                    (plain progress lines)
"""


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the trailing ``# comment`` of each field's line in ``cls``'s source
    (and its dataclass bases'); empty when the source is not available."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        line_comments: dict[int, tuple[int, str]] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                line_comments[token.start[0]] = (token.start[1], token.string.lstrip("#").strip())
        lines = source.splitlines()
        for number, line in enumerate(lines, start=1):
            match = re.match(r"\s+([A-Za-z_]\w*)\s*:", line)
            if not (match and number in line_comments):
                continue
            column, text = line_comments[number]
            # a comment continued on the next lines, aligned with it, belongs to the field too
            following = number + 1
            while following in line_comments and line_comments[following][0] == column \
                    and lines[following - 1].strip().startswith("#"):
                text += " " + line_comments[following][1]
                following += 1
            comments[match.group(1)] = text
    return comments


def _default_text(spec: dataclasses.Field) -> str:
    if spec.default is not dataclasses.MISSING:
        value = spec.default
    elif spec.default_factory is not dataclasses.MISSING:   # type: ignore[misc]
        value = spec.default_factory()                     # type: ignore[misc]
    else:
        return "required"
    if value == "":
        return "''"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def key_help_rows(cls: type = TrialConfig, meanings: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every field of the config dataclass ``cls``, in field order."""
    comments = field_comments(cls)
    meanings = KEY_MEANINGS if meanings is None else meanings
    return [(f.name, _default_text(f), meanings.get(f.name) or comments.get(f.name, ""))
            for f in dataclasses.fields(cls)]


def model_extra_rows() -> dict[str, list[tuple[str, str, str]]]:
    """Per model, (key, default, meaning) of the extras its config dataclass adds (set through
    ``extra``); imports the models (torch)."""
    from trainables.models import MODEL_CLASSES

    rows: dict[str, list[tuple[str, str, str]]] = {}
    for name, model_cls in MODEL_CLASSES.items():
        config_cls = model_cls.config_cls
        extras = set(config_cls.extra_keys())
        comments = field_comments(config_cls)
        rows[name] = [(f.name, _default_text(f), EXTRA_MEANINGS.get(f.name) or comments.get(f.name, ""))
                      for f in dataclasses.fields(config_cls) if f.name in extras]
    return rows


def keys_epilog(with_extras: bool = True) -> str:
    """The --help text listing every --set key with its default and meaning."""
    rows = key_help_rows()
    width = max(len(k) for k, _, _ in rows) + 2
    dwidth = min(max(len(d) for _, d, _ in rows), 12) + 2
    lines = ["keys (--set KEY=VALUE or in CONFIG; default, meaning):"]
    lines += [f"  {key:<{width}}{default:<{dwidth}}{meaning}" for key, default, meaning in rows]
    if with_extras:
        try:
            extras = model_extra_rows()
        except Exception as error:  # pragma: no cover - the models failed to import
            extras = {}
            log.debug("model extras not listed: %s", error)
        if any(extras.values()):
            lines.append("")
            lines.append("model extras (in CONFIG under extra:, e.g. extra: {fit_batch_size: 256}):")
            name_width = max(len(f"{model}.{key}") for model, model_rows in extras.items() for key, _, _ in model_rows) + 2
            for model, model_rows in extras.items():
                for key, default, meaning in model_rows:
                    lines.append(f"  {model + '.' + key:<{name_width}}{default:<{dwidth}}{meaning}".rstrip())
    return "\n".join(lines) + "\n\n" + EPILOG_EXAMPLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = keys_epilog()
    parser.add_argument("config", nargs="?", default=None,
                        help="YAML file of trial config keys, or a packaged train config by name "
                             f"({', '.join(packaged_train_configs()) or 'none'}); default: the defaults below")
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


def packaged_train_configs() -> list[str]:
    """Names of the packaged train configs (configs/train/*.yaml), without .yaml."""
    try:
        folder = importlib.resources.files("search.configs") / PACKAGED_TRAIN_CONFIGS
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        return []


def read_config_file(path: str | Path) -> dict[str, Any]:
    import yaml

    file = Path(path)
    text = None
    if not file.is_file():
        name = str(path).removesuffix(".yaml").removesuffix(".yml")
        if "/" not in name and name in packaged_train_configs():
            text = (importlib.resources.files("search.configs") / PACKAGED_TRAIN_CONFIGS / f"{name}.yaml").read_text()
        else:
            packaged = ", ".join(packaged_train_configs())
            raise WeakdisError(f"config file '{file}': not found (packaged train configs: {packaged or 'none'})")
    try:
        values = yaml.safe_load(text if text is not None else file.read_text()) or {}
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
    from trainables.models.capabilities import HasMixturePrior, HasRelationalLearner

    written = [save_png(reconstruction_grid(model, dataset, n=8, seed=seed), out_dir / "reconstructions.png")]
    if isinstance(model, HasMixturePrior) and model.prior is not None:
        written.append(save_png(prior_means_grid(model), out_dir / "prior_means.png"))
    if isinstance(model, HasRelationalLearner) and model.relations:
        written.append(save_png(relation_grid(model, dataset, n=4, seed=seed), out_dir / "relations.png"))
    if hasattr(model, "code_dim") and hasattr(dataset, "paired_batch") and hasattr(model.config, "factor_dim"):
        from trainables.images import factor_interpolation_grid

        written.append(save_png(factor_interpolation_grid(model, dataset, n=4, seed=seed),
                                out_dir / "factor_interpolation.png"))
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
    from trainables.logs import is_quiet
    from trainables.progress import TrainProgress
    from trainables.tracking import TensorBoardLogger

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
    quiet = is_quiet()
    say = (lambda line: None) if quiet else (lambda line: print(line, flush=True))
    say(f"weakdis train: {cfg.model} on {cfg.dataset}, {cfg.steps} steps -> {out_dir}")
    progress = TrainProgress(cfg.steps, cfg.batch_size, stream=sys.stdout, enabled=not quiet)
    tensorboard = TensorBoardLogger.create(out_dir)
    if tensorboard is not None and resume_from is None:
        for old in (out_dir / "tensorboard").glob("events.out.tfevents.*"):
            old.unlink()     # a fresh trial in a reused directory, as history.csv

    def report(metrics: dict[str, float], checkpoint_dir: str | None) -> None:
        progress.write(_progress_line(cfg, metrics))
        if tensorboard is not None:
            tensorboard.evaluation(metrics)

    try:
        result = train(cfg, out_dir=out_dir, report=report, resume_from=resume_from, progress=progress)
    finally:
        progress.close()
        if tensorboard is not None and sys.exc_info()[0] is not None:
            tensorboard.close()
    _, model, dataset = load_trial(result.checkpoint_dir or out_dir / "checkpoint", device=cfg.device)
    grids = write_image_grids(model, dataset, out_dir, cfg.seed)
    if tensorboard is not None:
        import matplotlib.image

        tensorboard.images({p.stem: (matplotlib.image.imread(p)[..., :3] * 255).round().astype("uint8")
                            for p in grids}, step=int(result.metrics.get("step", cfg.steps)))
        tensorboard.close()
        grids.append(tensorboard.log_dir)
    say(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'history.csv'}, {out_dir / 'checkpoint'}, "
        + ", ".join(str(p) for p in grids))
    return 0
