"""The README's quickstart command, run as written: the default sweep end to end with the real
trainable on small generated dSprites. The default run adds `--num-samples 2` (one trial a family, run
at once on two cores); the full six-trial quickstart is the slow variant (`python -m pytest -m slow
tests/test_search_quickstart.py`). Its wall time is measured by benchmarks/quickstart_time.py, not here."""
from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_sweep_command() -> str:
    spec = importlib.util.spec_from_file_location("quickstart_time", ROOT / "benchmarks" / "quickstart_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.readme_sweep_command()


@pytest.mark.ray
@pytest.mark.parametrize("num_samples,trials", [pytest.param(2, 2, id="two-trials"),
                                                 pytest.param(None, 6, id="as-written", marks=pytest.mark.slow)])
def test_readme_quickstart_sweep(tmp_path, num_samples, trials):
    command = readme_sweep_command()
    if num_samples is not None:
        command += f" --num-samples {num_samples}"
    env = {**os.environ, "WEAKDIS_DATA": str(tmp_path / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "quickstart.log"
    # Output goes to a file, not a pipe: Ray's helper processes inherit the descriptors, and a pipe
    # would stay open as long as any of them lives. The process group is killed whatever happens.
    with open(log, "w") as out:
        sweep = subprocess.Popen(["bash", "-c", command], cwd=tmp_path, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = sweep.wait(timeout=600)
        finally:
            try:
                os.killpg(sweep.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    output = log.read_text()
    assert returncode == 0, output[-5000:]
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("quickstart-")]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    assert f"Results: {run_dir}" in output
    assert "Best trade-off trials" in output
    assert "== Status ==" in output and "recon_error" in output  # the Tune progress table
    results = pd.read_parquet(run_dir / "results.parquet")
    assert len(results) == trials
    assert {"absae", "betavae"} <= set(results["model"])
    finished = results[results["status"] == "finished"]
    assert len(finished) == trials, results[["trial_id", "status", "error"]].to_string()
    for column in ("dci", "recon_error", "mig", "sap"):
        assert all(math.isfinite(v) for v in finished[column]), column
    assert ((finished["recon_error"] > 0) & (finished["recon_error"] < 0.1)).all()  # an untrained decoder (all 0.5) scores 0.25
    assert ((finished["dci"] >= 0) & (finished["dci"] <= 1)).all()
    # the papers' evaluation grid: AbsAE reports clustering at every alpha (alpha = 0 accepts every
    # code) and relations at depths 1, 5, 10; beta-VAE has no prior, so those are empty
    absae, betavae = finished[finished["model"] == "absae"], finished[finished["model"] == "betavae"]
    assert (absae["accepted_ratio_a0"] == 1.0).all() and (absae["relation_accepted_ratio_d10_a0"] == 1.0).all()
    assert absae["clustering_accuracy_a0"].between(0, 1).all() and absae["relation_accuracy_d5_a0"].between(0, 1).all()
    assert betavae["clustering_accuracy_a0"].isna().all() and betavae["relation_accuracy"].isna().all()
    assert (finished["step"] == finished["steps"]).all()
    # the Optuna studies, as optuna-dashboard opens them: sqlite:///runs/<name>/optuna.db
    import optuna

    studies = optuna.get_all_study_summaries(storage=f"sqlite:///{run_dir / 'optuna.db'}")
    assert sorted(s.study_name for s in studies) == [f"{run_dir.name}-absae", f"{run_dir.name}-betavae"]
    assert sum(s.n_trials for s in studies) == len(results)
    history = pd.read_parquet(run_dir / "history.parquet")
    assert len(history) >= 2 * len(finished)  # two evaluations per trial
    # every trial's own files are in its directory, those of trials run in a reused worker included
    for row in finished.itertuples():
        trial_dir = Path(row.trial_dir)
        assert (trial_dir / "environment.json").is_file() and (trial_dir / "metrics.json").is_file(), row.trial_id
        assert pd.read_csv(trial_dir / "history.csv")["step"].max() == row.steps
