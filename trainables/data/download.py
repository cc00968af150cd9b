"""Download the official files: resumable (HTTP Range into ``.part``), verified, renamed atomically.

Checksums. Shapes3D: the sha256 and size that tensorflow_datasets records for
https://storage.googleapis.com/3d-shapes/3dshapes.h5. dSprites: no sha256 of the .npz is published
(tensorflow_datasets fetches the .hdf5 variant), so we verify the md5 that several public loaders
pin for the .npz (7da33b31...). Either way the downloaded file's structure is validated too.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from trainables.errors import WeakdisError

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class OfficialFile:
    dataset: str
    url: str
    filename: str
    algorithm: str        # hashlib name of the published digest
    digest: str
    size: int | None      # bytes, when published


OFFICIAL_FILES = {
    "dsprites": OfficialFile(
        "dsprites",
        "https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "md5", "7da33b31b13a06f4b04a70402ce90c2e", None,
    ),
    "shapes3d": OfficialFile(
        "shapes3d",
        "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
        "3dshapes.h5",
        "sha256", "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785", 267573662,
    ),
}


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


class _ProgressBar:
    """Download progress on ``stream``: a tqdm bar when it is a terminal, otherwise a plain line
    every 10 seconds and at the end; nothing when ``stream`` is None."""

    def __init__(self, label: str, stream: TextIO | None) -> None:
        from trainables.progress import WorkProgress

        self.work = None if stream is None else WorkProgress(f"downloading {label}", unit="B", stream=stream,
                                                               lines_to_stream=True)

    def update(self, done: int, total: int | None, *, final: bool = False) -> None:
        if self.work is None:
            return
        self.work(done, total if total is not None else (done if final else None))
        if final:
            self.work.close()


def download(
    dataset: str,
    directory: str | os.PathLike,
    *,
    url: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: TextIO | None | str = "stderr",
    validate: bool = True,
) -> Path:
    """Fetch the official file of ``dataset`` into ``directory``; returns the final path.

    A partial ``<name>.part`` from an earlier run is resumed with an HTTP Range request. ``sha256``
    replaces the published checksum (for a mirror that serves a different file). ``progress`` is
    the stream for the progress bar: "stderr" (the default, looked up at call time) or None.
    """
    if progress == "stderr":
        progress = sys.stderr
    if dataset not in OFFICIAL_FILES:
        raise WeakdisError(f"unknown dataset {dataset!r}; expected one of {', '.join(OFFICIAL_FILES)}")
    official = OFFICIAL_FILES[dataset]
    url = url or official.url
    algorithm, expected = ("sha256", sha256.lower()) if sha256 else (official.algorithm, official.digest)
    expected_size = None if sha256 else official.size
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeakdisError(f"--dir {directory}: cannot create it ({error})") from None
    target = directory / official.filename
    if target.exists():
        actual = file_digest(target, algorithm)
        if actual != expected:
            raise WeakdisError(
                f"{target} exists but its {algorithm} is {actual}; expected {expected} (delete it to download again)"
            )
        return target
    part = target.with_name(target.name + ".part")
    bar = _ProgressBar(f"{dataset}", progress)
    attempt = 0
    while True:
        try:
            _fetch_into(url, part, timeout=timeout, bar=bar)
            break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code not in (408, 429, 500, 502, 503, 504):
                raise WeakdisError(f"{url}: HTTP {error.code} {error.reason}; expected the {dataset} file") from None
            attempt += 1
            if attempt > retries:
                have = part.stat().st_size if part.exists() else 0
                raise WeakdisError(
                    f"download of {url} failed after {attempt} attempts ({' '.join(str(error).split()) or type(error).__name__}); "
                    f"{have} bytes are kept in {part}: run the same command again to resume"
                ) from None
            time.sleep(min(2.0 ** attempt * 0.1, 5.0))
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise WeakdisError(f"{url}: downloaded {size} bytes; expected {expected_size} (the partial file was removed)")
    actual = file_digest(part, algorithm)
    if actual != expected:
        part.unlink()
        raise WeakdisError(
            f"{url}: checksum mismatch, {algorithm} {actual}; expected {expected} (the download was removed)"
        )
    if validate:
        from trainables.data.formats import read_labels

        read_labels(part, dataset)
    os.replace(part, target)
    return target


def _fetch_into(url: str, part: Path, *, timeout: float, bar: _ProgressBar) -> None:
    """Append the rest of ``url`` to ``part`` (Range from its current size); raise on a cut."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "weakdis", "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:     # nothing left to fetch: the .part is complete
            return
        raise
    with response:
        if offset and response.status == 206:
            mode, done = "ab", offset
        else:                                 # the server ignored the range: start over
            mode, done = "wb", 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        with open(part, mode) as handle:
            while True:
                block = response.read(CHUNK_BYTES)
                if not block:
                    break
                handle.write(block)
                done += len(block)
                bar.update(done, total)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)
        bar.update(done, total, final=True)
