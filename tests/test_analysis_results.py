"""Results collection: a real tiny Ray Tune run, and hand-written Tune directories for the edge cases."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import collect_results, load_history, load_results, write_results
from analysis.results import METRIC_COLUMNS, RESULT_COLUMNS
from trainables.errors import WeakdisError

CONTRACT_COLUMNS = [
    "trial_id", "status", "error", "model", "dataset", "seed", "beta", "latent_dim", "tau", "alpha",
    "steps", "recon_error", "dci", "dci_disentanglement", "dci_completeness", "dci_informativeness",
    "mig", "sap", "clustering_accuracy", "accepted_ratio", "relation_accuracy", "train_seconds",
]


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory):
    """A real Ray Tune 2.x experiment: seed 0 finishes, seed 1 fails, seed 2 is stopped after 2 reports."""
    ray = pytest.importorskip("ray")
    from ray import tune

    # Defined here so that Ray pickles it by value: its workers cannot import this test module.
    def _tiny_trainable(config):
        """Reports every 10 steps; seed 1 diverges at its second evaluation with a WeakdisError."""
        from ray import tune

        from trainables.errors import WeakdisError as TrialError

        for index in range(1, config["steps"] // 10 + 1):
            if config["seed"] == 1 and index == 2:
                raise TrialError("diverged: recon loss is nan at step 20 (lr=0.1); expected a finite loss")
            directory = tempfile.mkdtemp()
            Path(directory, "state.txt").write_text(str(index))
            tune.report({"recon_error": 1.0 / index + config["seed"], "dci": 0.1 * index, "mig": 0.05 * index,
                         "raw_dci": 0.01 * index, "step": index * 10, "train_seconds": 2.0 * index},
                        checkpoint=tune.Checkpoint.from_directory(directory))

    storage = tmp_path_factory.mktemp("tune")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(
            _tiny_trainable,
            param_space={"model": "absae", "dataset": "dsprites:v2", "steps": 30, "beta": 4.0, "latent_dim": 8,
                         "tau": 100, "alpha": 0.5, "seed": tune.grid_search([0, 1, 2])},
            tune_config=tune.TuneConfig(metric="dci", mode="max", max_concurrent_trials=2),
            run_config=tune.RunConfig(
                name="tiny", storage_path=str(storage), verbose=0,
                stop=lambda trial_id, result: result["config"]["seed"] == 2 and result["training_iteration"] >= 2,
            ),
        )
        tuner.fit()
    finally:
        ray.shutdown()
    return storage / "tiny"


@pytest.mark.ray
def test_collect_results_reads_a_real_tune_run(tune_run):
    results, history = collect_results(tune_run)
    assert list(results.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert {"raw_dci", "raw_mig", "raw_sap", "step", "trial_dir", "checkpoint"} <= set(results.columns)
    results = results.sort_values("seed").reset_index(drop=True)
    assert list(results["status"]) == ["finished", "failed", "stopped_early"]
    assert list(results["step"]) == [30, 10, 20]
    np.testing.assert_allclose(results["recon_error"], [1 / 3, 2.0, 2.5])
    np.testing.assert_allclose(results["dci"], [0.3, 0.1, 0.2])
    np.testing.assert_allclose(results["raw_dci"], [0.03, 0.01, 0.02])
    np.testing.assert_allclose(results["train_seconds"], [6.0, 2.0, 4.0])
    assert results["sap"].isna().all() and results["clustering_accuracy"].isna().all()
    assert results.loc[1, "error"] == ("weakdis.errors.WeakdisError: diverged: recon loss is nan at step 20 "
                                       "(lr=0.1); expected a finite loss")
    assert results.loc[[0, 2], "error"].isna().all()
    assert results["checkpoint"].str.endswith("checkpoint_000002")[0]
    assert Path(results.loc[2, "checkpoint"]).name == "checkpoint_000001"
    assert all(Path(path).is_dir() for path in results["trial_dir"])
    # dtypes: float64 metrics, Int64 integer config keys, string text
    assert all(results[column].dtype == "float64" for column in METRIC_COLUMNS)
    assert all(results[column].dtype == "Int64" for column in ("seed", "latent_dim", "tau", "steps", "step"))
    assert all(results[column].dtype == "string" for column in ("trial_id", "status", "error", "model", "dataset"))
    assert results["beta"].dtype == "float64" and results["alpha"].dtype == "float64"

    assert len(history) == 3 + 1 + 2
    seed0 = history[history["seed"] == 0]
    assert list(seed0["step"]) == [10, 20, 30]
    np.testing.assert_allclose(seed0["mig"], [0.05, 0.10, 0.15])
    assert list(seed0["training_iteration"]) == [1, 2, 3]


@pytest.mark.ray
def test_write_then_load_round_trips_with_run_column(tune_run, tmp_path):
    results, history = write_results(tune_run)
    for name in ("results.parquet", "results.csv", "history.parquet"):
        assert (tune_run / name).is_file()
    loaded = load_results(tune_run)
    assert list(loaded.columns) == ["run", *results.columns]
    assert (loaded["run"] == "tiny").all()
    pd.testing.assert_frame_equal(loaded.drop(columns="run"), results)
    csv = pd.read_csv(tune_run / "results.csv")
    np.testing.assert_allclose(csv.sort_values("seed")["dci"], [0.3, 0.1, 0.2])
    loaded_history = load_history(tune_run)
    assert len(loaded_history) == len(history) == 6


# --------------------------------------------------------------------------- hand-written Tune directories

def _trial_state(trial_id: str, status: str, config: dict, logdir: str, error: bool = False) -> list[str]:
    """The two JSON strings Tune 2.x writes per trial in experiment_state-*.json (fields we read)."""
    trial = {"trial_id": trial_id, "status": status, "config": config, "relative_logdir": logdir,
             "stub": False, "trainable_name": "trial_function"}
    metadata = {"error_filename": "error.txt" if error else None, "last_result": {}, "num_failures": int(error)}
    return [json.dumps(trial), json.dumps(metadata)]


def _write_trial(run: Path, logdir: str, trial_id: str, config: dict, reports: list[dict]) -> Path:
    directory = run / logdir
    directory.mkdir(parents=True)
    (directory / "params.json").write_text(json.dumps(config))
    lines = []
    for iteration, metrics in enumerate(reports, start=1):
        lines.append(json.dumps({**metrics, "trial_id": trial_id, "training_iteration": iteration,
                                 "time_total_s": float(iteration), "done": False, "config": config}))
    (directory / "result.json").write_text("".join(line + "\n" for line in lines))
    return directory


def _config(seed: int, steps: int = 20, **extra) -> dict:
    return {"model": "betavae", "dataset": "shapes3d:v2", "steps": steps, "beta": 2.0, "latent_dim": 10,
            "seed": seed, "lr": 1e-4, "compile": False, "extra": {}, **extra}


def test_statuses_of_an_interrupted_sweep(tmp_path):
    run = tmp_path / "sweep"
    run.mkdir()
    running = _write_trial(run, "trial_function_aaaaa_00000_0_seed=0", "aaaaa_00000", _config(0),
                           [{"step": 10, "recon_error": 0.5, "dci": 0.2}])
    # a half-written last line of a trial still running is skipped
    with (running / "result.json").open("a") as handle:
        handle.write('{"step": 20, "recon_err')
    failed = _write_trial(run, "trial_function_aaaaa_00001_1_seed=1", "aaaaa_00001", _config(1), [])
    (failed / "error.txt").write_text(
        "Failure # 1 (occurred at 2026-01-01_00-00-00)\nTraceback (most recent call last):\n"
        "  File \"x.py\", line 1, in f\nRuntimeError: CUDA out of memory\n"
        "Failure # 2 (occurred at 2026-01-01_00-01-00)\nray::ImplicitFunc.train() (pid=1, ip=1)\n"
        "  File \"loop.py\", line 9, in train\n    raise WeakdisError(msg)\n"
        "trainables.errors.WeakdisError: diverged at step 5:\nloss=nan\n")
    # restored from a checkpoint at step 10: step 20 reported twice, the later one counts
    _write_trial(run, "trial_function_aaaaa_00002_2_seed=2", "aaaaa_00002", _config(2),
                 [{"step": 10, "recon_error": 0.4}, {"step": 20, "recon_error": 0.3},
                  {"step": 20, "recon_error": 0.25}])
    # a searcher's trial (8-hex id) that has just started: params.json only, no reports yet
    starting = run / "trial_function_0f1e2d3c_5_beta=2.0_2026-01-01"
    starting.mkdir()
    (starting / "params.json").write_text(json.dumps(_config(5)))
    state = {"trial_data": [
        _trial_state("0f1e2d3c", "RUNNING", _config(5), starting.name),
        _trial_state("aaaaa_00000", "RUNNING", _config(0), "trial_function_aaaaa_00000_0_seed=0"),
        _trial_state("aaaaa_00001", "ERROR", _config(1), "trial_function_aaaaa_00001_1_seed=1", error=True),
        _trial_state("aaaaa_00002", "TERMINATED", _config(2), "trial_function_aaaaa_00002_2_seed=2"),
        _trial_state("aaaaa_00003", "PENDING", _config(3), "trial_function_aaaaa_00003_3_seed=3"),
    ], "runner_data": "{}", "stats": "{}"}
    (run / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")  # an older snapshot is ignored
    (run / "experiment_state-2026-01-02_00-00-00.json").write_text(json.dumps(state))

    results, history = collect_results(run)
    by_id = results.set_index("trial_id")
    assert by_id.loc["aaaaa_00000", "status"] == "running"
    assert by_id.loc["aaaaa_00000", "step"] == 10
    assert by_id.loc["aaaaa_00001", "status"] == "failed"
    assert by_id.loc["aaaaa_00001", "error"] == "trainables.errors.WeakdisError: diverged at step 5: loss=nan"
    assert by_id.loc["aaaaa_00002", "status"] == "finished"
    assert by_id.loc["aaaaa_00002", "recon_error"] == 0.25
    assert by_id.loc["aaaaa_00003", "status"] == "pending"
    assert pd.isna(by_id.loc["aaaaa_00003", "recon_error"])
    assert by_id.loc["aaaaa_00003", "seed"] == 3 and by_id.loc["aaaaa_00003", "model"] == "betavae"
    assert pd.isna(by_id.loc["aaaaa_00003", "trial_dir"])
    assert len(results) == 5 and by_id.loc["0f1e2d3c", "status"] == "running"
    assert pd.isna(by_id.loc["0f1e2d3c", "step"]) and by_id.loc["0f1e2d3c", "trial_dir"] == str(starting)
    # keys the sweep did not set carry TrialConfig's defaults, which the trial ran with
    from trainables.config import TrialConfig

    assert (results["alpha"] == TrialConfig().alpha).all() and (results["relation_depth"] == 1).all()
    assert (results["warmup_steps"] == TrialConfig().warmup_steps).all()
    assert results["lr"].dtype == "float64" and results["compile"].dtype == "boolean"
    assert results["extra"].dtype == "string" and by_id.loc["aaaaa_00000", "extra"] == "{}"
    assert list(history[history["trial_id"] == "aaaaa_00002"]["recon_error"]) == [0.4, 0.25]


def test_trials_without_experiment_state_are_judged_from_their_files(tmp_path):
    run = tmp_path / "early"
    run.mkdir()
    _write_trial(run, "trial_function_bbbbb_00000_0", "bbbbb_00000", _config(0, steps=20),
                 [{"step": 10, "recon_error": 0.5}, {"step": 20, "recon_error": 0.4}])
    _write_trial(run, "trial_function_bbbbb_00001_1", "bbbbb_00001", _config(1, steps=20),
                 [{"step": 10, "recon_error": 0.6}])
    starting = run / "absae_0a1b2c3d"  # weakdis sweep's short directory names, nothing reported yet
    starting.mkdir()
    (starting / "params.json").write_text(json.dumps(_config(2, steps=20)))
    results, _ = collect_results(run)
    assert dict(zip(results["trial_id"], results["status"])) == {
        "0a1b2c3d": "pending", "bbbbb_00000": "finished", "bbbbb_00001": "running"}


def test_several_runs_concatenate_with_a_run_column(tmp_path):
    for name, seed in (("first", 0), ("second", 5)):
        run = tmp_path / name
        run.mkdir()
        _write_trial(run, "trial_function_ccccc_00000_0", "ccccc_00000", _config(seed, steps=10),
                     [{"step": 10, "recon_error": 0.1 * (seed + 1)}])
    combined = load_results([tmp_path / "first", tmp_path / "second"])
    assert list(combined["run"]) == ["first", "second"]
    assert list(combined["seed"]) == [0, 5]
    assert combined["run"].dtype == "string" and combined["seed"].dtype == "Int64"
    assert not (tmp_path / "first" / "results.parquet").exists()  # loading never writes


def test_stale_results_parquet_is_rebuilt(tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    directory = _write_trial(run, "trial_function_ddddd_00000_0", "ddddd_00000", _config(0, steps=20),
                             [{"step": 10, "recon_error": 0.5}])
    write_results(run)
    with (directory / "result.json").open("a") as handle:
        handle.write(json.dumps({"step": 20, "recon_error": 0.2, "trial_id": "ddddd_00000"}) + "\n")
    later = (run / "results.parquet").stat().st_mtime + 5
    os.utime(directory / "result.json", (later, later))
    assert load_results(run)["recon_error"].tolist() == [0.2]


def test_empty_and_foreign_directories_give_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeakdisError, match=r"empty: not a sweep run directory \(no experiment_state-\*\.json"):
        collect_results(empty)
    with pytest.raises(WeakdisError, match="run directory not found"):
        load_results(tmp_path / "absent")
    outer = tmp_path / "storage"
    inner = outer / "exp"
    inner.mkdir(parents=True)
    _write_trial(inner, "trial_function_eeeee_00000_0", "eeeee_00000", _config(0), [{"step": 10}])
    with pytest.raises(WeakdisError, match=r"it contains the run directory .*storage/exp"):
        load_results(outer)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "experiment_state-2026.json").write_text("{not json")
    with pytest.raises(WeakdisError, match="not a readable Ray Tune experiment state"):
        collect_results(broken)
    with pytest.raises(WeakdisError, match="remote run directories"):
        load_results("s3://bucket/run")


def test_result_columns_start_with_the_contract():
    assert list(RESULT_COLUMNS[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS


def test_a_copied_run_points_at_its_own_trial_directories(tmp_path):
    import shutil

    run = tmp_path / "cluster" / "sweep"
    run.mkdir(parents=True)
    directory = _write_trial(run, "trial_function_fffff_00000_0", "fffff_00000", _config(0, steps=10),
                             [{"step": 10, "recon_error": 0.1, "checkpoint_dir_name": "checkpoint_000000"}])
    (directory / "checkpoint_000000").mkdir()
    write_results(run)
    copy = tmp_path / "laptop" / "sweep"
    shutil.copytree(run, copy, copy_function=shutil.copy2)  # keeps mtimes: results.parquet stays current
    shutil.rmtree(tmp_path / "cluster")
    (copy / directory.name / "result.json").unlink()  # so only results.parquet knows recon_error
    loaded = load_results(copy)
    assert loaded.loc[0, "recon_error"] == 0.1
    assert loaded.loc[0, "trial_dir"] == str(copy / directory.name)
    assert loaded.loc[0, "checkpoint"] == str(copy / directory.name / "checkpoint_000000")
