"""Write procedurally generated dSprites / Shapes3D files in the official formats, and the data cache."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from trainables.data.factors import get_layout
from trainables.data.formats import write_dsprites_npz, write_shapes3d_h5
from trainables.data.versions import get_version
from trainables.errors import WeakdisError

log = logging.getLogger(__name__)

DSPRITES_RENDER_CHUNK = 65536
SHAPES3D_RENDER_CHUNK = 4096
FILE_SUFFIX = {"dsprites": ".npz", "shapes3d": ".h5"}


def select_rows(
    dataset: str, *, version: str | None = None, max_images: int | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted official row indices to generate: a version's rows (all rows when None), then a
    seeded random subset of ``max_images`` of them (all when None or when there are fewer)."""
    layout = get_layout(dataset)
    if version is not None:
        spec = get_version(version if ":" in version else f"{dataset}:{version}")
        if spec.dataset != dataset:
            raise WeakdisError(f"version {spec.name!r} belongs to {spec.dataset}; expected a {dataset} version")
        rows = spec.official_rows()
    else:
        rows = np.arange(layout.num_images, dtype=np.int64)
    if max_images is not None:
        if int(max_images) < 1:
            raise WeakdisError(f"max_images={max_images!r} is invalid; expected an integer >= 1")
        if max_images < len(rows):
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(rows, size=int(max_images), replace=False))
    return rows


def render(dataset: str, classes: np.ndarray) -> np.ndarray:
    """uint8 images of factor classes [n, 6], in the official per-image layout of ``dataset``."""
    if dataset == "dsprites":
        from trainables.data.render_dsprites import render_dsprites

        return render_dsprites(classes)
    from trainables.data.render_shapes3d import render_shapes3d

    get_layout(dataset)
    return render_shapes3d(classes)


def generate_file(
    dataset: str,
    out: str | os.PathLike,
    *,
    version: str | None = None,
    max_images: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render and write a dataset file in the official format (atomically); returns its path.

    ``progress(done, total)`` is called after each chunk; by default progress is logged (logger
    ``trainables.progress``, INFO) every 10 seconds, which is how generation inside a Ray trial
    shows up in the trial's log.
    """
    out = Path(out)
    if out.is_dir():
        raise WeakdisError(f"--out {out} is a directory; expected a file path")
    if not out.parent.exists():
        raise WeakdisError(f"--out {out}: the directory {out.parent} does not exist")
    rows = select_rows(dataset, version=version, max_images=max_images, seed=seed)
    layout = get_layout(dataset)
    if progress is None:
        from trainables.progress import WorkProgress

        progress = WorkProgress(f"generating {dataset} into {out}", bar=False)
    progress(0, len(rows))
    if dataset == "dsprites":
        classes = layout.all_classes(rows)
        images = np.empty((len(rows),) + layout.image_shape, dtype=np.uint8)
        for start in range(0, len(rows), DSPRITES_RENDER_CHUNK):
            stop = min(start + DSPRITES_RENDER_CHUNK, len(rows))
            images[start:stop] = render(dataset, classes[start:stop])
            if progress is not None:
                progress(stop, len(rows))
        return write_dsprites_npz(out, images, classes)
    return write_shapes3d_h5(
        out, rows, lambda chunk: render(dataset, chunk), chunk_rows=SHAPES3D_RENDER_CHUNK,
        progress=None if progress is None else (lambda done: progress(done, len(rows))),
    )


# --------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """$WEAKDIS_DATA, default ~/.cache/weakdis."""
    return Path(os.environ.get("WEAKDIS_DATA") or Path.home() / ".cache" / "weakdis").expanduser()


def cache_file_name(dataset: str, *, version: str | None, max_images: int | None, seed: int) -> str:
    """A name that records what the file holds: dataset, the version whose rows it holds, rows, seed."""
    tag = "all" if version is None else version.split(":")[-1]
    total = len(select_rows(dataset, version=version))
    if max_images is None or max_images >= total:
        return f"{dataset}-{tag}-{total}rows{FILE_SUFFIX[dataset]}"
    return f"{dataset}-{tag}-{int(max_images)}of{total}rows-seed{seed}{FILE_SUFFIX[dataset]}"


def _file_lock(path: Path):
    """An exclusive lock between processes (and machines sharing the cache over NFS where the
    file system supports it); portable, unlike fcntl."""
    from filelock import FileLock

    return FileLock(str(path))


def cached_file(
    dataset: str, *, version: str | None = None, max_images: int | None = None, seed: int = 0
) -> Path:
    """The generated file in the cache, generated once (under a lock, written atomically)."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeakdisError(f"cannot create the data cache {directory} ({error}); set WEAKDIS_DATA to a writable directory") from None
    path = directory / cache_file_name(dataset, version=version, max_images=max_images, seed=seed)
    if path.exists():
        return path
    from trainables.logs import ensure_handler

    ensure_handler()     # inside a Ray trial nothing else configured logging: progress goes to stderr
    lock = _file_lock(path.with_name(path.name + ".lock"))
    log.info("data: %s is not in the cache; generating it once (set WEAKDIS_DATA to move the cache)", path.name)
    with lock:
        if not path.exists():     # another process may have generated it while we waited
            generate_file(dataset, path, version=version, max_images=max_images, seed=seed)
        else:
            log.info("data: %s was generated by another process meanwhile", path.name)
    return path


__all__ = ["select_rows", "render", "generate_file", "cache_dir", "cache_file_name", "cached_file"]
