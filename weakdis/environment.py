"""The name and the reader of ``environment.json``, the record of where a trial ran.

``trainables.environment`` writes it (an entry per start or resume); ``analysis.report`` reads it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENVIRONMENT_FILE = "environment.json"


def read_environment(trial_dir: str | os.PathLike) -> list[Any]:
    """The entries of ``trial_dir/environment.json``; [] when the trial has none.

    Raises ValueError naming the file when it is not a JSON list, OSError when it cannot be read.
    """
    path = Path(trial_dir) / ENVIRONMENT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path} is not a JSON list of entries ({error})") from error
    if not isinstance(entries, list):
        raise ValueError(f"{path} is not a JSON list of entries (it holds a {type(entries).__name__})")
    return entries
