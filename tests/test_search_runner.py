"""Sweeps on a real local Ray (one session for the module) with small arithmetic function trainables
that speak the same protocol as trainables.tune.trial_function: failures, a worker killed mid-trial,
ASHA stops, a driver killed and resumed, resuming a finished sweep."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from search.runner import SWEEP_FILE, resume_sweep, run_sweep
from search.schema import parse_sweep_config

pytestmark = pytest.mark.ray

BASE = {
    "dataset": "dsprites:v2",
    "fixed": {"steps": 3, "eval_every": 1},
    "models": {"absae": {"space": {"beta": {"uniform": [0.1, 10.0]}}},
               "betavae": {"space": {"beta": {"uniform": [1.0, 16.0]}}}},
    "space": {"lr": {"loguniform": [1e-4, 1e-2]}},
    "objectives": {"dci": "max", "recon_error": "min"},
    "num_samples": 4,
    "seeds": [0],
    "checkpoint": {"num_to_keep": 1},
}


def sweep_config(**changes):
    return parse_sweep_config({**BASE, **changes}, source="test.yaml", default_name="toy")


def make_trainable(fail_above_beta: float | None = None, crash_marker: str | None = None, sleep: float = 0.0):
    """A function trainable: one report per step with a checkpoint holding the step; resumes from
    Tune's checkpoint; raises WeakdisError for beta > fail_above_beta (as the loop does when a trial
    diverges); SIGKILLs its own process once, after step 2, when crash_marker does not exist yet."""

    def toy(config):
        import json as json_
        import os as os_
        import signal as signal_
        import tempfile
        import time as time_

        from ray import tune

        from trainables.errors import WeakdisError

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                with open(os_.path.join(directory, "state.json")) as file:
                    start = json_.load(file)["step"]
        for step in range(start + 1, config["steps"] + 1):
            time_.sleep(sleep)
            if fail_above_beta is not None and config["beta"] > fail_above_beta and step == 2:
                raise WeakdisError(f"trial diverged at step {step}: loss 'recon' is nan")
            with tempfile.TemporaryDirectory() as directory:
                with open(os_.path.join(directory, "state.json"), "w") as file:
                    json_.dump({"step": step}, file)
                tune.report(
                    {"step": step, "resumed_from": start, "dci": config["beta"] / 20 + step / 100,
                     "recon_error": config["lr"] * 10 + 1 / step},
                    checkpoint=tune.Checkpoint.from_directory(directory),
                )
            if crash_marker is not None and step == 2 and not os_.path.exists(crash_marker):
                open(crash_marker, "w").close()
                os_.kill(os_.getpid(), signal_.SIGKILL)

    return toy


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def reports(trial_dir: str) -> list[dict]:
    lines = (Path(trial_dir) / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_failed_trials_are_recorded_and_the_sweep_goes_on(ray_session, tmp_path):
    out = io.StringIO()
    config = sweep_config(failure={"max_failures": 0}, num_samples=5)
    outcome = run_sweep(config, storage=str(tmp_path), name="faults", function=make_trainable(fail_above_beta=6.0),
                        stream=out)
    run_dir = tmp_path / "faults"
    assert outcome.run_dir == str(run_dir)
    for name in ("results.parquet", "results.csv", "history.parquet", SWEEP_FILE):
        assert (run_dir / name).is_file()
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 5 and set(results["model"]) == {"absae", "betavae"}
    failed = results[results["beta"] > 6.0]
    finished = results[results["beta"] <= 6.0]
    assert len(failed) >= 1 and len(finished) >= 1
    assert (failed["status"] == "failed").all()
    assert failed["error"].str.contains("trial diverged at step 2: loss 'recon' is nan").all()
    assert (finished["status"] == "finished").all() and finished["error"].isna().all()
    assert (finished["step"] == 3).all()
    assert finished["dci"].to_numpy() == pytest.approx((finished["beta"] / 20 + 0.03).to_numpy())
    text = out.getvalue()
    assert f"Results: {run_dir}" in text
    assert "Best trade-off trials (Pareto front of dci max, recon_error min per model)" in text
    assert "trial diverged at step 2" in text
    # the sweep config is stored resolved, so --resume can rebuild everything from the run directory
    # (the Optuna studies' storage included: <run>/optuna.db by default)
    import dataclasses

    expected = sweep_config(failure={"max_failures": 0}, num_samples=5).with_overrides(source="sweep config")
    expected = expected.with_overrides(searcher=dataclasses.replace(
        expected.searcher, storage=f"sqlite:///{Path(run_dir).resolve() / 'optuna.db'}"))
    assert parse_sweep_config(__import__("yaml").safe_load((run_dir / SWEEP_FILE).read_text())) == expected

    # resuming a finished sweep runs nothing again and rebuilds the same results
    before = {row.trial_id: len(reports(row.trial_dir)) for row in results.itertuples() if row.status == "finished"}
    (run_dir / "results.parquet").unlink()
    again = resume_sweep(str(run_dir), function=make_trainable(fail_above_beta=6.0), stream=io.StringIO())
    assert again.num_trials == 5
    resumed = pd.read_parquet(run_dir / "results.parquet")
    assert sorted(resumed["trial_id"]) == sorted(results["trial_id"])
    assert {row.trial_id: len(reports(row.trial_dir)) for row in resumed.itertuples()
            if row.status == "finished"} == before


def test_results_of_a_remote_run_are_collected_locally_and_uploaded(ray_session, tmp_path, monkeypatch):
    import pyarrow.fs as pafs

    from search import runner

    run_sweep(sweep_config(num_samples=2), storage=str(tmp_path), name="bucket-run", function=make_trainable(),
              stream=io.StringIO())
    run_dir = tmp_path / "bucket-run"
    for name in runner.RESULT_FILES:
        (run_dir / name).unlink()
    # s3://bucket/bucket-run resolves to the local run directory through a local filesystem
    monkeypatch.setattr(runner, "remote_filesystem", lambda uri: (pafs.LocalFileSystem(), str(run_dir)))
    results = runner.collect_results("s3://bucket/bucket-run")
    assert len(results) == 2 and (results["status"] == "finished").all()
    for name in runner.RESULT_FILES:
        assert (run_dir / name).is_file()
    assert sorted(pd.read_parquet(run_dir / "results.parquet")["trial_id"]) == sorted(results["trial_id"])


def make_file_writer():
    """A function trainable that writes a file into the trial's own directory, as trial_function does."""

    def writer(config):
        import json as json_
        from pathlib import Path as Path_

        from ray import tune

        from trainables.tune import _trial_dir

        Path_(_trial_dir(), "written.json").write_text(json_.dumps({"beta": config["beta"]}))
        tune.report({"step": config["steps"], "dci": 0.5, "recon_error": 0.1})

    return writer


