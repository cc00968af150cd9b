"""DIP-VAE-I / -II and AnnealedVAE: their losses on small tensors against the papers' equations.
(Training, resume and capabilities are covered for every registered model by the tests
parametrised over MODEL_NAMES.)"""
from __future__ import annotations

import pytest
import torch

from trainables.config import TrialConfig
from trainables.models import MODEL_NAMES
from trainables.models.annealedvae import AnnealedVAEConfig, annealed_loss, capacity
from trainables.models.dipvae import dip_covariance, dip_regulariser
from weakdis.errors import WeakdisError


def _loop_covariance(x):
    n, d = x.shape
    mean = [sum(x[i, a] for i in range(n)) / n for a in range(d)]
    return torch.tensor([[sum((x[i, a] - mean[a]) * (x[i, b] - mean[b]) for i in range(n)) / n
                          for b in range(d)] for a in range(d)])


def test_dip_covariances_and_penalty_follow_kumar_et_al():
    mean = torch.tensor([[1.0, 2.0, 0.0], [3.0, -1.0, 1.0], [0.0, 0.5, 2.0], [2.0, 1.0, -1.0]])
    logvar = torch.tensor([[0.0, -1.0, 0.5], [0.2, 0.0, -0.5], [-0.3, 0.1, 0.0], [0.0, 0.0, 0.0]])
    cov_i = _loop_covariance(mean)
    assert torch.allclose(dip_covariance(mean, logvar, "i"), cov_i, atol=1e-6)
    cov_ii = cov_i + torch.diag(logvar.exp().mean(0))
    assert torch.allclose(dip_covariance(mean, logvar, "ii"), cov_ii, atol=1e-6)
    for cov in (cov_i, cov_ii):
        off = sum(cov[a, b] ** 2 for a in range(3) for b in range(3) if a != b)
        diag = sum((cov[a, a] - 1) ** 2 for a in range(3))
        assert float(dip_regulariser(cov, 2.0, 5.0)) == pytest.approx(float(2.0 * off + 5.0 * diag), rel=1e-6)
    assert float(dip_regulariser(torch.eye(3), 2.0, 5.0)) == 0.0


def test_annealed_capacity_rises_linearly_then_stays_and_the_loss_is_gamma_abs_kl_minus_c():
    assert [capacity(s, 25.0, 100) for s in (0, 40, 100, 500)] == [0.0, 10.0, 25.0, 25.0]
    assert capacity(7, 5.0, 0) == 5.0
    recon, kl = torch.tensor(100.0), torch.tensor(12.0)
    assert float(annealed_loss(recon, kl, 1000.0, 10.0)) == pytest.approx(100.0 + 1000.0 * 2.0)
    assert float(annealed_loss(recon, kl, 1000.0, 20.0)) == pytest.approx(100.0 + 1000.0 * 8.0)


def test_models_are_registered_and_their_hyperparameters_settable():
    assert {"dipvae1", "dipvae2", "annealedvae"} <= set(MODEL_NAMES)
    cfg = TrialConfig.from_dict({"model": "annealedvae", "gamma": 1000, "c_max": "5", "iteration_threshold": 100})
    assert cfg.gamma == 1000 and cfg.extra == {"c_max": 5.0, "iteration_threshold": 100}
    config = AnnealedVAEConfig.from_trial_config(cfg, model_name="annealedvae")
    assert (config.gamma, config.c_max, config.iteration_threshold) == (1000, 5.0, 100)
    with pytest.raises(WeakdisError, match="lambda_od"):
        from trainables.models.dipvae1 import DIPVAE1Config
        DIPVAE1Config.from_trial_config(TrialConfig.from_dict({"model": "dipvae1", "lambda_od": -1}), model_name="dipvae1")


@pytest.mark.parametrize("name, factor", [("dipvae1", 10.0), ("dipvae2", 1.0)])
def test_dip_lambda_d_defaults_to_the_study_ratio(name, factor):
    from trainables.models import build_model
    from trainables.models.networks import Encoder  # noqa: F401  (the backbone the model builds)

    class Spec:
        factor_sizes = (3, 3)
        factor_names = ("a", "b")

    class Dataset:
        spec, num_channels = Spec(), 1

    cfg = TrialConfig.from_dict({"model": name, "lambda_od": 2.0, "latent_dim": 4, "device": "cpu"})
    model = build_model(cfg, Dataset())
    assert model.lambda_d == pytest.approx(2.0 * factor)
    losses = model.train_step(torch.rand(8, 1, 64, 64), 0)
    assert set(losses) == {"recon", "kl", "dip", "loss"} and all(torch.isfinite(v) for v in losses.values())
