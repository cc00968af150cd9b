"""Official file layouts: keys, shapes, dtypes, factor values and order; damaged files; `weakdis data info`."""
from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

from search.cli import main as weakdis
from test_data_support import small_dsprites, small_shapes3d  # noqa: F401  (fixtures)
from trainables.data import DSPRITES, SHAPES3D, generate_file, read_images, read_labels, select_rows
from trainables.data.generate import render
from trainables.errors import WeakdisError


def test_dsprites_layout_matches_the_official_grid():
    sizes = DSPRITES.factor_sizes
    assert DSPRITES.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert sizes == (1, 3, 6, 40, 32, 32) and DSPRITES.num_images == 737280
    values = DSPRITES.values_table()
    np.testing.assert_allclose(values[1], [1, 2, 3])
    np.testing.assert_allclose(values[2], np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(values[3], np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(values[4], np.linspace(0, 1, 32))
    # last factor fastest: row 1 is posY class 1, row 32 is posX class 1, row 1024 orientation 1
    np.testing.assert_array_equal(DSPRITES.all_classes(np.array([1, 32, 1024, 40960, 245760])),
                                  [[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0],
                                   [0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]])


def test_shapes3d_layout_matches_the_official_grid():
    assert SHAPES3D.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert SHAPES3D.factor_sizes == (10, 10, 10, 8, 4, 15) and SHAPES3D.num_images == 480000
    values = SHAPES3D.values_table()
    np.testing.assert_allclose(values[0], np.linspace(0, 0.9, 10))
    np.testing.assert_allclose(values[3], np.linspace(0.75, 1.25, 8))
    np.testing.assert_allclose(values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(values[5], np.linspace(-30, 30, 15))
    np.testing.assert_array_equal(SHAPES3D.all_classes(np.array([479999])), [[9, 9, 9, 7, 3, 14]])


def test_generated_dsprites_file_has_the_official_keys_shapes_and_dtypes(small_dsprites):
    rows = select_rows("dsprites", max_images=1500, seed=1)
    with np.load(small_dsprites, allow_pickle=True) as npz:
        assert set(npz.files) == {"imgs", "latents_classes", "latents_values", "metadata"}
        imgs, classes, values = npz["imgs"], npz["latents_classes"], npz["latents_values"]
        metadata = npz["metadata"][()]
    assert imgs.shape == (1500, 64, 64) and imgs.dtype == np.uint8
    assert set(np.unique(imgs)) == {0, 1}
    assert classes.shape == (1500, 6) and classes.dtype == np.int64
    assert values.shape == (1500, 6) and values.dtype == np.float64
    np.testing.assert_array_equal(classes, DSPRITES.all_classes(rows))       # sorted, official order
    assert np.all(np.diff(rows) > 0)
    np.testing.assert_allclose(values[:, 3], np.linspace(0, 2 * np.pi, 40)[classes[:, 3]])
    np.testing.assert_allclose(values[:, 1], classes[:, 1] + 1.0)
    assert list(metadata["latents_sizes"]) == [1, 3, 6, 40, 32, 32]


def test_generated_shapes3d_file_has_the_official_keys_shapes_and_dtypes(small_shapes3d):
    with h5py.File(small_shapes3d, "r") as h5:
        assert set(h5.keys()) == {"images", "labels"}
        assert h5["images"].shape == (1200, 64, 64, 3) and h5["images"].dtype == np.uint8
        assert h5["labels"].shape == (1200, 6) and h5["labels"].dtype == np.float64
        labels = h5["labels"][()]
        first = h5["images"][0]
    classes = SHAPES3D.all_classes(select_rows("shapes3d", max_images=1200, seed=2))
    np.testing.assert_allclose(labels, SHAPES3D.class_values(classes))
    np.testing.assert_array_equal(first, render("shapes3d", classes[:1])[0])


def test_reader_maps_labels_back_and_reads_only_the_requested_rows(small_dsprites, small_shapes3d):
    for path, dataset in ((small_dsprites, "dsprites"), (small_shapes3d, "shapes3d")):
        contents = read_labels(path, dataset)
        positions = np.array([0, 7, 8, 500, contents.num_rows - 1])
        images = read_images(contents, positions)
        np.testing.assert_array_equal(images, render(dataset, contents.classes[positions]))


def test_npz_with_only_latents_values_still_loads(tmp_path, small_dsprites):
    with np.load(small_dsprites) as npz:
        imgs, values, classes = npz["imgs"], npz["latents_values"], npz["latents_classes"]
    path = tmp_path / "values_only.npz"
    np.savez(path, imgs=imgs, latents_values=values)      # uncompressed zip members read too
    np.testing.assert_array_equal(read_labels(path).classes, classes)


def _damaged_copies(tmp_path, small_dsprites, small_shapes3d):
    with np.load(small_dsprites) as npz:
        imgs, classes, values = npz["imgs"], npz["latents_classes"], npz["latents_values"]
    files = {}
    raw = small_dsprites.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    files["truncated.npz"] = "truncated"
    np.savez_compressed(tmp_path / "missing.npz", imgs=imgs, latents_values=values[:, :5].copy())
    files["missing.npz"] = "'latents_values' has shape (1500, 5)"
    np.savez_compressed(tmp_path / "nokeys.npz", imgs=imgs)
    files["nokeys.npz"] = "missing key 'latents_classes'"
    np.savez_compressed(tmp_path / "float.npz", imgs=imgs.astype(np.float32), latents_classes=classes)
    files["float.npz"] = "'imgs' has dtype float32; expected uint8"
    bad_values = values.copy()
    bad_values[3, 4] = 0.5                   # = 15.5 / 31, halfway between two posX grid values
    np.savez_compressed(tmp_path / "offgrid.npz", imgs=imgs, latents_values=bad_values)
    files["offgrid.npz"] = "row 3 has posX="
    np.savez_compressed(tmp_path / "mismatch.npz", imgs=imgs, latents_classes=classes[::-1].copy(),
                        latents_values=values)
    files["mismatch.npz"] = "expected both to name the same factor classes"
    raw = small_shapes3d.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(raw[: len(raw) // 3])
    files["truncated.h5"] = "truncated"
    with h5py.File(small_shapes3d, "r") as source:
        images, labels = source["images"][()], source["labels"][()]
    with h5py.File(tmp_path / "nolabels.h5", "w") as h5:
        h5["images"] = images
    files["nolabels.h5"] = "missing key 'labels'"
    labels[10, 0] = 0.05
    with h5py.File(tmp_path / "offgrid.h5", "w") as h5:
        h5["images"], h5["labels"] = images, labels
    files["offgrid.h5"] = "row 10 has floor_hue=0.05"
    with h5py.File(tmp_path / "wrongshape.h5", "w") as h5:
        h5["images"], h5["labels"] = images[:, :32], labels
    files["wrongshape.h5"] = "expected (N, 64, 64, 3)"
    (tmp_path / "text.npz").write_text("hello")
    files["text.npz"] = "neither a zip"
    return files


def test_damaged_files_raise_one_line_errors_naming_file_and_expectation(tmp_path, small_dsprites, small_shapes3d):
    for name, expected in _damaged_copies(tmp_path, small_dsprites, small_shapes3d).items():
        with pytest.raises(WeakdisError) as error:
            contents = read_labels(tmp_path / name)
            read_images(contents, np.arange(contents.num_rows))
        message = str(error.value)
        assert str(tmp_path / name) in message, name
        assert expected in message, (name, message)
        assert "\n" not in message


def test_info_summarises_a_good_file(capsys, small_dsprites, small_shapes3d):
    assert weakdis(["data", "info", str(small_dsprites)]) == 0
    out = capsys.readouterr().out
    assert "dataset:  dsprites" in out and "1500 x (64, 64) uint8, pixel values 0..1" in out
    assert "orientation     40" in out and "(square, ellipse, heart)" in out
    assert "1500 distinct of the official 737280" in out
    assert weakdis(["data", "info", str(small_shapes3d)]) == 0
    out = capsys.readouterr().out
    assert "1200 x (64, 64, 3) uint8" in out and "(cube, cylinder, sphere, capsule)" in out
    assert "shapes3d:v2" in out and "40/40 combinations" in out


@pytest.mark.parametrize("name", ["truncated.npz", "nokeys.npz", "float.npz", "truncated.h5", "offgrid.h5"])
def test_info_on_damaged_files_exits_1_with_one_line(tmp_path, capsys, small_dsprites, small_shapes3d, name):
    expected = _damaged_copies(tmp_path, small_dsprites, small_shapes3d)[name]
    assert weakdis(["data", "info", str(tmp_path / name)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weakdis: error:") and expected in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_truncated_npz_member_is_detected_while_streaming(tmp_path, small_dsprites):
    # rewrite the archive with a short 'imgs' member whose header still claims every row
    with zipfile.ZipFile(small_dsprites) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["imgs.npy"] = members["imgs.npy"][: len(members["imgs.npy"]) // 2]
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)
    contents = read_labels(path)
    with pytest.raises(WeakdisError, match="'imgs' is truncated near row"):
        read_images(contents, np.array([0, contents.num_rows - 1]))


def test_generate_cli_writes_a_versions_rows(tmp_path, capsys):
    out = tmp_path / "v2.npz"
    assert weakdis(["data", "generate", "dsprites", "--out", str(out), "--version", "v2",
                    "--max-images", "300", "--seed", "4"]) == 0
    contents = read_labels(out)
    assert contents.num_rows == 300
    assert np.all(np.isin(contents.classes[:, 4], [0, 1, 2, 3, 4, 13, 14, 15, 16, 17, 27, 28, 29, 30, 31]))
    again = tmp_path / "again.npz"
    generate_file("dsprites", again, version="dsprites:v2", max_images=300, seed=4)
    np.testing.assert_array_equal(read_labels(again).classes, contents.classes)     # same seed, same rows
    assert weakdis(["data", "generate", "dsprites", "--out", str(tmp_path / "x.npz"), "--version", "shapes3d:v2"]) == 1
    assert "belongs to shapes3d" in capsys.readouterr().err