def test_every_trial_keeps_the_files_it_wrote_in_its_storage_directory(ray_session, tmp_path):
    # one trial at a time, so the second and third run in the first one's reused worker process
    config = sweep_config(num_samples=3, budget={"max_concurrent_trials": 1})
    run_sweep(config, storage=str(tmp_path), name="files", function=make_file_writer(), stream=io.StringIO())
    results = pd.read_parquet(tmp_path / "files" / "results.parquet")
    assert len(results) == 3 and (results["status"] == "finished").all()
    for row in results.itertuples():
        written = Path(row.trial_dir) / "written.json"
        assert written.is_file(), f"{row.trial_id}: {sorted(p.name for p in Path(row.trial_dir).iterdir())}"
        assert json.loads(written.read_text())["beta"] == pytest.approx(row.beta)


def test_a_killed_worker_is_retried_from_its_checkpoint(ray_session, tmp_path):
    marker = tmp_path / "crashed"
    config = sweep_config(num_samples=1, models={"absae": BASE["models"]["absae"]}, failure={"max_failures": 1},
                          fixed={"steps": 4, "eval_every": 1})
    run_sweep(config, storage=str(tmp_path), name="crash", function=make_trainable(crash_marker=str(marker)),
              stream=io.StringIO())
    assert marker.exists()  # the worker process really died once
    results = pd.read_parquet(tmp_path / "crash" / "results.parquet")
    assert list(results["status"]) == ["finished"] and list(results["step"]) == [4]
    steps_reported = [(r["step"], r["resumed_from"]) for r in reports(results["trial_dir"][0])]
    # steps 1-2 by the first process; the retry restored the step-2 checkpoint and ran 3-4 only
    assert steps_reported == [(1, 0), (2, 0), (3, 2), (4, 2)]


