"""Run names and their atomic creation (local and remote storage), Ctrl-C, failed trials that are
not retried, one data seed per sweep."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from search import runner
from search.schema import parse_sweep_config
from trainables.errors import WeakdisError

TESTS = Path(__file__).parent


def config(**changes):
    from test_search_runner import BASE

    return parse_sweep_config({**BASE, **changes}, source="test.yaml", default_name="toy")


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "..", ".hidden", "a\\b", "", "x" * 201, "sp ace"])
def test_run_names_that_are_not_one_directory_name_are_refused(name):
    with pytest.raises(WeakdisError, match="--name .* is invalid; expected one directory name"):
        runner.check_run_name(name)


@pytest.mark.parametrize("name", ["quickstart-20260101-000000-abc123", "my_run.2", "R1"])
def test_plain_run_names_are_accepted(name):
    assert runner.check_run_name(name) == name


def test_default_names_differ_even_within_one_second():
    names = {runner.default_run_name(config(), now=1_700_000_000.0) for _ in range(200)}
    assert len(names) == 200
    assert all(name.startswith("toy-") for name in names)


def test_of_concurrent_local_starts_with_one_name_exactly_one_gets_the_run(tmp_path):
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        try:
            runner.claim_run(config(), str(tmp_path / "shared"))
            outcomes.append("claimed")
        except WeakdisError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("claimed") == 1
    assert all("exists already" in outcome for outcome in outcomes if outcome != "claimed")
    assert (tmp_path / "shared" / runner.SWEEP_FILE).is_file()


def test_remote_runs_are_refused_when_they_exist_or_are_claimed_by_another_start(tmp_path, monkeypatch):
    import pyarrow.fs as pafs

    # s3://bucket/<name> maps onto a local directory through pyarrow's local filesystem
    monkeypatch.setattr(runner, "remote_filesystem",
                        lambda uri: (pafs.LocalFileSystem(), str(tmp_path / uri.rsplit("/", 1)[-1])))
    runner.claim_run(config(), "s3://bucket/first")
    assert (tmp_path / "first" / runner.SWEEP_FILE).is_file()
    with pytest.raises(WeakdisError, match="run s3://bucket/first exists already"):
        runner.claim_run(config(), "s3://bucket/first")
    # a concurrent start that listed before the other's claim appeared: it sees a foreign claim and withdraws
    original = runner.remote_filesystem

    class Racing(pafs.LocalFileSystem):
        def open_output_stream(self, path, *args, **kwargs):
            if Path(path).name.startswith(runner.CLAIM_PREFIX):
                Path(path).parent.joinpath(runner.CLAIM_PREFIX + "other").write_text("other starter")
            return super().open_output_stream(path, *args, **kwargs)

    monkeypatch.setattr(runner, "remote_filesystem", lambda uri: (Racing(), original(uri)[1]))
    with pytest.raises(WeakdisError, match="another sweep claimed the name"):
        runner.claim_run(config(), "s3://bucket/second")
    left = sorted(p.name for p in (tmp_path / "second").iterdir())
    assert left == [runner.CLAIM_PREFIX + "other"]   # our claim withdrawn, no sweep.yaml written


def test_resume_command_is_the_exact_cli_line(tmp_path):
    assert runner.resume_command(str(tmp_path / "runs" / "q-1")) == \
        f"weakdis sweep --storage {tmp_path / 'runs'} --resume --name q-1"
    assert runner.resume_command("s3://bucket/runs/q-1", address="auto") == \
        "weakdis sweep --storage s3://bucket/runs --address auto --resume --name q-1"


def test_every_trial_of_a_sweep_gets_the_sweeps_data_seed():
    from search.space import grid_points

    cfg = parse_sweep_config({
        "dataset": "dsprites:v2", "fixed": {"steps": 3, "tau": 30}, "searcher": {"kind": "grid"},
        "models": {"absae": {"space": {"beta": {"grid": [1.0, 2.0]}}}}, "seeds": [0, 1, 2], "data_seed": 11,
    }, source="t.yaml")
    points = grid_points(cfg)
    assert len(points) == 6 and {p["data_seed"] for p in points} == {11}
    assert {p["seed"] for p in points} == {0, 1, 2}
    assert parse_sweep_config(cfg.to_dict()).data_seed == 11


# -- on a real local Ray ------------------------------------------------------------------------------


@pytest.mark.ray
def test_a_diverged_trial_is_failed_once_not_retried_and_optuna_is_told(tmp_path):
    import optuna
    import ray

    from test_search_runner import make_trainable

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = config(num_samples=4, failure={"max_failures": 3}, models={"absae": {"space": {"beta": {"uniform": [0.1, 10.0]}}}},
                 searcher={"kind": "optuna", "sampler": "random", "seed": 1, "storage": storage})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        runner.run_sweep(cfg, storage=str(tmp_path), name="diverge", function=make_trainable(fail_above_beta=5.0),
                         stream=io.StringIO())
    finally:
        ray.shutdown()
    results = pd.read_parquet(tmp_path / "diverge" / "results.parquet")
    failed = results[results["beta"] > 5.0]
    assert len(failed) >= 1 and (failed["status"] == "failed").all()
    assert failed["error"].str.fullmatch(r"trial diverged at step 2: loss 'recon' is nan").all()
    for trial_dir in failed["trial_dir"]:
        lines = [json.loads(line) for line in (Path(trial_dir) / "result.json").read_text().splitlines()]
        # step 1, then the failure: one attempt, although max_failures would allow 3 retries
        assert [line.get("step") for line in lines] == [1, None]
        assert not (Path(trial_dir) / "error.txt").exists()
    assert failed["step"].tolist() == [1] * len(failed)
    study = optuna.load_study(study_name="diverge-absae", storage=storage)
    states = {round(t.params["beta"], 9): t.state.name for t in study.trials}
    for beta in failed["beta"]:
        assert states[round(beta, 9)] == "FAIL"
    assert (results["status"] == "finished").sum() + len(failed) == 4
    assert (results["data_seed"] == 0).all()   # one data seed for the sweep, recorded per trial


CTRL_C_DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_search_runner import make_trainable
    from search import runner
    from search.cli import main

    toy = make_trainable(sleep=0.4)
    build = runner.build_trainable
    runner.build_trainable = lambda config, function=None, run_uri=None: build(config, toy, run_uri)
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.ray
def test_ctrl_c_stops_cleanly_writes_results_exits_130_and_prints_the_resume_command(tmp_path):
    from test_search_runner import BASE

    script = tmp_path / "driver.py"
    script.write_text(CTRL_C_DRIVER.format(tests=str(TESTS)))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({**BASE, "num_samples": 4, "fixed": {"steps": 5, "eval_every": 1},
                                     "budget": {"max_concurrent_trials": 1}}))
    storage = tmp_path / "runs"
    driver = subprocess.Popen([sys.executable, str(script), "sweep", str(sweep), "--storage", str(storage),
                               "--name", "ctrlc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = storage / "ctrlc"
    deadline = time.time() + 180
    while time.time() < deadline and driver.poll() is None:
        reports = list(run.glob("*/result.json"))
        if reports and any(len(p.read_text().splitlines()) >= 2 for p in reports):
            break
        time.sleep(0.3)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=180)
    assert driver.returncode == 130, err[-3000:]
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1] == f"weakdis sweep --storage {storage} --resume --name ctrlc"
    assert "Tuner.restore" not in out + err
    results = pd.read_parquet(run / "results.parquet")
    assert len(results) >= 1 and not ((results["status"] == "finished").all() and len(results) == 4)

    resumed = subprocess.run([sys.executable, str(script), *lines[-1].split()[1:]], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = pd.read_parquet(run / "results.parquet")
    assert (results["status"] == "finished").all() and len(results) == 4
    assert (results["step"] == 5).all()


def test_a_local_ray_counts_its_cpus_itself(monkeypatch):
    """No num_cpus=os.cpu_count(): Ray's own detection honours cgroup and Slurm / affinity limits."""
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    assert runner.start_ray(None, threads_per_trial=2) is True
    assert len(calls) == 1 and "num_cpus" not in calls[0]
    assert calls[0]["runtime_env"] == {"env_vars": {"OMP_NUM_THREADS": "2"}}


@pytest.mark.ray
@pytest.mark.slow
def test_two_sweeps_started_at_once_with_one_name_one_runs_and_one_is_refused(tmp_path):
    """Slow (two Ray start-ups, ~22 s): the claim it relies on stays in the default run, through
    test_of_concurrent_local_starts_with_one_name_exactly_one_gets_the_run (8 starts at once)."""
    from test_search_runner import BASE

    script = tmp_path / "driver.py"
    script.write_text(CTRL_C_DRIVER.format(tests=str(TESTS)))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({**BASE, "num_samples": 2}))
    storage = tmp_path / "runs"
    command = [sys.executable, str(script), "sweep", str(sweep), "--storage", str(storage), "--name", "same"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outcomes = []
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        outcomes.append((process.returncode, out, err))
    statuses = sorted(status for status, _, _ in outcomes)
    assert statuses == [0, 1], [(s, e[-2000:]) for s, _, e in outcomes]
    refused = next(err for status, _, err in outcomes if status == 1)
    assert refused.strip() == (f"weakdis: error: run {storage / 'same'} exists already; pass --resume to "
                               "continue it or choose another --name")
    results = pd.read_parquet(storage / "same" / "results.parquet")
    assert len(results) == 2 and (results["status"] == "finished").all()
