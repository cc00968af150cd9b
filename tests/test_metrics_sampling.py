"""The sampling helper and the intervention-based scores (FactorVAE, beta-VAE) on a toy dataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.metrics import beta_vae_score, factor_vae_score, sample_representations


class ToyGroundTruth:
    """Factors (3, 4, 5). An observation holds the factor values and two nuisance columns drawn from
    the random state."""

    factor_sizes = (3, 4, 5)

    def sample_factors(self, num, random_state):
        return np.stack([random_state.randint(size, size=num) for size in self.factor_sizes], axis=1)

    def sample_observations_from_factors(self, factors, random_state):
        nuisance = random_state.uniform(size=(factors.shape[0], 2))
        return np.concatenate([factors.astype(np.float64), nuisance], axis=1)


def disentangled_encoder(observations):
    """Codes: the three factors, then the two nuisances (kept small but varying)."""
    return np.concatenate([observations[:, :3], 0.1 * observations[:, 3:]], axis=1)


def entangled_encoder(observations):
    rotation, _ = np.linalg.qr(np.random.RandomState(0).randn(3, 3))
    return observations[:, :3] @ rotation


def test_sample_representations_order_shapes_and_determinism():
    calls = []

    def represent(observations):
        calls.append(len(observations))
        return torch.tensor(disentangled_encoder(observations))

    codes_train, factors_train, codes_test, factors_test = sample_representations(
        ToyGroundTruth(), represent, num_train=150, num_test=70, batch_size=64, random_state=5
    )
    assert calls == [64, 64, 22, 64, 6]
    assert codes_train.shape == (150, 5) and factors_train.shape == (150, 3) and codes_test.shape == (70, 5)
    assert factors_train.dtype == np.int64
    np.testing.assert_array_equal(codes_train[:, :3], factors_train)  # codes belong to their factors
    # The same stream by hand: train batches first, then test batches, from one RandomState.
    rng = np.random.RandomState(5)
    expected = []
    for rows in (64, 64, 22, 64, 6):
        batch = ToyGroundTruth().sample_factors(rows, rng)
        expected.append(disentangled_encoder(ToyGroundTruth().sample_observations_from_factors(batch, rng)))
    np.testing.assert_array_equal(np.concatenate([codes_train, codes_test]), np.concatenate(expected))
    again = sample_representations(ToyGroundTruth(), represent, num_train=150, num_test=70, random_state=5)
    np.testing.assert_array_equal(again[0], codes_train)


def test_sample_representations_with_several_representations_per_pass():
    def represent(observations):
        return {"factors": observations[:, :3].astype(np.int64), "codes": observations, "none": None}

    codes_train, factors_train, codes_test, _ = sample_representations(
        ToyGroundTruth(), represent, num_train=20, num_test=10, batch_size=8, random_state=0
    )
    np.testing.assert_array_equal(codes_train["factors"], factors_train)
    assert codes_train["codes"].shape == (20, 5) and codes_test["codes"].shape == (10, 5)
    assert codes_train["none"] is None


def test_sample_representations_rejects_bad_encoders():
    with pytest.raises(ValueError, match=r"represent must return an array \[batch, D\] for a batch of 8"):
        sample_representations(ToyGroundTruth(), lambda obs: obs[:-1], num_train=8, num_test=8, batch_size=8, random_state=0)


def test_factor_vae_score_values():
    dataset = ToyGroundTruth()
    kwargs = dict(batch_size=16, num_train=200, num_eval=100, num_variance_estimate=500)
    # The fixed factor's code has zero variance in its batch; the nuisance codes keep theirs.
    perfect = factor_vae_score(dataset, lambda o: o, random_state=0, **kwargs)
    assert perfect == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 5}
    # disentangled_encoder's nuisance codes vary with std 0.1 * 0.29 < 0.05: pruned.
    pruned = factor_vae_score(dataset, disentangled_encoder, random_state=0, prune_threshold=0.05, **kwargs)
    assert pruned == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}
    entangled = factor_vae_score(dataset, entangled_encoder, random_state=0, **kwargs)
    assert entangled["eval_accuracy"] < 0.9
    collapsed = factor_vae_score(dataset, lambda o: np.zeros((len(o), 4)), random_state=0, **kwargs)
    assert collapsed == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    assert factor_vae_score(dataset, entangled_encoder, random_state=3, **kwargs) == factor_vae_score(
        dataset, entangled_encoder, random_state=3, **kwargs
    )


def test_beta_vae_score_values():
    dataset = ToyGroundTruth()
    perfect = beta_vae_score(dataset, disentangled_encoder, random_state=0, batch_size=16, num_train=300, num_eval=150)
    assert perfect["train_accuracy"] == 1.0 and perfect["eval_accuracy"] == 1.0
    # Codes that ignore the data: the fixed factor cannot be told, accuracy near chance (1/3).
    noise = np.random.RandomState(1)
    chance = beta_vae_score(
        dataset, lambda o: noise.randn(len(o), 3), random_state=0, batch_size=16, num_train=300, num_eval=300
    )
    assert chance["eval_accuracy"] < 0.5
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        beta_vae_score(dataset, disentangled_encoder, random_state=0, batch_size=1)