def test_asha_stops_poor_trials_and_they_are_marked_stopped_early(ray_session, tmp_path):
    # A grid in decreasing quality, one trial at a time: every later trial is worse than the first
    # at ASHA's first rung, so ASHA stops it there.
    config = parse_sweep_config({
        **BASE, "fixed": {"steps": 6, "eval_every": 1, "lr": 1e-3}, "space": {},
        "models": {"absae": {"space": {"beta": {"grid": [8.0, 4.0, 2.0, 1.0]}}}},
        "objectives": {"dci": "max"}, "searcher": {"kind": "grid"}, "num_samples": None,
        "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
        "budget": {"max_concurrent_trials": 1},
    }, source="asha.yaml")
    run_sweep(config, storage=str(tmp_path), name="asha", function=make_trainable(), stream=io.StringIO())
    results = pd.read_parquet(tmp_path / "asha" / "results.parquet").sort_values("beta", ascending=False)
    assert list(results["beta"]) == [8.0, 4.0, 2.0, 1.0]
    assert results["status"].iloc[0] == "finished" and results["step"].iloc[0] == 6
    stopped = results.iloc[1:]
    assert (stopped["status"] == "stopped_early").all()
    assert (stopped["step"] < 6).all()


DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_search_runner import make_trainable, sweep_config
    from search.runner import resume_sweep, run_sweep

    toy = make_trainable(sleep=0.3)
    if sys.argv[1] == "start":
        run_sweep(sweep_config(num_samples=5), storage={storage!r}, name="killed", function=toy)
    else:
        resume_sweep({storage!r} + "/killed", function=toy)
""")


def finished_trial_reports(run_dir: Path) -> dict[str, int]:
    counts = {}
    for result in run_dir.glob("*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("step") == 3:
            counts[result.parent.name] = len(lines)
    return counts


def test_a_killed_driver_resumes_without_rerunning_finished_trials(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(Path(__file__).parent), storage=str(tmp_path)))
    run_dir = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, str(script), "start"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(finished_trial_reports(run_dir)) < 2 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.5)
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    done_before = finished_trial_reports(run_dir)
    assert 2 <= len(done_before) < 5, "the driver should be killed mid-sweep"
    assert not (run_dir / "results.parquet").exists()

    resumed = subprocess.run([sys.executable, str(script), "resume"], capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Results: {run_dir}" in resumed.stdout
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == 5 and (results["status"] == "finished").all()
    assert set(results["model"]) == {"absae", "betavae"}
    # the trials that had finished were not run again: their reports are unchanged
    after = finished_trial_reports(run_dir)
    assert {name: after[name] for name in done_before} == done_before
    # the resumed searcher went on with the same Optuna studies in <run>/optuna.db: every trial of
    # both drivers is there once, finished with its objectives
    import optuna

    url = f"sqlite:///{run_dir / 'optuna.db'}"
    trials = [t for s in optuna.get_all_study_summaries(storage=url)
              for t in optuna.load_study(study_name=s.study_name, storage=url).trials]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 5
