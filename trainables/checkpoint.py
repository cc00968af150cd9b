"""Trial checkpoints: one directory holding ``state.pt`` and ``config.json``, written atomically.

Layout of a checkpoint directory::

    config.json   the TrialConfig (TrialConfig.to_dict)
    state.pt      {"format": 1, "step": int, "model": model.state_dict(), "rng": {...},
                   "history": [...], "loop": {...}} (torch.save)

``save_checkpoint`` writes into a temporary sibling directory and renames it into place, so a
reader never sees half a checkpoint: a crash leaves either the previous checkpoint or the new one
(if it happens between the two renames, the previous one is still at ``<dir>.previous`` and
``load_checkpoint`` falls back to it).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.errors import WeakdisError

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


def capture_rng_states(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global RNGs and of the named generators."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: gen.get_state() for name, gen in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Inverse of :func:`capture_rng_states`; generators missing from ``states`` keep their state."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    for name, state in states.get("generators", {}).items():
        if name in generators:
            generators[name].set_state(state)


def save_checkpoint(directory: str | os.PathLike, config: TrialConfig, state: dict[str, Any]) -> Path:
    """Write ``state`` and ``config`` to ``directory`` atomically (replacing what is there)."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        torch.save({"format": FORMAT_VERSION, **state}, staging / STATE_FILE)
        (staging / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
        previous = target.parent / f"{target.name}.previous"
        if previous.exists():
            shutil.rmtree(previous)
        if target.exists():
            os.rename(target, previous)
        os.rename(staging, target)
        if previous.exists():
            shutil.rmtree(previous)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` (or its fallback ``<dir>.previous``) holds a complete checkpoint."""
    return _readable_dir(Path(directory)) is not None


def _readable_dir(directory: Path) -> Path | None:
    for candidate in (directory, directory.parent / f"{directory.name}.previous"):
        if (candidate / STATE_FILE).is_file() and (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[TrialConfig, dict[str, Any]]:
    """Read a checkpoint directory -> (TrialConfig, state dict)."""
    path = Path(directory)
    found = _readable_dir(path)
    if found is None:
        raise WeakdisError(
            f"checkpoint directory '{path}': expected files {STATE_FILE} and {CONFIG_FILE}, found none"
        )
    try:
        config_values = json.loads((found / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise WeakdisError(f"checkpoint file '{found / CONFIG_FILE}': not valid JSON ({error})") from None
    config = TrialConfig.from_dict(config_values, source=str(found / CONFIG_FILE))
    try:
        # Our own file: it holds RNG states (tuples, numpy arrays), so not weights-only.
        state = torch.load(found / STATE_FILE, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many types for a damaged file
        raise WeakdisError(f"checkpoint file '{found / STATE_FILE}': cannot be read ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise WeakdisError(
            f"checkpoint file '{found / STATE_FILE}': expected a weakdis checkpoint of format {FORMAT_VERSION}"
        )
    return config, state
