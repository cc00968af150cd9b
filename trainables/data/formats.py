"""Read, validate and write the official dSprites ``.npz`` and Shapes3D ``.h5`` files.

Readers take the factor classes from the file's labels first and then read only the image rows
that are needed, so a version's subset of the 6 GB Shapes3D file never has to be copied whole:
the npz image member is streamed in chunks and the h5 image dataset is read block by block.
A file that holds a subset of the official rows loads too; its labels say which rows it holds.
"""
from __future__ import annotations

import contextlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from trainables.data.factors import DSPRITES, LAYOUTS, SHAPES3D, DatasetLayout
from trainables.errors import WeakdisError
from weakdis.files import replaced_atomically

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NPZ_READ_CHUNK_ROWS = 8192
H5_READ_BLOCK_ROWS = 4096
H5_CHUNK_ROWS = 128


def detect_dataset(path: str | os.PathLike) -> str:
    """'dsprites' for a zip (npz) file, 'shapes3d' for an HDF5 file; WeakdisError otherwise."""
    path = Path(path)
    if not path.exists():
        raise WeakdisError(f"{path}: no such file; expected a dSprites .npz or a Shapes3D .h5 file")
    if path.is_dir():
        raise WeakdisError(f"{path}: is a directory; expected a dSprites .npz or a Shapes3D .h5 file")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(ZIP_MAGIC):
        return "dsprites"
    if head == HDF5_MAGIC:
        return "shapes3d"
    if not head:
        raise WeakdisError(f"{path}: the file is empty; expected a dSprites .npz or a Shapes3D .h5 file")
    raise WeakdisError(
        f"{path}: neither a zip (.npz) nor an HDF5 (.h5) file (starts with {head!r}); "
        "expected a dSprites .npz or a Shapes3D .h5 file"
    )


@dataclass(frozen=True)
class FileContents:
    """What a dataset file holds, read from its labels (images not read yet)."""

    path: Path
    layout: DatasetLayout
    classes: np.ndarray           # int64 [n, 6]: factor classes of the file's rows, in file order
    image_shape: tuple[int, ...]  # shape of the image array, e.g. (737280, 64, 64)
    image_dtype: np.dtype
    keys: tuple[str, ...]

    @property
    def num_rows(self) -> int:
        return int(self.classes.shape[0])


def read_labels(path: str | os.PathLike, dataset: str | None = None) -> FileContents:
    """Open a file, validate its keys, shapes and dtypes, and map its labels to factor classes."""
    path = Path(path)
    kind = detect_dataset(path)
    if dataset is not None and dataset != kind:
        raise WeakdisError(
            f"{path}: holds {kind} data ({'npz' if kind == 'dsprites' else 'HDF5'}); expected a {dataset} file"
        )
    if kind == "dsprites":
        return _read_npz_labels(path)
    return _read_h5_labels(path)


def read_images(contents: FileContents, positions: np.ndarray, *, channels_first: bool = False) -> np.ndarray:
    """uint8 images of the file rows at ``positions`` (sorted, unique positions in file order).

    Returns [n, 64, 64] for dSprites and [n, 64, 64, 3] for Shapes3D, exactly as stored, or
    [n, C, 64, 64] with ``channels_first`` (converted block by block: no second full copy).
    """
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (np.any(np.diff(positions) <= 0) or positions[0] < 0 or positions[-1] >= contents.num_rows):
        raise ValueError("positions must be sorted, unique and within the file")
    row_shape = contents.image_shape[1:]
    if channels_first:
        row_shape = (contents.layout.num_channels, 64, 64)
    out = np.empty((len(positions),) + row_shape, dtype=np.uint8)
    if len(positions):
        if contents.layout is DSPRITES:
            _read_npz_images(contents, positions, out.reshape((len(positions),) + contents.image_shape[1:]))
        else:
            _read_h5_images(contents, positions, out, channels_first)
    return out


