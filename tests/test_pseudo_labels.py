"""``pseudo_labels`` (AbsAE / M-AE, not in the papers): label spreading over unlabelled codes at the
first fit, fed to the linear label classifier; and the spreading itself."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from test_models_helpers import trial_config
from trainables import TrialConfig, train
from trainables.checkpoint import load_checkpoint
from trainables.data import generate_file, load_dataset
from trainables.errors import WeakdisError
from trainables.loop import labelled_indices, load_trial, unlabelled_indices
from trainables.models import build_model
from trainables.models.spreading import spread_labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PSEUDO = {"label_weight": 1.0, "label_classifier": "linear", "label_batch_size": 8, "mlp_hidden": 32,
          "pseudo_labels": "shape", "pseudo_label_images": 300, "pseudo_label_confidence": 0.0}


def test_spreading_follows_the_paths_the_unlabelled_codes_trace_and_leaves_unreached_codes_unlabelled():
    from sklearn.datasets import make_moons
    from sklearn.neighbors import KNeighborsClassifier

    points, classes = make_moons(1000, noise=0.06, random_state=0)
    rng = np.random.default_rng(0)
    labelled = np.concatenate([rng.choice(np.nonzero(classes == c)[0], 3, replace=False) for c in (0, 1)])
    rest = np.setdiff1d(np.arange(len(points)), labelled)
    far = rng.normal(10.0, 0.1, (20, 2))                 # a cluster with no label, 10 neighbours of its own
    unlabelled = np.concatenate([points[rest], far])
    nearest = KNeighborsClassifier(1).fit(points[labelled], classes[labelled]).score(points[rest], classes[rest])
    spread, probability = spread_labels(points[labelled], classes[labelled], unlabelled, neighbours=10, alpha=0.99)
    assert nearest < 0.85                                # the moons' ends are nearer the other moon's labels
    assert np.mean(spread[:len(rest)] == classes[rest]) > 0.99
    assert (spread[len(rest):] == -1).all() and (probability[len(rest):] == 0).all()
    assert ((probability[:len(rest)] > 0.5) & (probability[:len(rest)] <= 1)).all()
    # the clamping factor 0.2 (scikit-learn's default) stops within a few steps of the six labels
    shallow, _ = spread_labels(points[labelled], classes[labelled], unlabelled, neighbours=10, alpha=0.2)
    assert np.mean(shallow[:len(rest)] == -1) > 0.5
    again = spread_labels(points[labelled], classes[labelled], unlabelled, neighbours=10, alpha=0.99)
    np.testing.assert_array_equal(again[0], spread)


@pytest.fixture(scope="module")
def sprites(tmp_path_factory):
    path = generate_file("dsprites", tmp_path_factory.mktemp("pseudo-data") / "dsprites.npz",
                         version="dsprites:v2", max_images=1200, seed=0)
    return load_dataset("dsprites:v2", path=path, seed=0)


def _model(sprites, name="mae", tau=270, **extra):
    model = build_model(trial_config(name, warmup_steps=6, rel_batch_size=8, lr=1e-3, seed=2,
                                     extra={**PSEUDO, **extra}), sprites)
    labelled = sprites.labelled_indices(tau, 0)
    model.set_supervision(sprites.images[labelled], sprites.factors[labelled])
    cfg = TrialConfig(model=name, dataset="dsprites:v2", tau=tau, seed=0)
    assert model.unlabelled_wanted == 300
    model.set_unlabelled(sprites.images[unlabelled_indices(sprites, cfg, model.unlabelled_wanted)])
    return model


def _batches(ds, n, seed):
    g = torch.Generator().manual_seed(seed)
    return [ds.batch(ds.sample_indices("train", 16, g)) for _ in range(n)]


@pytest.mark.parametrize("name", ["mae", "absae"])
def test_the_first_fit_spreads_the_named_factors_labels_and_the_linear_classifier_learns_them(sprites, name):
    model = _model(sprites, name)
    batches = _batches(sprites, 40, seed=1)
    assert model.pseudo_labels() is None
    losses = [model.train_step(batch, step) for step, batch in enumerate(batches)]
    assert "pseudo_label" not in losses[5] and "pseudo_label" in losses[6]
    pseudo = model.pseudo_labels()
    assert pseudo.shape == (300, 3)
    assert (pseudo[:, 1:] == -1).all()                   # only shape's labels are spread
    assert ((pseudo[:, 0] >= -1) & (pseudo[:, 0] < 3)).all() and (pseudo[:, 0] >= 0).float().mean() > 0.9
    pseudo_losses = [float(out["pseudo_label"]) for out in losses[6:]]
    assert np.isfinite(pseudo_losses).all() and np.mean(pseudo_losses[-8:]) < 0.8 * np.mean(pseudo_losses[:4])
    # labels are spread once: a refit keeps them
    model.fit_prior(60)
    assert torch.equal(model.pseudo_labels(), pseudo)


def test_a_stricter_confidence_keeps_fewer_spread_labels(sprites):
    kept = []
    for confidence in (0.0, 0.95):
        model = _model(sprites, pseudo_label_confidence=confidence)
        for step, batch in enumerate(_batches(sprites, 7, seed=1)):
            model.train_step(batch, step)
        kept.append(int((model.pseudo_labels()[:, 0] >= 0).sum()))
    assert kept[0] > kept[1]


def test_pseudo_label_settings_are_checked(sprites):
    with pytest.raises(WeakdisError, match="pseudo_labels='shape'.*label_weight > 0"):
        build_model(trial_config("mae", extra={"pseudo_labels": "shape"}), sprites)
    with pytest.raises(WeakdisError, match="pseudo_labels='colour'.*'colour'.*shape, posX, posY"):
        build_model(trial_config("mae", extra={**PSEUDO, "pseudo_labels": "colour"}), sprites)
    with pytest.raises(WeakdisError, match="pseudo_label_confidence=1.5"):
        build_model(trial_config("mae", extra={**PSEUDO, "pseudo_label_confidence": 1.5}), sprites)
    with pytest.raises(WeakdisError, match="pseudo_label_images=0"):
        build_model(trial_config("mae", extra={**PSEUDO, "pseudo_label_images": 0}), sprites)
    model = build_model(trial_config("mae", warmup_steps=1, rel_batch_size=8, extra=PSEUDO), sprites)
    labelled = sprites.labelled_indices(60, 0)
    model.set_supervision(sprites.images[labelled], sprites.factors[labelled])
    with pytest.raises(WeakdisError, match=r"set_unlabelled.*expected \[n, 1, 64, 64\]"):
        model.set_unlabelled(sprites.images[:4, :, :32])
    batch = _batches(sprites, 1, seed=0)[0]
    model.train_step(batch, 0)
    with pytest.raises(WeakdisError, match="at step 1.*set_unlabelled"):
        model.train_step(batch, 1)


def test_a_model_with_spread_labels_reloads_and_continues_bit_identically(sprites):
    model = _model(sprites)
    first, second = _batches(sprites, 10, seed=4), _batches(sprites, 6, seed=5)
    for step, batch in enumerate(first):
        model.train_step(batch, step)
    saved = copy.deepcopy(model.state_dict())
    assert torch.equal(saved["extra"]["pseudo_labels"], model.pseudo_labels())
    for step, batch in enumerate(second, start=10):
        model.train_step(batch, step)
    fresh = _model(sprites)
    fresh.load_state_dict(saved)
    for step, batch in enumerate(second, start=10):
        fresh.train_step(batch, step)
    expected, got = model.state_dict(), fresh.state_dict()
    for key, value in expected["modules"].items():
        assert torch.equal(value, got["modules"][key]), key
    assert torch.equal(expected["extra"]["pseudo_labels"], got["extra"]["pseudo_labels"])


def test_a_trial_gives_the_model_unlabelled_images_and_resumes_with_its_spread_labels(tmp_path):
    cfg = TrialConfig(model="mae", dataset="dsprites:v2", data_images=2000, steps=12, warmup_steps=4,
                      prior_refit_every=3, batch_size=16, tau=200, eval_every=6, eval_points=60, rel_batch_size=16,
                      device="cpu", seed=5, alpha=0.0, extra={**PSEUDO, "pseudo_label_confidence": 0.5})
    full = train(cfg, out_dir=tmp_path / "full")
    train(cfg.replace(steps=6), out_dir=tmp_path / "part")
    resumed = train(cfg, out_dir=tmp_path / "part", resume_from=tmp_path / "part" / "checkpoint")
    assert math.isfinite(full.history[-1]["loss_pseudo_label"])
    for expected, got in zip(full.history, resumed.history):
        for key in expected:
            if key != "train_seconds":
                assert expected[key] == got[key] or (math.isnan(expected[key]) and math.isnan(got[key])), key
    states = [load_checkpoint(tmp_path / run / "checkpoint")[1]["model"] for run in ("full", "part")]
    assert torch.equal(states[0]["extra"]["pseudo_labels"], states[1]["extra"]["pseudo_labels"])
    # the labels belong to the unlabelled rows the loop drew: not the labelled ones
    saved_cfg, model, dataset = load_trial(tmp_path / "full")
    rows = unlabelled_indices(dataset, saved_cfg, model.unlabelled_wanted)
    assert len(rows) == 300 and not torch.isin(rows, labelled_indices(dataset, saved_cfg)).any()
    assert model.pseudo_labels().shape == (300, 3)

