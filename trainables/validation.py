"""Checks of a trial config against the world, before anything runs or is written.

``TrialConfig.validate`` checks each value on its own (types, ranges); this module checks what
needs more: the dataset version exists in the version registry, the device is one torch knows,
``tau`` fits the version's training split, a ``data_path`` is a readable file of that dataset.
``weakdis train`` calls :func:`check_trial_inputs` before it creates its output directory, and the
sweep schema calls it for every model family before Ray starts, so a bad value is one line naming
the key instead of every trial failing inside Ray.

Value coercion (strings to numbers) is not done here; see ``trainables.config``.
"""
from __future__ import annotations

import functools
import math
import os
import re
from typing import Any

from trainables.config import TrialConfig
from trainables.errors import WeakdisError
from weakdis.registry import model_entry

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
DEVICE_EXPECTED = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
TRAIN_FRACTION = 0.7   # trainables.data.dataset.SPLIT_FRACTIONS: train/val/test 70/10/20


def check_device_name(name: Any, source: str = "trial config") -> None:
    """A device name torch can use for training: auto, cpu, cuda, cuda:N or mps (not 'tpu', 'gpu')."""
    if not isinstance(name, str) or not DEVICE_PATTERN.match(name.strip()):
        raise WeakdisError(f"{source}: device={name!r} is invalid; expected {DEVICE_EXPECTED}")


def check_finite_numbers(values: dict[str, Any], source: str = "trial config") -> None:
    """No NaN or infinity among the numeric values (YAML ``.inf``, ``--set lr=nan``)."""
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise WeakdisError(f"{source}: {key}={value!r} is invalid; expected a finite number")
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan", ".inf", ".nan"):
            raise WeakdisError(f"{source}: {key}={value!r} is invalid; expected a finite number")


def check_dataset_version(name: str, source: str = "trial config"):
    """The VersionSpec of ``dataset:version`` from the registry; a one-line error naming the known ones."""
    from trainables.data.digits import DIGIT_VERSIONS
    from trainables.data.versions import VERSIONS

    spec = VERSIONS.get(str(name).strip()) or DIGIT_VERSIONS.get(str(name).strip())
    if spec is None:
        raise WeakdisError(f"{source}: dataset={name!r} is not a known dataset version; expected one of "
                           f"{', '.join([*VERSIONS, *DIGIT_VERSIONS])}")
    return spec


def version_rows(cfg: TrialConfig, source: str = "trial config") -> int:
    """How many images of ``cfg.dataset`` the trial loads: the generated subset's size, or the number
    of the version's rows in ``cfg.data_path`` (whose labels are read, not its images)."""
    spec = check_dataset_version(cfg.dataset, source)
    if spec.dataset == "hwf":
        from trainables.data.hwf import count_rows

        rows = count_rows(spec, cfg.data_path)
        return rows if cfg.data_images is None else min(rows, int(cfg.data_images))
    if spec.dataset in ("rotdigits", "colordigits"):
        from trainables.data.digits import mnist_digits, sklearn_digits

        rows = len((sklearn_digits if cfg.data_path is None else mnist_digits)(cfg.data_path or 28)[1])
        return rows if cfg.data_images is None else min(rows, int(cfg.data_images))
    if cfg.data_path is None:
        rows = _official_row_count(spec.name)
        return rows if cfg.data_images is None else min(rows, int(cfg.data_images))
    from trainables.data.formats import read_labels

    path = os.path.expanduser(cfg.data_path)
    if not os.path.isfile(path):
        raise WeakdisError(f"{source}: data_path={cfg.data_path!r}: no such file; expected an official-format "
                           f"{spec.dataset} file")
    try:
        contents = read_labels(path, spec.dataset)
    except WeakdisError as error:
        raise WeakdisError(f"{source}: data_path={cfg.data_path!r}: {error}") from None
    except (OSError, ValueError, KeyError) as error:
        raise WeakdisError(f"{source}: data_path={cfg.data_path!r}: not a readable {spec.dataset} file "
                           f"({' '.join(str(error).split())[:200]})") from None
    keep, _ = spec.select(contents.classes)
    return int(keep.sum())


@functools.lru_cache(maxsize=None)
def _official_row_count(version: str) -> int:
    from trainables.data.versions import VERSIONS

    return len(VERSIONS[version].official_rows())


def training_split_size(cfg: TrialConfig, source: str = "trial config") -> int:
    return int(TRAIN_FRACTION * version_rows(cfg, source))


def check_tau(cfg: TrialConfig, source: str = "trial config") -> None:
    """``tau`` labelled samples must exist in the training split, and a mixture prior needs at least
    one labelled sample per component."""
    if cfg.tau <= 0:
        return
    spec = check_dataset_version(cfg.dataset, source)
    # Every component of a mixture prior needs a labelled sample, so tau must be at least their count
    # (weakdis.registry: one per combination of factor values, or one per value of each factor).
    kind = model_entry(cfg.model).prior_components
    needed = spec.num_combinations if kind == "combinations" else max(spec.factor_sizes) if kind else 0
    if cfg.tau < needed:
        raise WeakdisError(
            f"{source}: tau={cfg.tau} is invalid for model {cfg.model} on {cfg.dataset}: its prior has "
            f"{needed} components, each needing a labelled sample, so expected tau >= {needed}"
        )
    available = training_split_size(cfg, source)
    if cfg.tau > available:
        where = f"data_images={cfg.data_images}" if cfg.data_path is None else f"data_path={cfg.data_path!r}"
        raise WeakdisError(
            f"{source}: tau={cfg.tau} is invalid; the training split of {cfg.dataset} ({where}) holds "
            f"{available} images, so expected tau <= {available}"
        )


def check_model_hyperparameters(cfg: TrialConfig, source: str = "trial config") -> None:
    """The model's own checks on its hyperparameters (e.g. an option's value), before any data is
    loaded: the same validation the model runs when it is built."""
    from trainables.models import model_class   # imports torch: only when a model is named

    try:
        model_class(cfg.model).config_cls.from_trial_config(cfg, None, model_name=cfg.model)
    except WeakdisError as error:
        raise WeakdisError(f"{source}: {error}") from None


def check_trial_inputs(cfg: TrialConfig, source: str = "trial config") -> None:
    """Every check above, for one trial config."""
    check_finite_numbers(cfg.to_dict(), source)
    check_device_name(cfg.device, source)
    check_dataset_version(cfg.dataset, source)
    check_tau(cfg, source)
    check_model_hyperparameters(cfg, source)
