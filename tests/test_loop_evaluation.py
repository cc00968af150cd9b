"""Evaluation values with the real metrics, and one short trial of a real model on generated data."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from test_loop_training import TinyDataset
from trainables import TrialConfig, evaluate, load_trial, train
from analysis.metrics.columns import EvaluationInputs
from trainables.evaluation import METRIC_KEYS, compute_columns, evaluation_indices
from weakdis.registry import OPTIONAL_METRIC_NAMES


class FactorEncoder(torch.nn.Module):
    """Codes = the true factors of each image (read off the stand-in's square position) + noise
    dimensions; reconstructs with a fixed probability. A stand-in with a known representation."""

    def __init__(self, dataset: TinyDataset, noise_dims: int, scramble: bool = False) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.noise_dims = noise_dims
        self.scramble = scramble
        self.prior = None

    def _factors(self, x):
        # centre of mass of the bright square -> its 3 x 3 position (the factors of TinyDataset)
        mass = (x[:, 0] > 0.5).float()
        mass = mass * (torch.nn.functional.avg_pool2d(mass[:, None], 5, 1, 2)[:, 0] > 0.9)
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        total = mass.sum((1, 2)).clamp(min=1)
        cx, cy = (mass * xs).sum((1, 2)) / total, (mass * ys).sum((1, 2)) / total
        return torch.stack([((cx - 16) / 16).round(), ((cy - 16) / 16).round()], 1).clamp(0, 2)

    def reconstruct(self, x):
        return torch.full_like(x, 0.25)

    def representation(self, x):
        factors = self._factors(x)
        generator = torch.Generator().manual_seed(len(x))
        noise = torch.rand(len(x), self.noise_dims, generator=generator)
        if self.scramble:
            factors = torch.rand(len(x), 2, generator=generator)
        return {"factors": None, "codes": torch.cat([factors, noise], 1)}


def test_recon_error_is_the_per_pixel_mse_against_images_in_unit_range():
    dataset = TinyDataset()
    cfg = TrialConfig(model="betavae", dataset="tiny:v1", eval_points=30, seed=1, device="cpu")
    metrics = evaluate(FactorEncoder(dataset, 2), dataset, cfg)
    test = dataset.splits["test"]
    x = dataset.images[test].float() / 255
    assert metrics["recon_error"] == pytest.approx(((x - 0.25) ** 2).mean().item(), rel=1e-6)
    assert set(metrics) == set(METRIC_KEYS)


def test_a_factor_aligned_code_scores_high_and_a_random_one_low():
    dataset = TinyDataset(n=600)
    cfg = TrialConfig(model="betavae", dataset="tiny:v1", eval_points=120, seed=0, device="cpu")
    good = evaluate(FactorEncoder(dataset, 2), dataset, cfg)
    bad = evaluate(FactorEncoder(dataset, 2, scramble=True), dataset, cfg)
    assert good["dci_informativeness"] > 0.95 and good["mig"] > 0.6
    assert good["dci"] == pytest.approx(
        (good["dci_disentanglement"] + good["dci_completeness"] + good["dci_informativeness"]) / 3)
    assert bad["dci_informativeness"] < 0.7 and bad["mig"] < 0.3 and bad["dci"] < good["dci"] - 0.3
    assert bad["sap"] < good["sap"]
    # VAE-like model without a prior: the weak-disentanglement and raw columns do not apply
    for key in ("raw_dci", "raw_mig", "raw_sap", "clustering_accuracy", "accepted_ratio", "relation_accuracy"):
        assert math.isnan(good[key])
    # deterministic
    assert evaluate(FactorEncoder(dataset, 2), dataset, cfg) == good


def test_columns_split_two_to_one_and_degenerate_inputs_give_nan():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, size=(90, 2))
    codes = np.concatenate([factors, rng.random((90, 1))], 1).astype(np.float32)
    inputs = EvaluationInputs(representation=codes, factors=factors, codes=codes, seed=0, dci_method="fast")
    scores = compute_columns(inputs, "betavae")
    from analysis.metrics import dci, mig, sap

    expected = dci(codes[:60], factors[:60], codes[60:], factors[60:], random_state=0, method="fast")
    assert scores["dci_disentanglement"] == expected["disentanglement"]
    assert scores["dci_informativeness"] == expected["informativeness_test"]
    assert scores["mig"] == mig(codes, factors, random_state=0)["mig"]
    assert scores["sap"] == sap(codes[:60], factors[:60], codes[60:], factors[60:], random_state=0)["sap"]
    constant = np.zeros((90, 2), dtype=np.int64)
    with pytest.warns(RuntimeWarning, match="could not be computed"):
        degenerate = compute_columns(
            EvaluationInputs(representation=codes, factors=constant, codes=codes, seed=0), "betavae")
    assert math.isnan(degenerate["mig"])


def test_a_misspelt_metric_option_reaches_the_metric_instead_of_running_its_default():
    codes = np.random.default_rng(0).random((90, 2))
    factors = np.random.default_rng(1).integers(0, 3, size=(90, 2))
    with pytest.warns(RuntimeWarning, match="dci method must be one of"):
        scores = compute_columns(EvaluationInputs(representation=codes, factors=factors, codes=codes, seed=0,
                                                  dci_method="fsat"), "betavae")
    assert math.isnan(scores["dci"]) and math.isfinite(scores["mig"])


def test_evaluation_indices_are_seeded_and_within_the_split():
    test = torch.arange(100, 140)
    a, b = evaluation_indices(test, 10, seed=1, stream="s"), evaluation_indices(test, 10, seed=1, stream="s")
    assert torch.equal(a, b) and len(set(a.tolist())) == 10 and set(a.tolist()) <= set(test.tolist())
    assert not torch.equal(a, evaluation_indices(test, 10, seed=2, stream="s"))
    assert not torch.equal(a, evaluation_indices(test, 10, seed=1, stream="t"))
    assert len(evaluation_indices(test, 500, seed=1, stream="s")) == 40


@pytest.mark.parametrize("model", ["absae", "mae"])
def test_a_real_model_trains_evaluates_every_column_and_reloads(model, tmp_path):
    cfg = TrialConfig(model=model, dataset="dsprites:v2", data_images=2000, steps=8, warmup_steps=4, batch_size=16,
                      tau=200, eval_every=0, eval_points=150, rel_batch_size=16, device="cpu", seed=0,
                      latent_dim=8 if model == "absae" else 4, alpha=0.0)
    result = train(cfg, out_dir=tmp_path)
    metrics = result.metrics
    for key in METRIC_KEYS:
        # optional columns are computed only when cfg.metrics lists them; the probe needs a class
        # label (the digits datasets), the result accuracy binary relations (HWF)
        if (key in OPTIONAL_METRIC_NAMES or key.startswith("linear_probe_accuracy")
                or key == "relation_result_accuracy"):
            assert math.isnan(metrics[key]), key
            continue
        ratio_key = key.replace("clustering_accuracy", "accepted_ratio").replace("relation_accuracy",
                                                                                  "relation_accepted_ratio")
        # an accuracy over no accepted code is NaN by definition
        assert math.isfinite(metrics[key]) or metrics.get(ratio_key) == 0.0, key
    assert metrics["accepted_ratio_a0"] == 1.0 and metrics["relation_accepted_ratio_d10_a0"] == 1.0
    assert metrics["relation_accuracy_d1_a0"] == metrics["relation_accuracy"]   # cfg: depth 1, alpha 0
    assert 0 < metrics["recon_error"] < 0.25
    assert metrics["accepted_ratio"] == 1.0   # alpha = 0 accepts every code
    assert {"loss_recon", "loss_disc", "loss_rel"} <= set(metrics)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["model"] == model and saved["recon_error"] == pytest.approx(metrics["recon_error"])
    loaded_cfg, loaded_model, dataset = load_trial(tmp_path)
    assert loaded_cfg == cfg and not loaded_model.training
    again = evaluate(loaded_model, dataset, loaded_cfg)
    assert again["recon_error"] == pytest.approx(metrics["recon_error"], rel=1e-5)
    assert again["relation_accuracy"] == pytest.approx(metrics["relation_accuracy"])
