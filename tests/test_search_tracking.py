"""What a sweep leaves for the tracking tools: the Optuna study in <run>/optuna.db (optuna-dashboard
opens it, --resume continues it), Ray Tune's TensorBoard files per trial, and an MLflow file store
filled by the `callbacks: {mlflow: ...}` of the sweep YAML. One small sweep on a real local Ray with
the arithmetic trainable of test_search_runner."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import yaml

from search.runner import OPTUNA_FILE, SWEEP_FILE, run_sweep
from search.schema import parse_sweep_config
from test_search_runner import BASE, make_trainable, ray_session  # noqa: F401  (the fixture)
from trainables.errors import WeakdisError

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def tracked_run(ray_session, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("tracked")
    store = root / "mlruns"
    config = parse_sweep_config(
        {**BASE, "num_samples": 4, "callbacks": {"mlflow": {"tracking_uri": f"file:{store}"}}},
        source="tracked.yaml", default_name="tracked",
    )
    outcome = run_sweep(config, storage=str(root / "runs"), name="tracked", function=make_trainable(),
                        stream=io.StringIO())
    return Path(outcome.run_dir), store


def test_the_optuna_study_is_kept_in_the_run_directory(tracked_run):
    import optuna

    run_dir, _ = tracked_run
    url = f"sqlite:///{run_dir / OPTUNA_FILE}"
    assert (run_dir / OPTUNA_FILE).is_file()
    # what optuna-dashboard reads: every study of the storage, with its finished trials
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage=url)}
    assert set(summaries) == {"tracked-absae", "tracked-betavae"}
    complete = [t for name in summaries for t in optuna.load_study(study_name=name, storage=url).trials
                if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    assert all(len(t.values) == 2 and "beta" in t.params for t in complete)
    # the dci the toy reports at its last step is beta / 20 + 3 / 100
    assert sorted(t.values[0] for t in complete) == pytest.approx(
        sorted(t.params["beta"] / 20 + 0.03 for t in complete))
    # sweep.yaml records the storage, so that --resume reopens the same studies
    recorded = yaml.safe_load((run_dir / SWEEP_FILE).read_text())
    assert recorded["searcher"]["storage"] == url


def test_ray_writes_tensorboard_files_per_trial(tracked_run):
    run_dir, _ = tracked_run
    trial_dirs = [p for p in run_dir.iterdir() if p.is_dir() and (p / "result.json").is_file()]
    assert len(trial_dirs) == 4
    for trial_dir in trial_dirs:
        assert list(trial_dir.glob("events.out.tfevents.*")), f"no TensorBoard file in {trial_dir}"


def test_the_mlflow_callback_logs_every_trial_to_a_file_store(tracked_run, monkeypatch):
    from mlflow.tracking import MlflowClient

    _, store = tracked_run
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "dci")
        assert [m.step for m in history] == [1, 2, 3]
        beta = float(run.data.params["beta"])
        assert history[-1].value == pytest.approx(beta / 20 + 0.03)
        assert run.data.params["model"] in ("absae", "betavae")


def test_callbacks_are_validated_before_ray_starts():
    with pytest.raises(WeakdisError, match=r"unknown key 'mlfow' in callbacks \(did you mean 'mlflow'\?\)"):
        parse_sweep_config({**BASE, "callbacks": {"mlfow": {}}}, source="x.yaml")
    with pytest.raises(WeakdisError, match=r"unknown key 'uri' in callbacks.mlflow"):
        parse_sweep_config({**BASE, "callbacks": {"mlflow": {"uri": "file:/tmp"}}}, source="x.yaml")
    config = parse_sweep_config({**BASE, "callbacks": {"mlflow": None}}, source="x.yaml")
    assert config.callbacks == {"mlflow": {}}
    assert parse_sweep_config(config.to_dict(), source="again").callbacks == {"mlflow": {}}


def test_a_missing_tracking_package_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(WeakdisError, match=r"callbacks.wandb needs the wandb package.*weakdis\[wandb\]"):
        parse_sweep_config({**BASE, "callbacks": {"wandb": {"project": "p"}}}, source="x.yaml")


@pytest.mark.parametrize("uri", ["file:./mlruns", "./mlruns", "file:{abs}", "file://{abs}"])
def test_local_mlflow_stores_become_absolute_file_uris(uri, tmp_path, monkeypatch):
    from search.runner import build_callbacks

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    config = parse_sweep_config({**BASE, "callbacks": {"mlflow": {"tracking_uri": uri.format(abs=tmp_path / "mlruns")}}},
                                source="x.yaml", default_name="named")
    callback, = build_callbacks(config)
    assert callback.tracking_uri == (tmp_path / "mlruns").as_uri()
    assert callback.experiment_name == "named"
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
