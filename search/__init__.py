"""Sweeps: config schema, search spaces, Optuna searchers inside Ray Tune, the command line.

The names below are loaded on first use, so that ``weakdis train`` and ``weakdis data`` (whose
dispatcher lives in this package) never import Ray.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SweepConfig": "search.schema",
    "load_sweep_config": "search.schema",
    "parse_sweep_config": "search.schema",
    "build_searcher": "search.space",
    "grid_points": "search.space",
    "total_trials": "search.space",
    "run_sweep": "search.runner",
    "resume_sweep": "search.runner",
    "SweepOutcome": "search.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'search' has no attribute {name!r}")
