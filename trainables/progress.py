"""Progress of long work: the training progress bar and counted work (dataset generation, downloads).

Where a person watches a terminal, a tqdm bar; anywhere else (a pipe, a log file, a Ray trial) plain
lines, at most one every ``interval`` seconds, so that a log stays readable.

* :class:`TrainProgress` is the callback ``trainables.loop.train(..., progress=)`` calls once per
  step with the step and a function that returns the mean losses since the last evaluation. It
  reads the losses at most once a second (a host sync on a GPU), and shows step, losses, images/s
  and time left. :meth:`TrainProgress.write` prints a line (an evaluation) above the bar.
* :class:`WorkProgress` is a ``progress(done, total)`` callable for counted work; without a
  terminal it logs through ``logging`` (logger ``trainables.progress``), which is how generation
  inside a Ray trial reaches Tune's trial logs.

Both import tqdm only when they draw a bar.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Callable, TextIO

log = logging.getLogger(__name__)

LossesFn = Callable[[], "dict[str, float]"]


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    """``1:02:03``, ``4:05`` or ``?`` for an unknown (inf / nan) duration."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_losses(losses: dict[str, float]) -> str:
    """``ae 0.1234, disc 0.6931`` from ``{"loss_ae": ..., "loss_disc": ...}``."""
    return ", ".join(f"{key.removeprefix('loss_')} {value:.4g}" for key, value in losses.items())


