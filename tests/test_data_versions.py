"""Versions select the right rows and factor values; load_dataset reads subsets and uses the cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_data_support import small_dsprites, small_shapes3d  # noqa: F401  (fixtures)
from trainables.data import DSPRITES, SHAPES3D, VERSIONS, get_version, load_dataset, read_labels
from trainables.data.generate import cache_dir, render
from trainables.errors import WeakdisError

EXPECTED = {
    "dsprites:v2": ((3, 3, 3), 162000),
    "dsprites:v2-ref": ((3, 3, 3), 3 * 3 * 6 * 15 * 15),
    "dsprites:v3": ((3, 3, 3, 5), 162000),
    "dsprites:v4": ((3, 3, 3, 40), 162000),
    "dsprites:v3-ref": ((3, 3, 3, 5), 3 * 3 * 40 * 15 * 15),
    "dsprites:v4-ref": ((3, 3, 3, 40), 3 * 3 * 40 * 15 * 15),
    "shapes3d:v2": ((10, 4), 480000),
    "shapes3d:v3": ((10, 4, 3), 480000),
    "shapes3d:v5": ((10, 10, 10, 4, 3), 480000),
    "dsprites:full": ((1, 3, 6, 40, 32, 32), 737280),
    "shapes3d:full": ((10, 10, 10, 8, 4, 15), 480000),
    "hwf:v1": ((13,), 13),          # HWF's "rows" are its symbol classes; images come from a folder
    "hwf:digits": ((10,), 10),
}


def test_every_version_has_the_tables_factors_and_rows():
    assert set(VERSIONS) == set(EXPECTED)
    for name, (sizes, rows) in EXPECTED.items():
        spec = get_version(name)
        assert spec.name == name and spec.factor_sizes == sizes
        assert spec.num_combinations == int(np.prod(sizes))
        assert len(spec.official_rows()) == rows
    assert [get_version(n).num_combinations for n in
            ("dsprites:v2", "dsprites:v3", "dsprites:v4", "shapes3d:v2", "shapes3d:v3", "shapes3d:v5")] == \
        [27, 135, 1080, 40, 120, 12000]
    assert get_version("shapes3d:v5").factor_names == ("floor_hue", "wall_hue", "object_hue", "shape", "scale")


def test_unknown_version_names_the_known_ones():
    with pytest.raises(WeakdisError, match=r"unknown dataset version 'dsprites:v9'; expected one of dsprites:v2"):
        get_version("dsprites:v9")


def test_combination_factors_are_row_major_last_fastest():
    spec = get_version("dsprites:v3")
    combos = spec.combination_factors()
    assert combos.shape == (135, 4) and combos.dtype == np.int64
    np.testing.assert_array_equal(combos[:6], [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3],
                                               [0, 0, 0, 4], [0, 0, 1, 0]])
    np.testing.assert_array_equal(spec.combination_index(combos), np.arange(135))


def test_bins_map_classes_to_values_and_drop_the_rest():
    spec = get_version("dsprites:v3")
    classes = np.array([
        # color shape scale orientation posX posY
        [0, 2, 0, 8, 4, 13],     # kept: heart, posX bin 0, posY bin 1, orientation bin 1
        [0, 0, 5, 39, 27, 31],   # kept: square, bins 2 / 2, orientation bin 4
        [0, 1, 3, 0, 5, 0],      # posX 5 lies between bins: dropped
        [0, 1, 3, 0, 17, 26],    # posY 26 lies between bins: dropped
    ])
    keep, factors = spec.select(classes)
    np.testing.assert_array_equal(keep, [True, True, False, False])
    np.testing.assert_array_equal(factors, [[2, 0, 1, 1], [0, 2, 2, 4]])
    ref = get_version("dsprites:v2-ref")
    keep, factors = ref.select(np.array([[0, 1, 2, 37, 0, 0], [0, 1, 1, 0, 0, 0], [0, 1, 4, 20, 0, 0]]))
    np.testing.assert_array_equal(keep, [True, False, False])   # scale 1 and orientation 20 are filtered
    spec3d = get_version("shapes3d:v3")
    keep, factors = spec3d.select(np.array([[0, 0, 7, 2, 3, 0], [0, 0, 1, 3, 0, 0], [0, 0, 1, 7, 1, 0]]))
    assert keep.all()
    np.testing.assert_array_equal(factors, [[7, 3, 0], [1, 0, 1], [1, 1, 2]])


def test_load_dataset_keeps_the_versions_rows_of_a_subset_file(small_dsprites):
    ds = load_dataset("dsprites:v2", small_dsprites, seed=0)
    contents = read_labels(small_dsprites)
    keep, expected = get_version("dsprites:v2").select(contents.classes)
    assert len(ds) == int(keep.sum()) > 100
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape[1:]) == (1, 64, 64)
    assert ds.num_channels == 1 and ds.factor_sizes == (3, 3, 3)
    np.testing.assert_array_equal(ds.factors.numpy(), expected)
    np.testing.assert_array_equal(ds.all_factors.numpy(), contents.classes[keep])
    np.testing.assert_array_equal(ds.combinations.numpy(), expected @ np.array([9, 3, 1]))
    # the images are those of the rows' factors
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), render("dsprites", contents.classes[keep]))
    ref = load_dataset("dsprites:v2-ref", small_dsprites)
    assert 0 < len(ref) < len(ds)
    assert set(ref.all_factors[:, 2].tolist()) <= {2, 3, 4}
    capped = load_dataset("dsprites:v2", small_dsprites, max_images=50, seed=3)
    assert len(capped) == 50
    np.testing.assert_array_equal(capped.all_factors.numpy(),
                                  load_dataset("dsprites:v2", small_dsprites, max_images=50, seed=3).all_factors.numpy())


def test_load_dataset_shapes3d_channels_first(small_shapes3d):
    ds = load_dataset("shapes3d:v5", small_shapes3d)
    assert tuple(ds.images.shape) == (1200, 3, 64, 64) and ds.num_channels == 3
    contents = read_labels(small_shapes3d)
    np.testing.assert_array_equal(ds.images[5].permute(1, 2, 0).numpy(), render("shapes3d", contents.classes[5:6])[0])
    x = ds.batch(torch.tensor([5]))
    np.testing.assert_allclose(x.numpy(), ds.images[5:6].numpy() / 255.0, atol=1e-6)


def test_load_dataset_rejects_the_wrong_file_and_an_empty_selection(tmp_path, small_dsprites, small_shapes3d):
    with pytest.raises(WeakdisError, match="holds dsprites data .* expected a shapes3d file"):
        load_dataset("shapes3d:v2", small_dsprites)
    from trainables.data.formats import write_dsprites_npz

    # 40 sprites that are all outside v2-ref: posX / posY in its bins, but scale class 0 (v2-ref keeps 2-4)
    classes = np.zeros((40, 6), dtype=np.int64)
    classes[:, 1] = np.arange(40) % 3          # shape
    classes[:, 3] = np.arange(40) % 40         # orientation
    classes[:, 4] = np.array([0, 13, 27])[np.arange(40) % 3]   # posX in the bins {0-4}, {13-17}, {27-31}
    classes[:, 5] = np.array([4, 17, 31])[np.arange(40) // 3 % 3]
    outside = write_dsprites_npz(tmp_path / "outside.npz", render("dsprites", classes), classes)
    assert not get_version("dsprites:v2-ref").select(read_labels(outside).classes)[0].any()
    assert get_version("dsprites:v2").select(read_labels(outside).classes)[0].all()
    with pytest.raises(WeakdisError, match="none of its 40 images belongs to dsprites:v2-ref"):
        load_dataset("dsprites:v2-ref", outside)


def test_cache_generates_once_and_names_what_it_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    first = load_dataset("dsprites:v3", generate_images=400, seed=5)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock"))
    assert files == ["dsprites-v3-400of162000rows-seed5.npz"]
    path = tmp_path / "cache" / files[0]
    stamp = path.stat().st_mtime_ns
    second = load_dataset("dsprites:v3", generate_images=400, seed=5)
    assert path.stat().st_mtime_ns == stamp and first.source == second.source == path
    assert len(first) == 400
    torch.testing.assert_close(first.images, second.images)
    np.testing.assert_array_equal(first.factors.numpy(), second.factors.numpy())
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cache").iterdir())


def test_dsprites_pixels_outside_0_1_are_rejected(tmp_path, small_dsprites):
    with np.load(small_dsprites) as npz:
        imgs, classes = npz["imgs"] * 255, npz["latents_classes"]
    path = tmp_path / "scaled.npz"
    np.savez_compressed(path, imgs=imgs, latents_classes=classes)
    with pytest.raises(WeakdisError, match=r"scaled.npz: 'imgs' holds the value 255; expected dSprites pixels in \{0, 1\}"):
        load_dataset("dsprites:full", path)
