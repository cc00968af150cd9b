"""`weakdis sweep` argument handling and config errors (no Ray start: these fail before it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from search.cli import main
from weakdis.errors import WeakdisError

GOOD = {
    "dataset": "dsprites:v2",
    "models": {"absae": {"space": {"beta": {"uniform": [0.1, 1.0]}}}},
    "objectives": {"dci": "max"},
    "num_samples": 2,
}


def write(tmp_path: Path, data: dict, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_misspelt_key_is_one_line_naming_the_key(tmp_path):
    path = write(tmp_path, {**GOOD, "sercher": {"kind": "optuna"}})
    weakdis = Path(sys.executable).parent / "weakdis"
    run = subprocess.run([str(weakdis), "sweep", str(path)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "WEAKDIS_DEBUG": ""}, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"weakdis: error: {path}: unknown key 'sercher' in the top level (did you mean 'searcher'?); allowed keys: "
        "name, dataset, fixed, models, space, objectives, searcher, scheduler, num_samples, seeds, budget, "
        "resources, storage, failure, checkpoint, data_seed, callbacks, metrics"
    )
    assert not (tmp_path / "runs").exists()


def test_unknown_config_name(capsys):
    assert main(["sweep", "no-such-config"]) == 1
    assert "sweep config 'no-such-config' does not exist; expected a YAML file or one of the packaged configs: " \
           "dsprites-fig5-cpu-r1.yaml, dsprites-fig5-cpu.yaml, dsprites-fig5.yaml, dsprites-table1.yaml, dsprites-udr-cpu.yaml, explicit-table1.yaml, " \
           "hwf-table4.yaml, hwf-table5.yaml, quickstart.yaml, shapes3d-fig5-cpu.yaml, shapes3d-fig5.yaml" in capsys.readouterr().err


def test_num_samples_does_not_apply_to_grids(tmp_path, capsys):
    grid = {**GOOD, "models": {"absae": {"space": {"beta": {"grid": [0.1, 1.0]}}}}, "searcher": {"kind": "grid"}}
    grid.pop("num_samples")
    assert main(["sweep", str(write(tmp_path, grid)), "--num-samples", "3", "--storage", str(tmp_path)]) == 1
    assert "--num-samples applies to Optuna searches" in capsys.readouterr().err


def test_resume_without_a_run_says_what_it_looked_for(tmp_path, capsys):
    path = write(tmp_path, GOOD, "mysweep.yaml")
    assert main(["sweep", str(path), "--resume", "--storage", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "no run of config 'mysweep' in storage" in err and "pass --name" in err
    assert main(["sweep", str(path), "--resume", "--name", "nope", "--storage", str(tmp_path / "runs")]) == 1
    assert f"{tmp_path / 'runs' / 'nope'} has no sweep.yaml" in capsys.readouterr().err


def test_resume_takes_the_newest_run_of_the_config(tmp_path):
    from search.runner import latest_run

    for name, mtime in (("mysweep-20260101-000000", 100), ("mysweep-20260102-000000", 200), ("other-1", 300)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.yaml").write_text("x")
        os.utime(tmp_path / name / "sweep.yaml", (mtime, mtime))
        os.utime(tmp_path / name, (mtime, mtime))
    assert latest_run(str(tmp_path), "mysweep") == "mysweep-20260102-000000"


def test_existing_run_name_is_refused(tmp_path, capsys):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "sweep.yaml").write_text("x")
    assert main(["sweep", str(write(tmp_path, GOOD)), "--name", "taken", "--storage", str(tmp_path / "runs")]) == 1
    assert "exists already; pass --resume" in capsys.readouterr().err


def test_bad_storage_scheme(tmp_path, capsys):
    assert main(["sweep", str(write(tmp_path, GOOD)), "--storage", "ftp://host/x"]) == 1
    assert "storage='ftp://host/x' is invalid; expected a local path, s3://bucket/path or gs://bucket/path" in \
        capsys.readouterr().err


def test_importing_the_dispatcher_does_not_import_ray():
    code = "import sys, search, search.cli, search.schema; print('ray' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
    from search import load_sweep_config, run_sweep

    assert run_sweep.__module__ == "search.runner" and load_sweep_config.__module__ == "search.schema"


def test_a_train_config_named_as_a_sweep_says_how_to_run_it(capsys):
    assert main(["sweep", "train-absae-dsprites"]) == 1
    assert capsys.readouterr().err.strip() == (
        "weakdis: error: 'train-absae-dsprites' is a train config (one trial), not a sweep config; "
        "run it with: weakdis train absae-dsprites")


def test_set_overrides_keys_of_a_packaged_config():
    from search.space import total_trials
    from search.sweep_cli import read_config

    packaged = read_config("dsprites-fig5-cpu-r1")
    config = read_config("dsprites-fig5-cpu-r1", ["seeds=[1,2]", "dataset=dsprites:v3", "fixed.data_images=50000",
                                                  "models.absae.fixed.steps=500", "models.mae.space.beta={grid: [0.2]}"])
    assert config.seeds == (1, 2) and config.datasets == ("dsprites:v3",)
    assert config.fixed["data_images"] == 50000
    families = {f.model: f for f in config.models}
    assert families["absae"].fixed["steps"] == 500 and families["absae"].fixed["disc_r1"] == 1.0  # the rest kept
    assert families["mae"].space["beta"].values == (0.2,)
    assert total_trials(config) == 2 * (total_trials(packaged) - 1)   # two seeds, one M-AE grid point fewer
    assert config.name == "dsprites-fig5-cpu-r1" and "with --set seeds=[1,2]" in config.source
    assert read_config("dsprites-fig5-cpu-r1").seeds == (0,)   # the packaged file is not changed


def test_set_creates_missing_mappings_and_reads_yaml_values(tmp_path):
    from search.sweep_cli import read_config

    config = read_config(str(write(tmp_path, GOOD)), ["fixed.steps=300", "fixed.lr=1e-3", "seeds=4",
                                                      "models.betavae.space.beta={uniform: [1, 8]}"])
    assert config.fixed["steps"] == 300 and config.fixed["lr"] == 1e-3 and config.seeds == (4,)
    assert [f.model for f in config.models] == ["absae", "betavae"]
    assert config.models[1].space["beta"].low == 1 and config.models[1].space["beta"].high == 8


def test_set_errors_name_the_key(tmp_path, capsys):
    from search.sweep_cli import read_config

    path = str(write(tmp_path, GOOD))
    with pytest.raises(WeakdisError, match=r"unknown key 'stepz' in models\.absae\.fixed.*did you mean 'steps'"):
        read_config(path, ["models.absae.fixed.stepz=3"])
    with pytest.raises(WeakdisError, match=r"unknown key 'fixd' in the top level \(did you mean 'fixed'\?\)"):
        read_config(path, ["fixd.steps=3"])
    with pytest.raises(WeakdisError, match=r"--set 'dataset.version=v3': .* has dataset='dsprites:v2', not a mapping"):
        read_config(path, ["dataset.version=v3"])
    with pytest.raises(WeakdisError, match=r"--set 'seeds': expected KEY=VALUE"):
        read_config(path, ["seeds"])
    with pytest.raises(WeakdisError, match=r"--set 'seeds=\[1': the value is not valid YAML"):
        read_config(path, ["seeds=[1"])
    with pytest.raises(WeakdisError, match=r"seeds=\[1, 1\] repeats a seed"):
        read_config(path, ["seeds=[1, 1]"])
    assert main(["sweep", path, "--resume", "--set", "seeds=[1]", "--storage", str(tmp_path / "runs")]) == 1
    assert "--set cannot change a sweep being resumed" in capsys.readouterr().err
