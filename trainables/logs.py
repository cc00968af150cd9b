"""Logging for weakdis: ``-v/--verbose`` and ``-q/--quiet`` on the command line, and a fallback
handler so that progress logged inside a Ray trial reaches the trial's log files.

Every module logs to ``logging.getLogger(__name__)`` (``trainables.*``, ``search.*``,
``analysis.*``). The command line calls :func:`configure` once; a Ray trial or a notebook that
configured nothing gets :func:`ensure_handler`'s stderr handler the first time weakdis logs
progress, so that INFO lines are not dropped by Python's last-resort handler (which shows
warnings only).
"""
from __future__ import annotations

import logging
import sys

PACKAGES = ("trainables", "search", "analysis")
_FORMAT = "%(message)s"
_DEBUG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_FLAG = "_weakdis_handler"


def level_for(verbose: int = 0, quiet: int = 0) -> int:
    """INFO by default, DEBUG with -v, WARNING with -q (-qq: ERROR)."""
    if quiet:
        return logging.WARNING if quiet == 1 else logging.ERROR
    return logging.DEBUG if verbose else logging.INFO


def configure(verbose: int = 0, quiet: int = 0, stream=None) -> int:
    """Send weakdis's log records to ``stream`` (stderr, looked up now) at the level the flags ask
    for; replaces a handler an earlier call installed. Returns the level."""
    level = level_for(verbose, quiet)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(_DEBUG_FORMAT if level <= logging.DEBUG else _FORMAT))
    setattr(handler, _HANDLER_FLAG, True)
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return level


def ensure_handler() -> None:
    """Make sure weakdis INFO lines are shown somewhere: unless weakdis's loggers already have a
    handler (the command line) or the application logs INFO itself (a root handler at INFO or
    below), log them to stderr. A Ray trial is the case this is for: its stderr goes to the trial's
    log files, while Python's defaults would drop INFO lines."""
    if any(logging.getLogger(name).handlers for name in PACKAGES):
        return
    root = logging.getLogger()
    if root.handlers and root.getEffectiveLevel() <= logging.INFO:
        return
    configure()


def is_quiet() -> bool:
    """True when the command line asked for -q: :func:`configure` set a level above INFO. (Without
    a :func:`configure` call, e.g. from Python, nothing is quiet.)"""
    logger = logging.getLogger("trainables")
    configured = any(getattr(h, _HANDLER_FLAG, False) for h in logger.handlers)
    return configured and not logger.isEnabledFor(logging.INFO)
