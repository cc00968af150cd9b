"""Trial checkpoints: one directory holding ``state.pt`` and ``config.json``, written atomically.

Layout of a checkpoint directory::

    config.json   the TrialConfig (TrialConfig.to_dict)
    state.pt      {"format": 2, "step": int, "model": model.state_dict(), "rng": {...},
                   "history": [...], "loop": {...}} (torch.save)

Safety: ``state.pt`` holds only tensors and plain containers of numbers and strings (RNG states
are stored as tensors and lists, see :func:`capture_rng_states`), and it is read with
``torch.load(weights_only=True)``, whose unpickler refuses anything else. Loading a checkpoint from
someone else's run directory therefore never runs code from it; a file that needs more than plain
data is refused with a one-line error.

``save_checkpoint`` writes into a temporary sibling directory and renames it into place, so a
reader never sees half a checkpoint. The checkpoint it replaces is kept at ``<dir>.previous``;
``load_checkpoint`` falls back to it when ``<dir>`` is missing, incomplete or unreadable (a crash
between the renames, a damaged disk block).
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
FORMAT_VERSION = 2


def capture_rng_states(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global RNGs and of the named generators, as
    tensors and plain lists (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "generators": {name: gen.get_state() for name, gen in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Inverse of :func:`capture_rng_states`; generators missing from ``states`` keep their state."""
    python = states["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss"]))
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
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
        if target.exists() and _readable_dir(target) == target:
            # Keep the checkpoint being replaced as the fallback; a damaged or partial target is
            # dropped instead, so that .previous always holds the last complete checkpoint.
            if previous.exists():
                shutil.rmtree(previous)
            os.rename(target, previous)
        elif target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` (or its fallback ``<dir>.previous``) holds a complete checkpoint."""
    return _readable_dir(Path(directory)) is not None


def _readable_dir(directory: Path) -> Path | None:
    found = _candidates(directory)
    return found[0] if found else None


def _candidates(directory: Path) -> list[Path]:
    return [candidate for candidate in (directory, directory.parent / f"{directory.name}.previous")
            if (candidate / STATE_FILE).is_file() and (candidate / CONFIG_FILE).is_file()]


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[TrialConfig, dict[str, Any]]:
    """Read a checkpoint directory -> (TrialConfig, state dict), falling back to ``<dir>.previous``
    when ``<dir>`` cannot be read. Never unpickles code (``weights_only=True``)."""
    path = Path(directory)
    candidates = _candidates(path)
    if not candidates:
        raise WeakdisError(
            f"checkpoint directory '{path}': expected files {STATE_FILE} and {CONFIG_FILE}, found none"
        )
    first_error: WeakdisError | None = None
    for found in candidates:
        try:
            return _load_one(found, map_location)
        except WeakdisError as error:
            first_error = first_error or error
    assert first_error is not None
    raise first_error


def _load_one(found: Path, map_location: str | torch.device) -> tuple[TrialConfig, dict[str, Any]]:
    try:
        config_values = json.loads((found / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeakdisError(f"checkpoint file '{found / CONFIG_FILE}': not valid JSON ({error})") from None
    if not isinstance(config_values, dict):
        raise WeakdisError(f"checkpoint file '{found / CONFIG_FILE}': expected a JSON object of trial config keys")
    config = TrialConfig.from_dict(config_values, source=str(found / CONFIG_FILE))
    state = read_state_file(found / STATE_FILE, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        found_format = state.get("format") if isinstance(state, dict) else None
        raise WeakdisError(
            f"checkpoint file '{found / STATE_FILE}': expected a weakdis checkpoint of format {FORMAT_VERSION}"
            + (f", found format {found_format!r} (written by an older weakdis; rerun the trial)"
               if found_format is not None else "")
        )
    return config, state


def read_state_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, so a file with a
    pickled object (which could run code) is refused with a WeakdisError naming the file."""
    import pickle
    import re
    import zipfile

    if not zipfile.is_zipfile(path):
        raise WeakdisError(f"checkpoint file '{path}': cannot be read (not a file written by torch.save); "
                           "expected a weakdis checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {found.group(1)}" if found else "pickled objects"
        raise WeakdisError(
            f"checkpoint file '{path}': refused, it holds {what}, not only tensors and plain data; "
            "weakdis loads checkpoints with weights_only=True and never unpickles code"
        ) from None
    except Exception as error:  # torch raises many types for a damaged file
        raise WeakdisError(f"checkpoint file '{path}': cannot be read ({' '.join(str(error).split())[:200]})") from None


def load_model_state(model: torch.nn.Module, state: Any, where: str | os.PathLike) -> None:
    """``model.load_state_dict(state)`` with a one-line error when the weights do not fit the model
    (another model, latent size or dataset version than the config says)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = "; ".join(lines[:3])[:300]
        raise WeakdisError(
            f"checkpoint '{where}': its weights do not fit the {type(model).__name__} built from its "
            f"config ({detail})"
        ) from None
