"""What one trial runs: datasets, models, the training loop and its Ray wrappers.

Importing this package never imports Ray; the Ray Tune / Ray Train wrappers live in
``trainables.tune`` and are imported only by ``search``. ``TrialConfig`` and ``WeakdisError`` import
without torch too (``analysis`` reads trial configs); ``train``, ``evaluate``, ``load_trial`` and
``TrialResult`` import torch when first used.
"""
from __future__ import annotations

from typing import Any

from trainables.config import TrialConfig
from trainables.errors import WeakdisError

_LAZY = {"evaluate": "trainables.evaluation", "TrialResult": "trainables.loop", "load_trial": "trainables.loop",
         "train": "trainables.loop"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainables' has no attribute {name!r}")


__all__ = ["TrialConfig", "TrialResult", "WeakdisError", "evaluate", "load_trial", "train"]
