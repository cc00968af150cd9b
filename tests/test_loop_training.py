"""The training loop with a tiny stand-in dataset and model (defined here, never in the product).

The stand-ins follow the interfaces of docs/architecture.md, so these tests pin the loop's own
behaviour: evaluation schedule, reports, history, checkpoints, exact resume, divergence.
"""
from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from trainables import TrialConfig, WeakdisError, train
from trainables import loop
from trainables.checkpoint import load_checkpoint
from trainables.environment import record_environment
from trainables.evaluation import METRIC_KEYS


class TinyDataset:
    """A 1-channel 64x64 dataset: a bright 8x8 square at one of 3 x 3 positions plus pixel noise."""

    def __init__(self, n: int = 240, seed: int = 0, device: str = "cpu") -> None:
        generator = torch.Generator().manual_seed(seed)
        self.factors = torch.randint(0, 3, (n, 2), generator=generator)
        self.combinations = self.factors[:, 0] * 3 + self.factors[:, 1]
        images = (torch.rand(n, 1, 64, 64, generator=generator) < 0.02).to(torch.uint8) * 255
        for i, (fx, fy) in enumerate(self.factors.tolist()):
            images[i, 0, 8 + 16 * fy: 24 + 16 * fy, 8 + 16 * fx: 24 + 16 * fx] = 255
        self.images = images.to(device)
        self.factors = self.factors.to(device)
        self.combinations = self.combinations.to(device)
        order = torch.randperm(n, generator=generator)
        n_train, n_val = int(0.7 * n), int(0.1 * n)
        self.splits = {"train": order[:n_train].to(device), "val": order[n_train:n_train + n_val].to(device),
                       "test": order[n_train + n_val:].to(device)}
        self.num_channels = 1

    def labelled_indices(self, tau: int, seed: int, sampling: str = "uniform") -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return self.splits["train"][torch.randperm(len(self.splits["train"]), generator=generator)[:tau]]

    def sample_indices(self, split: str, n: int, generator: torch.Generator) -> torch.Tensor:
        pool = self.splits[split]
        return pool[torch.randint(0, len(pool), (n,), generator=generator, device=pool.device)]

    def batch(self, indices, *, noise=None, generator=None) -> torch.Tensor:
        return self.images[indices].float() / 255.0


class TinyModel(torch.nn.Module):
    """A linear autoencoder with its own optimiser; noise from the global RNG makes RNG state matter.
    From step ``nan_from_step`` on (a test sets it) one of its losses is NaN."""

    nan_from_step: int | None = None

    def __init__(self, latent_dim: int, lr: float) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(64 * 64, latent_dim)
        self.decoder = torch.nn.Linear(latent_dim, 64 * 64)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self.nan_at = TinyModel.nan_from_step
        self.prior = None
        self.supervision = None

    def set_supervision(self, images, factors):
        self.supervision = (images, factors)

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z).view(-1, 1, 64, 64)

    def reconstruct(self, x):
        return torch.sigmoid(self.decode(self.encode(x)))

    def representation(self, x):
        return {"factors": None, "codes": self.encode(x)}

    def train_step(self, batch, step):
        z = self.encode(batch)
        z = z + 0.01 * torch.randn_like(z)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(self.decode(z), batch)
        self.optimizer.zero_grad(set_to_none=True)
        recon.backward()
        self.optimizer.step()
        codes = (z ** 2).mean().detach()
        if self.nan_at is not None and step >= self.nan_at:
            codes = codes * math.inf - codes * math.inf  # nan
        return {"recon": recon.detach(), "code_norm": codes}

    def state_dict(self, *args, **kwargs):
        return {"networks": super().state_dict(*args, **kwargs), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state, strict=True):
        super().load_state_dict(state["networks"], strict=strict)
        self.optimizer.load_state_dict(state["optimizer"])


