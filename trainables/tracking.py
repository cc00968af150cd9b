"""Experiment tracking for ``weakdis train``: TensorBoard event files beside ``history.csv``.

When the ``tensorboard`` package is installed (``pip install -e ".[tracking]"``), ``weakdis train``
writes ``<out>/tensorboard/events.out.tfevents.*``: at every evaluation one scalar per numeric
column of the history row (losses as ``loss/<name>``, metrics as ``metrics/<column>``,
``time/train_seconds``), tagged with the step; and at the end the image grids
(``images/reconstructions``, ``images/prior_means``, ``images/relations``). ``tensorboard --logdir
weakdis-train`` shows every trial of a directory side by side. Without the package nothing is
written and nothing fails.

Sweeps do not use this module: Ray Tune writes its own TensorBoard files per trial (see
docs/search.md), and the sweep YAML's ``callbacks:`` adds MLflow or W&B.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def scalar_tag(column: str) -> str:
    """The TensorBoard tag of a history column: ``loss/ae``, ``metrics/dci``, ``time/train_seconds``."""
    if column.startswith("loss_"):
        return f"loss/{column[5:]}"
    if column in ("train_seconds",):
        return f"time/{column}"
    return f"metrics/{column}"


class TensorBoardLogger:
    """Writes evaluations and image grids of one training run as TensorBoard event files.

    ``TensorBoardLogger.create(out_dir)`` returns None when tensorboard is not installed. The event
    file is created at the first write, so a run that fails before its first evaluation (a checkpoint
    that does not fit, a bad config) leaves nothing behind."""

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    @property
    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    @classmethod
    def create(cls, out_dir: str | os.PathLike) -> "TensorBoardLogger | None":
        if not tensorboard_available():
            log.debug("tensorboard is not installed: no TensorBoard files (pip install 'weakdis[tracking]')")
            return None
        return cls(Path(out_dir) / TENSORBOARD_DIR)

    def evaluation(self, metrics: Mapping[str, Any]) -> None:
        """One history row: every finite numeric column except ``step`` as a scalar at ``step``."""
        if not metrics:
            return
        step = int(metrics.get("step", 0))
        for column, value in metrics.items():
            if column == "step" or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                continue
            value = float(value)
            if math.isfinite(value):
                self.writer.add_scalar(scalar_tag(column), value, global_step=step)
        self.writer.flush()

    def images(self, grids: Mapping[str, np.ndarray], step: int) -> None:
        """uint8 [H, W, 3] grids as images ``images/<name>`` at ``step``."""
        for name, grid in grids.items():
            self.writer.add_image(f"images/{name}", np.asarray(grid), global_step=step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


__all__ = ["TENSORBOARD_DIR", "TensorBoardLogger", "scalar_tag", "tensorboard_available"]