class TrainProgress:
    """Progress of one training run; see the module docstring.

    ``total_steps`` and ``batch_size`` (images per step, all ranks together) size the bar and the
    images/s figure. ``bar``: draw a tqdm bar (default: when ``stream`` is a terminal); otherwise a
    plain line every ``interval`` seconds. ``enabled=False`` shows nothing (``--quiet``).
    """

    def __init__(self, total_steps: int, batch_size: int, *, stream: TextIO | None = None,
                 bar: bool | None = None, interval: float = 10.0, loss_interval: float = 1.0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.total_steps = int(total_steps)
        self.batch_size = int(batch_size)
        self.stream = stream if stream is not None else sys.stdout
        self.use_bar = is_terminal(self.stream) if bar is None else bar
        self.interval = interval
        self.loss_interval = loss_interval
        self.enabled = enabled
        self.clock = clock
        self.start_step: int | None = None
        self.step = 0
        self.started = 0.0
        self.losses: dict[str, float] = {}
        self._last_losses = -math.inf
        self._last_line = 0.0
        self._bar: Any = None

    # -- the loop calls this ------------------------------------------------------------------

    def update(self, step: int, losses: LossesFn | None = None) -> None:
        """Step ``step`` (1-based count of steps done) has finished."""
        if not self.enabled:
            return
        now = self.clock()
        if self.start_step is None:
            # rates count from the end of the first step seen (its start is unknown: data loading,
            # compilation and warm-up happen before it)
            self.start_step, self.step = step, step - 1
            self.started = now
            self._last_line = now
            if self.use_bar:
                self._open_bar()
        previous, self.step = self.step, step
        if losses is not None and now - self._last_losses >= self.loss_interval:
            self._last_losses = now
            fresh = losses()
            if fresh:
                self.losses = fresh
        if self._bar is not None:
            self._bar.update(max(0, step - previous))
            self._bar.set_postfix_str(self._postfix(now), refresh=False)
        elif now - self._last_line >= self.interval or step == self.total_steps:
            self._last_line = now
            self._print(self.status_line(now))

    # -- figures ------------------------------------------------------------------------------

    def images_per_second(self, now: float | None = None) -> float:
        if self.start_step is None:
            return math.nan
        elapsed = (self.clock() if now is None else now) - self.started
        done = self.step - self.start_step
        return done * self.batch_size / elapsed if elapsed > 0 and done > 0 else math.nan

    def seconds_left(self, now: float | None = None) -> float:
        if self.start_step is None:
            return math.inf
        elapsed = (self.clock() if now is None else now) - self.started
        done = self.step - self.start_step
        if done <= 0 or elapsed <= 0:
            return math.inf
        return (self.total_steps - self.step) * elapsed / done

    def status_line(self, now: float | None = None) -> str:
        """``step 120/300 (40%)  losses: ae 0.1, disc 0.69  512 img/s  1:02 left``."""
        now = self.clock() if now is None else now
        percent = 100.0 * self.step / max(self.total_steps, 1)
        parts = [f"step {self.step}/{self.total_steps} ({percent:.0f}%)"]
        if self.losses:
            parts.append("losses: " + format_losses(self.losses))
        rate = self.images_per_second(now)
        if math.isfinite(rate):
            parts.append(f"{rate:,.0f} img/s")
        parts.append(f"{format_duration(self.seconds_left(now))} left")
        return "  ".join(parts)

    def _postfix(self, now: float) -> str:
        rate = self.images_per_second(now)
        text = format_losses(self.losses)
        if math.isfinite(rate):
            text = f"{text}, {rate:,.0f} img/s" if text else f"{rate:,.0f} img/s"
        return text

    # -- output -------------------------------------------------------------------------------

    def write(self, line: str) -> None:
        """Print a line (an evaluation) above the bar, or as a plain line."""
        if not self.enabled:
            return
        self._print(line)

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _open_bar(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=self.total_steps, initial=max(0, (self.start_step or 1) - 1), unit=" steps", file=self.stream,
            dynamic_ncols=True, mininterval=0.25, smoothing=0.1, leave=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(self.clock()), refresh=False)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "TrainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WorkProgress:
    """``progress(done, total)`` for counted work (images rendered, bytes fetched).

    On a terminal ``stream`` (and with ``bar`` not False): a tqdm bar. Otherwise one INFO line on
    ``logger`` every ``interval`` seconds and at the end: ``generating shapes3d: 96,000/480,000
    images (20%), 1,234 images/s, 5:11 left`` (or, with ``lines_to_stream``, printed on ``stream``).
    ``unit="B"`` shows megabytes.
    """

    def __init__(self, label: str, *, unit: str = "images", stream: TextIO | None = None,
                 bar: bool | None = None, interval: float = 10.0, logger: logging.Logger | None = None,
                 lines_to_stream: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.lines_to_stream = lines_to_stream
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.use_bar = is_terminal(self.stream) if bar is None else bar
        self.interval = interval
        self.logger = logger or log
        self.clock = clock
        self.started: float | None = None
        self._last = 0.0
        self._done = 0
        self._reported_end = False
        self._bar: Any = None

    def __call__(self, done: int, total: int | None = None) -> None:
        now = self.clock()
        if self.started is None:
            self.started = self._last = now
            if self.use_bar:
                from tqdm import tqdm

                scaled = self.unit == "B"
                self._bar = tqdm(total=total, desc=self.label, unit=self.unit if scaled else f" {self.unit}",
                                 unit_scale=scaled,
                                 unit_divisor=1024 if scaled else 1000, file=self.stream,
                                 dynamic_ncols=True, mininterval=0.25)
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.update(max(0, done - self._done))
            self._done = done
            if total is not None and done >= total:
                self.close()
            return
        self._done = done
        finished = total is not None and done >= total
        if finished and self._reported_end:
            return
        self._reported_end = finished
        if finished or now - self._last >= self.interval:
            self._last = now
            if self.lines_to_stream:
                print(self.line(done, total, now), file=self.stream, flush=True)
            else:
                self.logger.info(self.line(done, total, now))

    def line(self, done: int, total: int | None, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - (self.started if self.started is not None else now)
        rate = done / elapsed if elapsed > 0 else math.nan

        def amount(n: float) -> str:
            return f"{n / 1e6:,.1f} MB" if self.unit == "B" else f"{int(n):,}"

        text = f"{self.label}: {amount(done)}"
        if total:
            text += f"/{amount(total)} {'' if self.unit == 'B' else self.unit + ' '}({100.0 * done / total:.0f}%)"
        elif self.unit != "B":
            text += f" {self.unit}"
        if math.isfinite(rate) and rate > 0:
            text += f", {amount(rate)}/s" if self.unit == "B" else f", {rate:,.0f} {self.unit}/s"
            if total:
                text += f", {format_duration((total - done) / rate)} left" if done < total else \
                    f", done in {format_duration(elapsed)}"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["TrainProgress", "WorkProgress", "format_duration", "format_losses", "is_terminal"]