@pytest.fixture
def stand_ins(monkeypatch):
    """Swap in the stand-in dataset and model (the metrics are the real ones, on few points)."""
    built = []

    def load_dataset(cfg, device):
        return TinyDataset(seed=cfg.seed, device=str(device))

    def build_model(cfg, dataset):
        model = TinyModel(cfg.latent_dim, cfg.lr)
        built.append(model)
        return model

    monkeypatch.setattr(loop, "load_trial_dataset", load_dataset)
    monkeypatch.setattr(loop, "build_trial_model", build_model)
    # The stand-in dataset 'tiny:v1' is not in the version registry that `weakdis train` checks
    # before it starts (tests/test_bad_inputs.py covers those checks).
    monkeypatch.setattr("trainables.validation.check_trial_inputs", lambda cfg, source="": None)
    return built


def tiny_config(**changes) -> TrialConfig:
    values = dict(model="betavae", dataset="tiny:v1", steps=40, batch_size=16, lr=3e-3, latent_dim=4,
                  tau=10, eval_every=20, eval_points=30, seed=3, device="cpu", log_every=5)
    values.update(changes)
    return TrialConfig.from_dict(values)


def test_evaluates_every_eval_every_and_at_the_end(stand_ins, tmp_path):
    reports = []
    result = train(tiny_config(steps=50, eval_every=20), out_dir=tmp_path,
                   report=lambda metrics, ckpt: reports.append((dict(metrics), ckpt)))
    assert [m["step"] for m, _ in reports] == [20, 40, 50]
    for metrics, ckpt in reports:
        assert set(METRIC_KEYS) <= set(metrics)
        assert {"step", "train_seconds", "loss_recon", "loss_code_norm"} <= set(metrics)
        assert ckpt == str(tmp_path / "checkpoint")
    assert [row["step"] for row in result.history] == [20, 40, 50]
    assert result.metrics == result.history[-1]
    # losses reported are the means since the previous report: training lowers the BCE
    assert reports[-1][0]["loss_recon"] < reports[0][0]["loss_recon"]
    # train_seconds accumulates
    assert 0 < reports[0][0]["train_seconds"] <= reports[-1][0]["train_seconds"]
    # the stand-in has no prior: the weak-disentanglement columns do not apply
    assert math.isnan(result.metrics["clustering_accuracy"])
    assert math.isnan(result.metrics["raw_dci"])
    # only a model that the registry declares weakly supervised receives the tau labelled samples
    assert stand_ins[0].supervision is None
    train(tiny_config(model="absae", steps=1, eval_every=0))
    images, factors = stand_ins[1].supervision
    assert images.shape == (10, 1, 64, 64) and factors.shape == (10, 2)


def test_the_models_final_work_runs_once_after_the_last_step_before_its_evaluation(stand_ins, tmp_path, monkeypatch):
    history = tmp_path / "run" / "history.csv"
    calls = []

    def finish_training(model, step, say):
        rows = len(history.read_text().splitlines()) - 1 if history.exists() else 0
        calls.append((step, rows))    # evaluations written before it
        say(f"finishing at step {step}")

    monkeypatch.setattr(TinyModel, "finish_training", finish_training, raising=False)

    class Progress:
        lines: list[str] = []

        def update(self, step, losses):
            pass

        def write(self, line):
            self.lines.append(line)

    cfg = tiny_config(steps=40, eval_every=20)
    train(cfg.replace(steps=20), out_dir=tmp_path / "run", progress=Progress())
    assert calls == [(20, 0)] and Progress.lines == ["finishing at step 20"]
    # resumed to a later end: once more, at the new last step, after step 20's evaluation and before step 40's
    resumed = train(cfg, out_dir=tmp_path / "run", resume_from=tmp_path / "run" / "checkpoint", progress=Progress())
    assert calls == [(20, 0), (40, 1)]
    assert [int(row["step"]) for row in resumed.history] == [20, 40]


