"""The Ray wrappers in real (small) Tune runs, with the stand-ins of test_loop_training.

One local Ray instance (2 CPUs) serves every test of this module. The stand-in dataset and model
reach Ray's worker processes through ``worker_process_setup_hook`` (this module, importable there
because tests/ is put on the workers' PYTHONPATH).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

import test_loop_training as standins  # noqa: E402
from trainables import train  # noqa: E402
from trainables.evaluation import METRIC_KEYS  # noqa: E402

pytestmark = pytest.mark.ray


CRASH_DIR = "WEAKDIS_TEST_CRASH_DIR"


class DistributedTinyModel(standins.TinyModel):
    """The stand-in, averaging gradients over ranks (as the real models do under torch.distributed),
    and failing once at the step written in ``$WEAKDIS_TEST_CRASH_DIR/crash_at`` (a lost worker): the
    crash removes that file and leaves ``crashed``."""

    def __init__(self, cfg):
        super().__init__(cfg.latent_dim, cfg.lr)
        self.crash_file = Path(os.environ[CRASH_DIR]) / "crash_at" if os.environ.get(CRASH_DIR) else None
        self.crash_at = int(self.crash_file.read_text()) if self.crash_file and self.crash_file.exists() else None
        if torch.distributed.is_initialized():
            for parameter in self.parameters():
                torch.distributed.broadcast(parameter.data, 0)

    def train_step(self, batch, step):
        if self.crash_at is not None and step == self.crash_at and self.crash_file.exists():
            self.crash_file.unlink()
            (self.crash_file.parent / "crashed").write_text("crashed once")
            raise RuntimeError("simulated worker loss")
        z = self.encode(batch)
        z = z + 0.01 * torch.randn_like(z)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(self.decode(z), batch)
        self.optimizer.zero_grad(set_to_none=True)
        recon.backward()
        if torch.distributed.is_initialized():
            for parameter in self.parameters():
                torch.distributed.all_reduce(parameter.grad)
                parameter.grad /= torch.distributed.get_world_size()
        self.optimizer.step()
        return {"recon": recon.detach()}


def install_standins() -> None:
    from trainables import loop

    loop.load_trial_dataset = lambda cfg, device: standins.TinyDataset(seed=cfg.seed, device=str(device))
    loop.build_trial_model = lambda cfg, dataset: DistributedTinyModel(cfg)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    tests = str(Path(__file__).resolve().parent)
    crash_dir = tmp_path_factory.mktemp("crash")
    python_path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "test_tune_ray.install_standins",
                          # one intra-op thread a 1-CPU trial, as search.runner.start_ray gives them:
                          # set here, before the hook imports torch, or the workers spin two
                          "env_vars": {"OMP_NUM_THREADS": "1", "PYTHONPATH": python_path, CRASH_DIR: str(crash_dir),
                                       "WEAKDIS_DATA": str(tmp_path_factory.mktemp("cache"))}})
    yield tmp_path_factory.mktemp("ray-results"), crash_dir
    ray.shutdown()


TRIAL = dict(model="betavae", dataset="tiny:v1", steps=40, batch_size=16, lr=3e-3, latent_dim=4, tau=10,
             eval_every=20, eval_points=30, seed=3, device="cpu", log_every=5)


def _run(trainable, config, storage, name, max_failures=0):
    tuner = tune.Tuner(
        trainable,
        param_space=config,
        tune_config=tune.TuneConfig(metric="recon_error", mode="min", num_samples=1),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  sync_config=tune.SyncConfig(sync_artifacts=True)),   # as search.runner
    )
    results = tuner.fit()
    assert len(results) == 1
    return results[0]


def _reference(config, monkeypatch):
    monkeypatch.setattr("trainables.loop.load_trial_dataset",
                        lambda cfg, device: standins.TinyDataset(seed=cfg.seed, device=str(device)))
    monkeypatch.setattr("trainables.loop.build_trial_model", lambda cfg, dataset: DistributedTinyModel(cfg))
    from trainables.tune import trial_config_from

    return train(trial_config_from(config))


def test_failed_trial_is_restored_from_its_tune_checkpoint_and_continues(local_ray, tmp_path, monkeypatch,
                                                                         one_torch_thread):
    # one_torch_thread: the reference below runs in this process with the worker's one intra-op
    # thread; with two, under load, the two runs differed in the last digits
    from trainables.tune import with_trial_resources

    storage, crash_dir = local_ray
    # the first attempt crashes at step 30, after the checkpoint of step 20; Tune restores it once
    (crash_dir / "crash_at").write_text("30")
    config = {**TRIAL, "trial_label": "tiny"}
    result = _run(with_trial_resources(cpus=1), config, storage, "restored", max_failures=1)
    assert (crash_dir / "crashed").exists() and result.error is None
    assert result.metrics["step"] == 40 and result.checkpoint is not None
    history = result.metrics_dataframe
    # depending on when Tune's progress file was flushed it keeps the first attempt's row of step 20
    assert list(history["step"])[-1] == 40 and set(history["step"]) <= {20, 40}
    for key in METRIC_KEYS + ("train_seconds", "loss_recon"):   # every objective in every report
        assert key in history.columns
    assert history["recon_error"].notna().all() and history["loss_recon"].notna().all()
    # the trial's own files in storage: the history rewritten from the checkpoint, one entry a start
    trial_dir = Path(result.path)
    assert list(pd.read_csv(trial_dir / "history.csv")["step"]) == [20, 40]
    assert [entry["from_step"] for entry in json.loads((trial_dir / "environment.json").read_text())] == [0, 20]
    # the restored trial resumed at step 20's checkpoint: same numbers as an uninterrupted trial
    monkeypatch.delenv(CRASH_DIR, raising=False)
    expected = _reference(config, monkeypatch).metrics
    for key in ("recon_error", "loss_recon", "dci", "mig"):
        got, want = result.metrics[key], expected[key]
        assert got == want or (math.isnan(got) and math.isnan(want)), (key, got, want)
    assert math.isfinite(expected["recon_error"])


@pytest.mark.slow   # ~60 s of Ray Train start-up; the ranks' DDP logic is in the default run (test_models_parallel.py)
def test_torchtrainer_with_two_gloo_workers_reports_rank_zero_metrics(local_ray):
    """python -m pytest -m slow tests/test_tune_ray.py -k torchtrainer -q"""
    from trainables.tune import with_trial_resources

    result = _run(with_trial_resources(cpus=0.5, workers=2), dict(TRIAL), local_ray[0], "ddp")
    assert result.error is None
    history = result.metrics_dataframe
    assert list(history["step"]) == [20, 40]
    for key in METRIC_KEYS:
        assert key in history.columns
    assert all(math.isfinite(v) for v in history["recon_error"])   # rank 0 evaluated
    assert result.checkpoint is not None
    # rank 0's own files, forwarded with its reports, are in the trial's directory as for one process
    trial_dir = Path(result.path)
    assert list(pd.read_csv(trial_dir / "history.csv")["step"]) == [20, 40]
    environment = json.loads((trial_dir / "environment.json").read_text())
    assert [(entry["from_step"], entry["world_size"]) for entry in environment] == [(0, 2)]
    final = json.loads((trial_dir / "metrics.json").read_text())
    assert final["step"] == 40 and final["recon_error"] == pytest.approx(result.metrics["recon_error"])
    with result.checkpoint.as_directory() as directory:
        from trainables.checkpoint import load_checkpoint

        _, state = load_checkpoint(directory)
        assert state["step"] == 40 and len(state["rng_by_rank"]) == 2
        # the two ranks drew different batches: their batch generators differ
        batch_states = [s["generators"]["batch"] for s in state["rng_by_rank"]]
        assert not torch.equal(batch_states[0], batch_states[1])


@pytest.mark.slow   # ~90 s: two TorchTrainer start-ups
def test_a_restored_multi_worker_trial_keeps_its_files_one_environment_entry_a_start(local_ray):
    """python -m pytest -m slow tests/test_tune_ray.py -k restored_multi_worker -q"""
    from trainables.tune import with_trial_resources

    storage, crash_dir = local_ray
    # a rank fails at step 30, after the checkpoint of step 20; Tune restores the trial once
    (crash_dir / "crash_at").write_text("30")
    result = _run(with_trial_resources(cpus=0.5, workers=2), dict(TRIAL), storage, "ddp-restored", max_failures=1)
    assert (crash_dir / "crashed").exists() and result.error is None and result.metrics["step"] == 40
    trial_dir = Path(result.path)
    # the restored rank 0 got the first attempt's files back: the history rewritten from the
    # checkpoint, the environment record with the first start and the restart at step 20
    assert list(pd.read_csv(trial_dir / "history.csv")["step"]) == [20, 40]
    environment = json.loads((trial_dir / "environment.json").read_text())
    assert [(entry["from_step"], entry["world_size"]) for entry in environment] == [(0, 2), (20, 2)]
    assert json.loads((trial_dir / "metrics.json").read_text())["step"] == 40
