"""Chaos: a sweep of 30 small trials, 2 at a time, whose trial workers are SIGKILLed at random (at
least 5 times) and whose driver is SIGKILLed twice, each time resumed with the printed
``weakdis sweep ... --resume --name NAME``. Every trial must finish exactly once, no result may be
lost or duplicated, and the results must equal an uninterrupted run of the same sweep.

Slow (a few minutes on 2 cores); run it with

    python -m pytest -m slow tests/test_chaos.py -q -s

The trials are a seeded stand-in trainable that speaks the protocol of
``trainables.tune.trial_function`` (one report and checkpoint per step, resume from Tune's
checkpoint, its RNG state carried in the checkpoint) so the sweep machinery is what is tested;
``tests/test_loop_training.py`` checks that the real loop resumes to identical numbers. Figures
go to benchmarks/RESULTS.md ("Chaos").
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(2700)]

STEPS = 8
BETAS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
SEEDS = [0, 1, 2]
SWEEP = {
    "name": "chaos",
    "dataset": "dsprites:v2",
    "fixed": {"steps": STEPS, "eval_every": 1, "tau": 30},
    "models": {"absae": {"space": {"beta": {"grid": BETAS}}}},
    "searcher": {"kind": "grid"},
    "seeds": SEEDS,
    "objectives": {"dci": "max", "recon_error": "min"},
    "budget": {"max_concurrent_trials": 2},
    "resources": {"cpus": 1},
    "failure": {"max_failures": 50},
    "checkpoint": {"num_to_keep": 2},
}

DRIVER = textwrap.dedent("""
    import sys
    from search import runner
    from search.cli import main

    STEP_SECONDS = {step_seconds!r}

    def chaos_trial(config):
        import json, os, tempfile, time
        import numpy as np
        from ray import tune

        step, total, resumed_from = 0, 0.0, 0
        rng = np.random.default_rng([int(config["seed"]), int(config["beta"] * 1000)])
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                with open(os.path.join(directory, "state.json")) as file:
                    state = json.load(file)
            step, total = state["step"], state["total"]
            rng.bit_generator.state = state["rng"]
            resumed_from = step
            # as trainables.tune does: the checkpoint's own evaluation again, in case Tune kept the
            # checkpoint but lost the report's log line when the worker died
            tune.report(state["metrics"])
        while step < config["steps"]:
            time.sleep(STEP_SECONDS)
            total += float(rng.normal())
            mig = float(rng.random())      # every draw of the step before the state is saved
            step += 1
            metrics = {{"step": step, "dci": total, "recon_error": 1.0 / (1.0 + abs(total)), "mig": mig}}
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, "state.json"), "w") as file:
                    json.dump({{"step": step, "total": total, "rng": rng.bit_generator.state, "metrics": metrics}}, file)
                tune.report({{**metrics, "resumed_from": resumed_from}},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    build = runner.build_trainable
    runner.build_trainable = lambda config, function=None, run_uri=None: build(config, chaos_trial, run_uri)
    sys.exit(main(sys.argv[1:]))
""")


def marked_processes(marker: str, needle: bytes = b"") -> list[int]:
    """Processes started under this test (their environment holds the marker) whose command line
    contains ``needle``; other people's Ray processes on the machine are never touched."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            if needle and needle not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def kill_all(marker: str) -> None:
    for _ in range(3):
        for pid in marked_processes(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def test_killed_workers_and_drivers_lose_and_duplicate_nothing(tmp_path):
    marker = f"WEAKDIS_CHAOS_{uuid.uuid4().hex}"
    env = {**os.environ, marker: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    sweep = tmp_path / "chaos.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP))
    storage = tmp_path / "runs"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(step_seconds=0.4))

    def start(name: str, *arguments: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}-{time.time():.0f}.log", "w")
        return subprocess.Popen([sys.executable, str(script), "sweep", *arguments], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    figures: dict[str, float] = {}
    try:
        began = time.time()
        calm = start("calm", str(sweep), "--storage", str(storage), "--name", "calm")
        assert calm.wait(timeout=900) == 0
        figures["uninterrupted_s"] = time.time() - began
        kill_all(marker)

        rng = random.Random(2026)
        began = time.time()
        driver = start("chaos", str(sweep), "--storage", str(storage), "--name", "chaos")
        resume = ["--storage", str(storage), "--resume", "--name", "chaos"]
        worker_kills = driver_kills = extra_resumes = 0
        deadline = time.time() + 1800
        while time.time() < deadline:
            time.sleep(rng.uniform(2.0, 4.0))
            status = driver.poll()
            if status is not None:
                assert status == 0, f"the driver exited with {status}; see {tmp_path}/chaos-*.log"
                crashed = pd.read_parquet(storage / "chaos" / "results.parquet")["status"].ne("finished").sum()
                if crashed and extra_resumes < 3:
                    # Tune 2.60 can leave a trial ERROR without a retry when its worker dies while
                    # two of its tasks are in flight; --resume continues it from its checkpoint.
                    extra_resumes += 1
                    driver = start("chaos", *resume)
                    continue
                break
            if driver_kills < 2 and worker_kills >= 2 + 2 * driver_kills:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
                kill_all(marker)           # Ray's own processes of the killed driver
                driver_kills += 1
                driver = start("chaos", *resume)
                continue
            if worker_kills < 5 or rng.random() < 0.3:
                workers = marked_processes(marker, b"ray::ImplicitFunc")
                if workers:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                    worker_kills += 1
        else:
            pytest.fail("the chaos sweep did not finish in 30 minutes")
        figures["chaos_s"] = time.time() - began
    finally:
        kill_all(marker)
    assert worker_kills >= 5 and driver_kills >= 2, (worker_kills, driver_kills)

    calm_results = pd.read_parquet(storage / "calm" / "results.parquet")
    chaos_results = pd.read_parquet(storage / "chaos" / "results.parquet")
    expected = {f"beta={beta} seed={seed}" for beta in BETAS for seed in SEEDS}
    for results in (calm_results, chaos_results):
        keys = [f"beta={b} seed={s}" for b, s in zip(results["beta"], results["seed"])]
        assert len(results) == 30 and sorted(keys) == sorted(expected)      # none lost, none twice
        assert (results["status"] == "finished").all() and (results["step"] == STEPS).all()
    # every trial finished exactly once: Tune's own record holds 30 trials, each terminated once
    state = json.loads(max((storage / "chaos").glob("experiment_state-*.json")).read_text())
    statuses = [json.loads(trial)["status"] for trial, _ in state["trial_data"]]
    assert statuses == ["TERMINATED"] * 30
    columns = ["beta", "seed", "step", "dci", "recon_error", "mig"]
    calm_table = calm_results[columns].sort_values(["beta", "seed"]).reset_index(drop=True)
    chaos_table = chaos_results[columns].sort_values(["beta", "seed"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(calm_table, chaos_table, check_exact=True)
    history = pd.read_parquet(storage / "chaos" / "history.parquet")
    assert len(history) == 30 * STEPS                           # one row per evaluation, none twice
    reports = sum(len(p.read_text().splitlines()) for p in (storage / "chaos").glob("*/result.json"))
    retries = sum(p.read_text().count("Failure # ") for p in (storage / "chaos").glob("*/error.txt"))
    print(f"\nCHAOS trials=30 concurrent=2 worker_kills={worker_kills} driver_kills={driver_kills} "
          f"uninterrupted={figures['uninterrupted_s']:.0f}s chaos={figures['chaos_s']:.0f}s "
          f"reports={reports} (re-reported after restores: {reports - 30 * STEPS}) worker_failures_recorded={retries} "
          f"resumes_after_the_end={extra_resumes}")
