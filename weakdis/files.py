"""Files written whole or not at all: a reader (a resumed trial, a driver polling results, a second
process) sees the old file or the new one, never half of one, and a failed write leaves no stray file."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replaced_atomically(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``target`` to write into; it replaces ``target`` when the block ends
    without an error and is removed either way."""
    target = Path(target)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(target: str | os.PathLike, text: str) -> None:
    with replaced_atomically(target) as temporary:
        temporary.write_text(text)
