"""Splits, supervision, noise and the ground-truth sampling protocol of WeakDataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from test_data_support import small_dsprites  # noqa: F401  (fixture)
from trainables.data import NoiseConfig, WeakDataset, get_version, load_dataset, make_splits
from trainables.errors import WeakdisError


@pytest.fixture()
def dsprites_v2(small_dsprites):
    return load_dataset("dsprites:v2", small_dsprites, seed=0)


def test_splits_are_seeded_70_10_20_and_partition_the_images():
    splits = make_splits(1000, seed=3)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [700, 100, 200]
    everything = torch.cat(list(splits.values()))
    assert sorted(everything.tolist()) == list(range(1000))
    again = make_splits(1000, seed=3)
    assert all(torch.equal(splits[s], again[s]) for s in splits)
    assert not torch.equal(make_splits(1000, seed=4)["train"], splits["train"])
    assert [len(v) for v in make_splits(7, seed=0).values()] == [4, 0, 3]


def test_labelled_indices_are_seeded_distinct_training_images(dsprites_v2):
    train = set(dsprites_v2.splits["train"].tolist())
    picked = dsprites_v2.labelled_indices(50, seed=1)
    assert picked.dtype == torch.int64 and len(picked) == 50 and len(set(picked.tolist())) == 50
    assert set(picked.tolist()) <= train
    assert torch.equal(picked, dsprites_v2.labelled_indices(50, seed=1))
    assert not torch.equal(picked, dsprites_v2.labelled_indices(50, seed=2))
    assert torch.equal(dsprites_v2.labelled_indices(20, seed=1), picked[:20])   # nested in tau
    assert len(dsprites_v2.labelled_indices(0, seed=1)) == 0
    n = len(train)
    with pytest.raises(WeakdisError, match=rf"tau={n + 1} labelled samples requested, .* holds only {n} images"):
        dsprites_v2.labelled_indices(n + 1, seed=0)


def test_stratified_labelled_indices_cover_every_combination_then_draw_uniformly(dsprites_v2):
    train = dsprites_v2.splits["train"]
    present = set(dsprites_v2.combinations[train].tolist())
    assert len(present) == 27   # every dsprites:v2 combination is in the small file's training split
    # tau = 27: exactly one image of each combination (uniform drawing misses some of them)
    picked = dsprites_v2.labelled_indices(27, seed=3, sampling="stratified")
    assert sorted(dsprites_v2.combinations[picked].tolist()) == sorted(present)
    uniform = dsprites_v2.labelled_indices(27, seed=3)
    assert len(set(dsprites_v2.combinations[uniform].tolist())) < 27
    # tau = 60: every combination, 60 distinct training images, seeded
    more = dsprites_v2.labelled_indices(60, seed=3, sampling="stratified")
    assert len(set(more.tolist())) == 60 and set(more.tolist()) <= set(train.tolist())
    assert set(dsprites_v2.combinations[more].tolist()) == present
    assert torch.equal(more, dsprites_v2.labelled_indices(60, seed=3, sampling="stratified"))
    assert not torch.equal(more, dsprites_v2.labelled_indices(60, seed=4, sampling="stratified"))
    # tau = 10 < 27: ten different combinations
    few = dsprites_v2.labelled_indices(10, seed=3, sampling="stratified")
    assert len(set(dsprites_v2.combinations[few].tolist())) == 10
    with pytest.raises(WeakdisError, match="tau_sampling='balanced' is invalid; expected one of uniform, stratified"):
        dsprites_v2.labelled_indices(10, seed=3, sampling="balanced")


def test_sample_indices_come_from_the_split_and_follow_the_generator(dsprites_v2):
    test = set(dsprites_v2.splits["test"].tolist())
    a = dsprites_v2.sample_indices("test", 500, torch.Generator().manual_seed(7))
    b = dsprites_v2.sample_indices("test", 500, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and set(a.tolist()) <= test
    with pytest.raises(WeakdisError, match="split 'tests' is unknown"):
        dsprites_v2.sample_indices("tests", 1)


def test_batch_is_a_float_gather_and_noise_is_seeded(dsprites_v2):
    idx = dsprites_v2.sample_indices("train", 64, torch.Generator().manual_seed(0))
    clean = dsprites_v2.batch(idx)
    assert clean.dtype == torch.float32 and clean.shape == (64, 1, 64, 64)
    torch.testing.assert_close(clean, dsprites_v2.images[idx].float())
    dropout = NoiseConfig("bernoulli", p=0.3)
    first = dsprites_v2.batch(idx, noise=dropout, generator=torch.Generator().manual_seed(11))
    second = dsprites_v2.batch(idx, noise=dropout, generator=torch.Generator().manual_seed(11))
    other = dsprites_v2.batch(idx, noise=dropout, generator=torch.Generator().manual_seed(12))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert torch.all(first <= clean)
    dropped = 1 - first.sum() / clean.sum()
    assert 0.25 < dropped < 0.35
    gauss = NoiseConfig("gaussian", std=0.2)
    noisy = dsprites_v2.batch(idx, noise=gauss, generator=torch.Generator().manual_seed(3))
    assert torch.equal(noisy, dsprites_v2.batch(idx, noise=gauss, generator=torch.Generator().manual_seed(3)))
    assert torch.all(noisy[clean == 0] == 0)                   # background untouched
    foreground = noisy[clean == 1]
    assert foreground.min() >= 0 and foreground.max() <= 1 and 0.05 < (1 - foreground).mean() < 0.12
    assert dsprites_v2.batch(idx, noise=NoiseConfig("none")).equal(clean)


def test_noise_config_validates():
    with pytest.raises(WeakdisError, match="noise kind 'salt'"):
        NoiseConfig("salt")
    with pytest.raises(WeakdisError, match=r"noise p=1.5 is invalid; expected a probability in \[0, 1\]"):
        NoiseConfig("bernoulli", p=1.5)
    assert NoiseConfig.from_level("gaussian", 0.3).std == 0.3 and NoiseConfig.from_level("bernoulli", 0.2).p == 0.2


def test_ground_truth_sampling_matches_the_requested_factors(dsprites_v2):
    factors = dsprites_v2.sample_factors(200, np.random.RandomState(0))
    assert factors.shape == (200, 3) and factors.dtype == np.int64
    assert np.array_equal(factors, dsprites_v2.sample_factors(200, np.random.RandomState(0)))
    assert all(set(factors[:, k]) == set(range(3)) for k in range(3))
    obs = dsprites_v2.sample_observations_from_factors(factors, np.random.RandomState(1))
    assert obs.shape == (200, 1, 64, 64) and obs.dtype == np.float32
    images = dsprites_v2.images[:, 0].numpy().astype(np.float32)
    all_factors = dsprites_v2.factors.numpy()
    for row, image in zip(factors[:40], obs[:40, 0]):
        matches = np.flatnonzero((all_factors == row).all(axis=1))
        assert any(np.array_equal(images[m], image) for m in matches)
    again = dsprites_v2.sample_observations_from_factors(factors, np.random.RandomState(1))
    np.testing.assert_array_equal(obs, again)


def test_missing_combination_uses_the_closest_present_one():
    spec = get_version("dsprites:v2")
    factors = np.array([[0, 0, 0], [0, 0, 1], [2, 2, 2]])      # only three of the 27 combinations
    images = torch.zeros((3, 1, 64, 64), dtype=torch.uint8)
    images[1, 0, 0, 0] = 1
    ds = WeakDataset(spec, images, factors, np.zeros((3, 6), dtype=np.int64))
    obs = ds.sample_observations_from_factors(np.array([[1, 0, 1], [2, 2, 1]]), np.random.RandomState(0))
    assert obs[0, 0, 0, 0] == 1          # (1,0,1) agrees most with (0,0,1)
    assert obs[1, 0, 0, 0] == 0          # (2,2,1) agrees most with (2,2,2)


def test_data_seed_fixes_the_rows_while_the_trial_seed_moves_the_splits(small_dsprites):
    first = load_dataset("dsprites:v2", small_dsprites, seed=0, max_images=200, data_seed=5)
    second = load_dataset("dsprites:v2", small_dsprites, seed=1, max_images=200, data_seed=5)
    assert torch.equal(first.all_factors, second.all_factors)
    assert not torch.equal(first.splits["train"], second.splits["train"])
    other_rows = load_dataset("dsprites:v2", small_dsprites, seed=0, max_images=200, data_seed=6)
    assert not torch.equal(first.all_factors, other_rows.all_factors)


def test_mixed_noise_keeps_a_seventh_clean_and_splits_the_rest(dsprites_v2):
    idx = dsprites_v2.splits["train"][:1]
    image = dsprites_v2.batch(idx).expand(700, -1, -1, -1).contiguous()
    noise = NoiseConfig.from_level("mixed", 0.3)
    assert (noise.p, noise.std) == (0.3, 0.3)
    ds = dsprites_v2
    g = torch.Generator().manual_seed(5)
    gathered = ds.batch(idx.repeat(700), noise=noise, generator=g)
    clean = (gathered == image).flatten(1).all(1)
    # dropout only removes pixels; Gaussian jitter changes foreground values to non-binary ones
    dropped = ~clean & ((gathered == 0) | (gathered == image)).flatten(1).all(1)
    jittered = ~clean & ~dropped
    assert abs(clean.float().mean().item() - 1 / 7) < 0.05
    assert abs(dropped.float().mean().item() - 3 / 7) < 0.06
    assert abs(jittered.float().mean().item() - 3 / 7) < 0.06
    assert torch.equal(gathered, ds.batch(idx.repeat(700), noise=noise, generator=torch.Generator().manual_seed(5)))