def iter_image_chunks(contents: FileContents, chunk_rows: int = NPZ_READ_CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Every image row of the file, in order, a chunk at a time (for validation)."""
    if contents.layout is DSPRITES:
        with _open_npz(contents.path) as archive, _npz_member(archive, contents.path, "imgs") as (handle, _, _):
            yield from _stream_npy_rows(handle, contents, chunk_rows)
    else:
        with _open_h5(contents.path) as h5:
            images = h5["images"]
            for start in range(0, contents.num_rows, chunk_rows):
                yield _h5_read(contents.path, images, slice(start, min(start + chunk_rows, contents.num_rows)))


# --------------------------------------------------------------------------------------- npz


@contextlib.contextmanager
def _open_npz(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise WeakdisError(
            f"{path}: not a readable npz archive ({error}); expected the dSprites .npz "
            "(is the file truncated? download or generate it again)"
        ) from None
    with archive:
        yield archive


@contextlib.contextmanager
def _npz_member(archive: zipfile.ZipFile, path: Path, key: str):
    """Open ``key.npy`` inside the npz and parse its header: yields (stream, shape, dtype)."""
    name = f"{key}.npy"
    if name not in archive.namelist():
        raise WeakdisError(f"{path}: missing key {key!r}; a dSprites npz holds {_dsprites_keys_text()}")
    try:
        with archive.open(name) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            if fortran_order and len(shape) > 1:
                raise WeakdisError(f"{path}: {key!r} is stored in Fortran order; expected C order")
            yield handle, tuple(shape), np.dtype(dtype)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise WeakdisError(f"{path}: key {key!r} is damaged ({error}); expected a valid .npy array") from None


def _read_npz_small_array(archive: zipfile.ZipFile, path: Path, key: str) -> np.ndarray:
    with _npz_member(archive, path, key) as (handle, shape, dtype):
        if dtype.hasobject:
            raise WeakdisError(f"{path}: {key!r} holds Python objects; expected a numeric array")
        count = int(np.prod(shape))
        data = handle.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise WeakdisError(f"{path}: {key!r} is truncated; expected {count} values of {dtype}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)


def _dsprites_keys_text() -> str:
    return "'imgs' (N, 64, 64) uint8, 'latents_classes' (N, 6) int64, 'latents_values' (N, 6) float64"


def _read_npz_labels(path: Path) -> FileContents:
    layout = DSPRITES
    with _open_npz(path) as archive:
        keys = tuple(sorted(n[:-4] for n in archive.namelist() if n.endswith(".npy")))
        with _npz_member(archive, path, "imgs") as (_, image_shape, image_dtype):
            pass
        values = classes = None
        if "latents_values" in keys:
            values = _read_npz_small_array(archive, path, "latents_values")
        if "latents_classes" in keys:
            classes = _read_npz_small_array(archive, path, "latents_classes")
    if values is None and classes is None:
        raise WeakdisError(f"{path}: missing key 'latents_classes' (and 'latents_values'); a dSprites npz holds "
                           f"{_dsprites_keys_text()}")
    _check_images(path, "imgs", image_shape, image_dtype, layout)
    num_rows = image_shape[0]
    if values is not None:
        _check_labels(path, "latents_values", values, num_rows, floating=True)
        value_classes = layout.values_to_classes(values, source=f"{path}: latents_values")
    if classes is not None:
        _check_labels(path, "latents_classes", classes, num_rows, floating=False)
        classes = layout.check_classes(classes, source=f"{path}: latents_classes")
        if values is not None:
            mismatch = np.any(classes != value_classes, axis=1)
            if mismatch.any():
                row = int(np.flatnonzero(mismatch)[0])
                raise WeakdisError(
                    f"{path}: row {row} has latents_classes {classes[row].tolist()} but latents_values "
                    f"{values[row].tolist()}; expected both to name the same factor classes"
                )
    else:
        classes = value_classes
    return FileContents(path, layout, np.ascontiguousarray(classes, dtype=np.int64), image_shape, image_dtype, keys)


def _stream_npy_rows(handle, contents: FileContents, chunk_rows: int) -> Iterator[np.ndarray]:
    row_shape = contents.image_shape[1:]
    row_bytes = int(np.prod(row_shape)) * contents.image_dtype.itemsize
    for start in range(0, contents.num_rows, chunk_rows):
        count = min(chunk_rows, contents.num_rows - start)
        try:
            data = handle.read(count * row_bytes)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise WeakdisError(
                f"{contents.path}: 'imgs' is damaged near row {start} ({error}); expected "
                f"{contents.num_rows} images (is the file truncated?)"
            ) from None
        if len(data) != count * row_bytes:
            raise WeakdisError(
                f"{contents.path}: 'imgs' is truncated near row {start}; expected {contents.num_rows} images"
            )
        yield np.frombuffer(data, dtype=contents.image_dtype).reshape((count,) + row_shape)


def _read_npz_images(contents: FileContents, positions: np.ndarray, out: np.ndarray) -> None:
    with _open_npz(contents.path) as archive, _npz_member(archive, contents.path, "imgs") as (handle, _, _):
        start = filled = 0
        for chunk in _stream_npy_rows(handle, contents, NPZ_READ_CHUNK_ROWS):
            stop = start + len(chunk)
            end = int(np.searchsorted(positions, stop))
            out[filled:end] = chunk[positions[filled:end] - start]
            filled, start = end, stop
            if filled == len(positions):
                break   # the rows are sorted: nothing after this chunk is needed


# --------------------------------------------------------------------------------------- h5


@contextlib.contextmanager
def _open_h5(path: Path):
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise WeakdisError(
            f"{path}: not a readable HDF5 file ({' '.join(str(error).split())}); expected the Shapes3D .h5 "
            "(is the file truncated? download or generate it again)"
        ) from None
    with h5:
        yield h5


def _h5_read(path: Path, dataset, selection) -> np.ndarray:
    try:
        return np.asarray(dataset[selection])
    except (OSError, RuntimeError, KeyError) as error:
        raise WeakdisError(
            f"{path}: {dataset.name.lstrip('/')!r} is damaged ({' '.join(str(error).split())}); "
            "expected readable rows (is the file truncated?)"
        ) from None


def _read_h5_labels(path: Path) -> FileContents:
    import h5py

    layout = SHAPES3D
    with _open_h5(path) as h5:
        keys = tuple(sorted(h5.keys()))
        for key in ("images", "labels"):
            if key not in h5 or not isinstance(h5[key], h5py.Dataset):
                raise WeakdisError(
                    f"{path}: missing key {key!r}; a Shapes3D h5 holds 'images' (N, 64, 64, 3) uint8 "
                    "and 'labels' (N, 6) float64"
                )
        images = h5["images"]
        image_shape, image_dtype = tuple(images.shape), np.dtype(images.dtype)
        labels_ds = h5["labels"]
        _check_images(path, "images", image_shape, image_dtype, layout)
        if labels_ds.ndim != 2 or labels_ds.shape[0] != image_shape[0]:
            raise WeakdisError(
                f"{path}: 'labels' has shape {labels_ds.shape}; expected ({image_shape[0]}, 6) to match 'images'"
            )
        labels = _h5_read(path, labels_ds, ())
    _check_labels(path, "labels", labels, image_shape[0], floating=True)
    classes = layout.values_to_classes(labels, source=f"{path}: labels")
    return FileContents(path, layout, classes, image_shape, image_dtype, keys)


def _read_h5_images(contents: FileContents, positions: np.ndarray, out: np.ndarray, channels_first: bool) -> None:
    with _open_h5(contents.path) as h5:
        images = h5["images"]
        blocks = positions // H5_READ_BLOCK_ROWS
        bounds = np.flatnonzero(np.diff(blocks)) + 1
        for part in np.split(np.arange(len(positions)), bounds):
            rows = positions[part]
            start = int(blocks[part[0]]) * H5_READ_BLOCK_ROWS
            stop = min(start + H5_READ_BLOCK_ROWS, contents.num_rows)
            if len(rows) * 8 >= stop - start:
                # dense: one contiguous read is faster than h5py's point selection
                block = _h5_read(contents.path, images, slice(start, stop))[rows - start]
            else:
                block = _h5_read(contents.path, images, rows)
            out[part] = np.moveaxis(block, -1, 1) if channels_first else block


# --------------------------------------------------------------------------------------- checks


def _check_images(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype, layout: DatasetLayout) -> None:
    expected = ("N",) + layout.image_shape
    if len(shape) != len(expected) or tuple(shape[1:]) != layout.image_shape:
        raise WeakdisError(f"{path}: {key!r} has shape {shape}; expected {_shape_text(expected)}")
    if dtype != np.uint8:
        raise WeakdisError(f"{path}: {key!r} has dtype {dtype}; expected uint8")
    if shape[0] < 1:
        raise WeakdisError(f"{path}: {key!r} holds no images; expected at least one row")


def _check_labels(path: Path, key: str, array: np.ndarray, num_rows: int, *, floating: bool) -> None:
    if array.ndim != 2 or array.shape != (num_rows, 6):
        raise WeakdisError(f"{path}: {key!r} has shape {array.shape}; expected ({num_rows}, 6) to match the images")
    kind_ok = np.issubdtype(array.dtype, np.floating) if floating else np.issubdtype(array.dtype, np.integer)
    if not kind_ok:
        raise WeakdisError(
            f"{path}: {key!r} has dtype {array.dtype}; expected {'float64' if floating else 'int64'}"
        )


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


# --------------------------------------------------------------------------------------- writers


def _metadata(layout: DatasetLayout) -> dict:
    return {
        "title": "dSprites dataset (procedurally generated by weakdis)",
        "description": "Procedurally generated 2D shapes in the official dSprites layout; generated by weakdis.",
        "version": 1,
        "latents_names": layout.factor_names,
        "latents_possible_values": {f.name: np.asarray(f.values) for f in layout.factors},
        "latents_sizes": np.asarray(layout.factor_sizes, dtype=np.int64),
        "author": "weakdis",
    }


def write_dsprites_npz(path: str | os.PathLike, images: np.ndarray, classes: np.ndarray) -> Path:
    """Write images [n, 64, 64] uint8 and their classes [n, 6] as an official-layout npz (atomic)."""
    path = Path(path)
    layout = DSPRITES
    classes = layout.check_classes(np.asarray(classes, dtype=np.int64), source="write_dsprites_npz")
    _check_images(path, "imgs", tuple(images.shape), images.dtype, layout)
    with replaced_atomically(path) as tmp, open(tmp, "wb") as handle:
        # a file object: numpy would append ".npz" to a name
        np.savez_compressed(
            handle,
            imgs=images,
            latents_classes=classes,
            latents_values=layout.class_values(classes),
            metadata=np.array(_metadata(layout), dtype=object),
        )
    return path


def write_shapes3d_h5(
    path: str | os.PathLike,
    rows: np.ndarray,
    render_chunk: Callable[[np.ndarray], np.ndarray],
    *,
    chunk_rows: int = 4096,
    compression: str | None = "gzip",
    compression_level: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write the official rows ``rows`` of Shapes3D, rendering ``chunk_rows`` at a time (atomic).

    ``render_chunk(classes [m, 6]) -> uint8 [m, 64, 64, 3]``. Memory stays at one chunk.
    """
    import h5py

    path = Path(path)
    layout = SHAPES3D
    rows = np.asarray(rows, dtype=np.int64)
    options = {"compression": compression, "compression_opts": compression_level} if compression == "gzip" else {}
    with replaced_atomically(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            images = h5.create_dataset(
                "images", shape=(len(rows), 64, 64, 3), dtype=np.uint8,
                chunks=(min(H5_CHUNK_ROWS, max(len(rows), 1)), 64, 64, 3), **options,
            )
            classes = layout.all_classes(rows)
            h5.create_dataset("labels", data=layout.class_values(classes), dtype=np.float64)
            for start in range(0, len(rows), chunk_rows):
                stop = min(start + chunk_rows, len(rows))
                images[start:stop] = render_chunk(classes[start:stop])
                if progress is not None:
                    progress(stop)
    return path


__all__ = [
    "FileContents", "LAYOUTS", "detect_dataset", "read_labels", "read_images", "iter_image_chunks",
    "write_dsprites_npz", "write_shapes3d_h5",
]