def test_writes_history_metrics_json_and_checkpoint(stand_ins, tmp_path):
    result = train(tiny_config(), out_dir=tmp_path)
    with (tmp_path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(float(r["step"])) for r in rows] == [20, 40]
    assert float(rows[-1]["recon_error"]) == pytest.approx(result.metrics["recon_error"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["model"] == "betavae" and saved["seed"] == 3 and saved["step"] == 40
    assert saved["recon_error"] == pytest.approx(result.metrics["recon_error"])
    cfg, state = load_checkpoint(tmp_path / "checkpoint")
    assert cfg == tiny_config()
    assert state["step"] == 40 and len(state["history"]) == 2
    # a fresh trial in the same directory starts a fresh history
    train(tiny_config(steps=20), out_dir=tmp_path)
    with (tmp_path / "history.csv").open() as handle:
        assert [int(float(r["step"])) for r in csv.DictReader(handle)] == [20]


def test_training_lowers_reconstruction_error_below_the_untrained_model(stand_ins):
    untrained = train(tiny_config(steps=1, eval_every=0)).metrics["recon_error"]
    trained = train(tiny_config(steps=60, eval_every=0)).metrics["recon_error"]
    assert trained < 0.5 * untrained


def test_same_seed_same_numbers_other_seed_other_numbers(stand_ins):
    a = train(tiny_config()).metrics
    b = train(tiny_config()).metrics
    c = train(tiny_config(seed=4)).metrics
    assert a["recon_error"] == b["recon_error"] and a["loss_recon"] == b["loss_recon"]
    assert a["recon_error"] != c["recon_error"]


def _same_numbers(expected: dict, got: dict) -> bool:
    """Exactly equal, key by key (NaN equals NaN)."""
    return expected.keys() == got.keys() and all(
        a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
        for a, b in ((expected[k], got[k]) for k in expected))


def test_resumed_trial_ends_with_the_same_numbers_as_an_uninterrupted_one(tmp_path):
    # The real AbsAE + ReL with noise augmentation and the real metrics: the checkpoint must carry
    # the networks, optimisers, prior, model RNG, batch and noise generators and the loss sums.
    cfg = TrialConfig(model="absae", dataset="dsprites:v2", data_images=2000, steps=12, warmup_steps=4,
                      prior_refit_every=3, batch_size=16, tau=200, eval_every=6, eval_points=60, rel_batch_size=16,
                      noise="bernoulli", noise_level=0.1, device="cpu", seed=5, alpha=0.0)
    full = train(cfg, out_dir=tmp_path / "full")
    train(cfg.replace(steps=6), out_dir=tmp_path / "part")
    resumed = train(cfg, out_dir=tmp_path / "part", resume_from=tmp_path / "part" / "checkpoint")
    timing = {"train_seconds"}
    assert len(full.history) == len(resumed.history) == 2
    for expected, got in zip(full.history, resumed.history):
        expected = {k: v for k, v in expected.items() if k not in timing}
        got = {k: v for k, v in got.items() if k not in timing}
        assert _same_numbers(expected, got), {k: (expected[k], got.get(k)) for k in expected if expected[k] != got.get(k)}
    assert math.isfinite(full.metrics["relation_accuracy"]) and math.isfinite(full.metrics["dci"])
    full_state = load_checkpoint(tmp_path / "full" / "checkpoint")[1]["model"]["modules"]
    resumed_state = load_checkpoint(tmp_path / "part" / "checkpoint")[1]["model"]["modules"]
    assert full_state.keys() == resumed_state.keys()
    for key in full_state:
        assert torch.equal(full_state[key], resumed_state[key]), key
    with (tmp_path / "part" / "history.csv").open() as handle:
        assert [int(float(r["step"])) for r in csv.DictReader(handle)] == [6, 12]
    # environment.json: one entry per start, saying where each part ran
    starts = json.loads((tmp_path / "part" / "environment.json").read_text())
    assert [entry["from_step"] for entry in starts] == [0, 6]
    assert all(entry["torch"] == torch.__version__ and entry["device"] == "cpu" for entry in starts)
    assert starts[0]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert len(json.loads((tmp_path / "full" / "environment.json").read_text())) == 1


def test_environment_record_starts_again_over_a_damaged_file_and_says_so(tmp_path, caplog):
    (tmp_path / "environment.json").write_text("{not json")
    with caplog.at_level("WARNING"):
        record_environment(tmp_path, 40, torch.device("cpu"), fresh=False)
    assert "environment.json is not a JSON list" in caplog.text
    entries = json.loads((tmp_path / "environment.json").read_text())
    assert [entry["from_step"] for entry in entries] == [40]
    record_environment(tmp_path, 0, torch.device("cpu"), fresh=True)    # a fresh trial: a new list
    assert [entry["from_step"] for entry in json.loads((tmp_path / "environment.json").read_text())] == [0]


def test_resume_with_a_different_model_setting_is_refused(stand_ins, tmp_path):
    train(tiny_config(steps=20), out_dir=tmp_path)
    with pytest.raises(WeakdisError, match=r"its lr=0.003 differs from the config's lr=0.01"):
        train(tiny_config(steps=40, lr=1e-2), resume_from=tmp_path / "checkpoint")


def test_divergence_names_step_and_loss_and_keeps_what_was_written(stand_ins, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyModel, "nan_from_step", 27)
    cfg = tiny_config(steps=60, eval_every=20)
    reports = []
    with pytest.raises(WeakdisError, match=r"^trial diverged at step 27: loss 'code_norm' is nan$"):
        train(cfg, out_dir=tmp_path, report=lambda m, c: reports.append(m["step"]))
    assert reports == [20]
    with (tmp_path / "history.csv").open() as handle:
        assert [int(float(r["step"])) for r in csv.DictReader(handle)] == [20]
    _, state = load_checkpoint(tmp_path / "checkpoint")
    assert state["step"] == 20  # the last good checkpoint stays
    assert not (tmp_path / "metrics.json").exists()


def test_divergence_is_caught_before_an_evaluation_reports_it(stand_ins, tmp_path, monkeypatch):
    # nan at step 3 with log_every=5: found at step 5, long before the evaluation at 20
    monkeypatch.setattr(TinyModel, "nan_from_step", 3)
    with pytest.raises(WeakdisError, match="at step 3: loss 'code_norm'"):
        train(tiny_config(), out_dir=tmp_path)
    assert not (tmp_path / "history.csv").exists()


def test_loss_tracker_means_and_first_non_finite_loss():
    tracker = loop.LossTracker(torch.device("cpu"))
    tracker.add(0, {"a": torch.tensor(1.0), "b": torch.tensor(2.0)})
    tracker.add(1, {"a": torch.tensor(3.0)})
    assert tracker.means() == {"loss_a": 2.0, "loss_b": 2.0}
    assert tracker.divergence() is None
    tracker.add(2, {"a": torch.tensor(1.0), "b": torch.tensor(-math.inf)})
    tracker.add(3, {"a": torch.tensor(math.nan)})
    assert tracker.divergence() == (2, "b", -math.inf)
    tracker.reset()
    assert tracker.means() == {}


def test_device_names_are_checked():
    assert loop.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert loop.resolve_device("auto").type == expected
    with pytest.raises(WeakdisError, match="device='gpu0' is invalid"):
        loop.resolve_device("gpu0")


def test_unknown_config_key_is_an_error_naming_it():
    with pytest.raises(WeakdisError, match="unknown key 'stpes'"):
        TrialConfig.from_dict({"stpes": 3})


def test_the_loop_imports_without_ray():
    import subprocess
    import sys

    code = ("import sys, trainables, trainables.loop, trainables.train_cli, trainables.images; "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
