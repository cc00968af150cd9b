"""A table of bad inputs, as a new user would try them: config keys and values, command-line flags,
data files, checkpoints, run directories and storage URLs.

Each must end in exactly one line ``weakdis: error: ...`` on stderr that names the bad thing, exit
status 1 or 2, no traceback, and leave every file that existed untouched and no new file behind
(no half-made run directory that ``--resume`` would later pick). Everything fails before Ray starts,
so the whole table runs in seconds in-process.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml

from search.cli import main
from trainables.config import TrialConfig

GOOD_SWEEP = {
    "dataset": "dsprites:v2",
    "fixed": {"steps": 4, "eval_every": 2, "batch_size": 8, "data_images": 300, "tau": 60, "device": "cpu"},
    "models": {"absae": {"space": {"beta": {"uniform": [0.5, 2.0]}}}},
    "objectives": {"dci": "max", "recon_error": "min"},
    "num_samples": 2,
}


def sweep_file(root: Path, **changes) -> str:
    data = json.loads(json.dumps(GOOD_SWEEP))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


DELETE = object()


def sweep_text(root: Path, text: str) -> str:
    path = root / "sweep.yaml"
    path.write_text(text)
    return str(path)


def trial_checkpoint(directory: Path, state: object, **config) -> Path:
    """A checkpoint directory as `weakdis train` writes it, with the given state.pt payload."""
    directory.mkdir(parents=True, exist_ok=True)
    values = TrialConfig.from_dict({"model": "absae", "dataset": "dsprites:v2", "steps": 4, "eval_every": 2,
                                    "batch_size": 8, "data_images": 300, "tau": 60, "device": "cpu",
                                    **config}).to_dict()
    (directory / "config.json").write_text(json.dumps(values))
    if isinstance(state, bytes):
        (directory / "state.pt").write_bytes(state)
    else:
        torch.save(state, directory / "state.pt")
    return directory


def earlier_run(root: Path) -> Path:
    out = root / "earlier"
    out.mkdir()
    (out / "history.csv").write_text("step,recon_error\n2,0.5\n")
    (out / "metrics.json").write_text("{}")
    return out


def tune_run(root: Path) -> Path:
    run = root / "runs" / "taken"
    run.mkdir(parents=True)
    (run / "sweep.yaml").write_text(yaml.safe_dump(GOOD_SWEEP))
    return run


# Each case: (id, setup(root) -> argv, words the error line must contain, allowed exit statuses)
Case = tuple[str, Callable[[Path], list[str]], tuple[str, ...]]
STORAGE = ["--storage", "runs"]

CASES: list[Case] = [
    # -- sweep config values ------------------------------------------------------------------------
    ("unknown dataset", lambda r: ["sweep", sweep_file(r, dataset="mnist:v1"), *STORAGE], ("mnist:v1",)),
    ("unknown version", lambda r: ["sweep", sweep_file(r, dataset="dsprites:v99"), *STORAGE], ("dsprites:v99",)),
    ("dataset without version", lambda r: ["sweep", sweep_file(r, dataset="dsprites"), *STORAGE], ("'dsprites'",)),
    ("device tpu", lambda r: ["sweep", sweep_file(r, **{"fixed.device": "tpu"}), *STORAGE], ("device='tpu'",)),
    ("device gpu", lambda r: ["sweep", sweep_file(r, **{"fixed.device": "gpu"}), *STORAGE], ("device='gpu'",)),
    ("tau beyond the training split", lambda r: ["sweep", sweep_file(r, **{"fixed.tau": 999999999}), *STORAGE],
     ("tau=999999999", "training split")),
    ("tau below the prior's components", lambda r: ["sweep", sweep_file(r, **{"fixed.tau": 20}), *STORAGE],
     ("tau=20", "27 components")),
    ("tau corner beyond the split", lambda r: ["sweep", sweep_file(r, space={"tau": {"int": [30, 5000]}}), *STORAGE],
     ("tau=5000",)),
    ("yaml .inf steps", lambda r: ["sweep", sweep_text(r, yaml.safe_dump(GOOD_SWEEP).replace("steps: 4", "steps: .inf")),
                                   *STORAGE], ("steps=inf",)),
    ("yaml .nan lr", lambda r: ["sweep", sweep_file(r, **{"fixed.lr": float("nan")}), *STORAGE], ("lr=nan",)),
    ("yaml 1e-1 read as a string", lambda r: ["sweep", sweep_text(r, yaml.safe_dump(GOOD_SWEEP).replace(
        "uniform:\n        - 0.5\n        - 2.0", "loguniform: [1e-1, 2.0]")), *STORAGE], ("'1e-1'", "YAML 1.1")),
    ("yaml 1e1 integer as a string", lambda r: ["sweep", sweep_text(r, yaml.safe_dump(GOOD_SWEEP) +
                                                "budget: {max_concurrent_trials: 1e1}\n"), *STORAGE],
     ("budget.max_concurrent_trials='1e1'", "YAML 1.1")),
    ("empty search space", lambda r: ["sweep", sweep_file(r, models={"absae": {}}), *STORAGE],
     ("search space of models.absae is empty",)),
    ("empty choice", lambda r: ["sweep", sweep_file(r, space={"lr": {"choice": []}}), *STORAGE], ("space.lr.choice",)),
    ("unknown top-level key", lambda r: ["sweep", sweep_file(r, num_sample=3), *STORAGE], ("'num_sample'",)),
    ("unknown model", lambda r: ["sweep", sweep_file(r, models={"vae": None}), *STORAGE], ("'vae'",)),
    ("unknown objective", lambda r: ["sweep", sweep_file(r, objectives={"dcj": "max"}), *STORAGE], ("'dcj'",)),
    ("asha with two objectives", lambda r: ["sweep", sweep_file(r, scheduler={"kind": "asha"}), *STORAGE],
     ("asha",)),
    ("negative seed", lambda r: ["sweep", sweep_file(r, seeds=[-1]), *STORAGE], ("seeds=[-1]",)),
    ("num_samples 0", lambda r: ["sweep", sweep_file(r, num_samples=0), *STORAGE], ("num_samples=0",)),
    ("gpus as text", lambda r: ["sweep", sweep_file(r, resources={"gpus": "half"}), *STORAGE], ("resources.gpus='half'",)),
    ("negative time budget", lambda r: ["sweep", sweep_file(r, budget={"time_budget_s": -5}), *STORAGE],
     ("budget.time_budget_s=-5",)),
    ("negative data_seed", lambda r: ["sweep", sweep_file(r, data_seed=-1), *STORAGE], ("data_seed=-1",)),
    ("data_seed under fixed", lambda r: ["sweep", sweep_file(r, **{"fixed.data_seed": 3}), *STORAGE],
     ("fixed.data_seed",)),
    ("alpha above 1", lambda r: ["sweep", sweep_file(r, **{"fixed.alpha": 2}), *STORAGE], ("alpha=2",)),
    ("missing data_path", lambda r: ["sweep", sweep_file(r, **{"fixed.data_path": str(r / "nope.npz")}), *STORAGE],
     ("nope.npz",)),
    ("data_path not a dataset", lambda r: ["sweep", sweep_file(r, **{"fixed.data_path": _garbage(r, "junk.npz")}),
                                           *STORAGE], ("junk.npz",)),
    ("sweep config not YAML", lambda r: ["sweep", sweep_text(r, "dataset: [unclosed\n"), *STORAGE], ("not valid YAML",)),
    ("sweep config missing", lambda r: ["sweep", str(r / "missing.yaml"), *STORAGE], ("missing.yaml",)),
    # -- storage URLs ------------------------------------------------------------------------------
    ("optuna storage in a missing directory", lambda r: ["sweep", sweep_file(
        r, **{"searcher.storage": f"sqlite:///{r}/no/such/dir/optuna.db"}), *STORAGE], ("searcher.storage",)),
    ("optuna storage unknown dialect", lambda r: ["sweep", sweep_file(r, **{"searcher.storage": "nosuchdb://x/y"}),
                                                  *STORAGE], ("searcher.storage='nosuchdb://x/y'",)),
    ("optuna storage without scheme", lambda r: ["sweep", sweep_file(r, **{"searcher.storage": "optuna.db"}),
                                                 *STORAGE], ("searcher.storage='optuna.db'",)),
    ("run storage with an unknown scheme", lambda r: ["sweep", sweep_file(r), "--storage", "ftp://host/runs"],
     ("ftp://host/runs",)),
    # -- sweep command-line flags and run directories ----------------------------------------------
    ("run name with ..", lambda r: ["sweep", sweep_file(r), *STORAGE, "--name", "../escape"], ("'../escape'",)),
    ("run name with a slash", lambda r: ["sweep", sweep_file(r), *STORAGE, "--name", "a/b"], ("'a/b'",)),
    ("run name taken", lambda r: (tune_run(r), ["sweep", sweep_file(r), *STORAGE, "--name", "taken"])[1],
     ("taken", "exists already")),
    ("--num-samples 0", lambda r: ["sweep", sweep_file(r), *STORAGE, "--num-samples", "0"], ("--num-samples=0",)),
    ("--resume of a missing run", lambda r: ["sweep", "--resume", *STORAGE, "--name", "ghost"], ("ghost",)),
    ("--resume of a run without Tune state", lambda r: (tune_run(r), ["sweep", "--resume", *STORAGE, "--name",
                                                                      "taken"])[1], ("taken", "experiment state")),
    ("--resume with --num-samples", lambda r: ["sweep", "--resume", "--num-samples", "3", *STORAGE], ("--num-samples",)),
    # -- weakdis train: values and flags --------------------------------------------------------------
    ("--set steps=inf", lambda r: ["train", "--set", "steps=inf", "--out", "t"], ("steps='inf'",)),
    ("--set lr=nan", lambda r: ["train", "--set", "lr=nan", "--out", "t"], ("lr=nan",)),
    ("--set rel_lr=inf", lambda r: ["train", "--set", "rel_lr=inf", "--out", "t"], ("rel_lr=inf",)),
    ("--set device=tpu", lambda r: ["train", "--set", "device=tpu", "--out", "t"], ("device='tpu'",)),
    ("--set dataset=mnist:v1", lambda r: ["train", "--set", "dataset=mnist:v1", "--out", "t"], ("mnist:v1",)),
    ("--set tau beyond the split", lambda r: ["train", "--set", "data_images=100", "--set", "tau=500", "--out", "t"],
     ("tau=500", "70")),
    ("--set without =", lambda r: ["train", "--set", "steps", "--out", "t"], ("'steps'",)),
    ("train config with .inf", lambda r: ["train", _text(r, "trial.yaml", "lr: .inf\n"), "--out", "t"], ("lr=inf",)),
    ("train config not a mapping", lambda r: ["train", _text(r, "trial.yaml", "- 1\n"), "--out", "t"], ("trial.yaml",)),
    ("--out is a file", lambda r: ["train", "--out", _text(r, "taken.txt", "x")], ("taken.txt", "is a file")),
    ("--out holds an earlier run", lambda r: ["train", "--out", str(earlier_run(r))],
     ("earlier", "--resume", "--overwrite")),
    ("--resume and --overwrite", lambda r: ["train", "--resume", "--overwrite", "--out", str(earlier_run(r))],
     ("--resume and --overwrite",)),
    ("--overwrite without --out", lambda r: ["train", "--overwrite"], ("--overwrite needs --out",)),
    # -- checkpoints -------------------------------------------------------------------------------------
    ("--resume without a checkpoint", lambda r: ["train", "--resume", "--out", str(earlier_run(r))],
     ("holds no checkpoint",)),
    ("checkpoint state.pt not a torch file", lambda r: ["train", "--resume", "--out", str(
        trial_checkpoint(r / "run" / "checkpoint", b"not a checkpoint").parent)], ("state.pt", "cannot be read")),
    ("checkpoint of an old format", lambda r: ["train", "--resume", "--out", str(
        trial_checkpoint(r / "run" / "checkpoint", {"format": 1, "step": 2}).parent)], ("state.pt", "format 2")),
    ("checkpoint with pickled numpy state", lambda r: ["train", "--resume", "--out", str(
        trial_checkpoint(r / "run" / "checkpoint", {"format": 2, "rng": {"numpy": __import__("numpy").random.get_state()}}
                         ).parent)], ("state.pt", "refused")),
    ("checkpoint config not JSON", lambda r: ["train", "--resume", "--out", str(_broken_config(r).parent)],
     ("config.json", "not valid JSON")),
    ("checkpoint weights that do not fit", lambda r: ["train", "--resume", "--out", str(
        trial_checkpoint(r / "run" / "checkpoint", {"format": 2, "step": 2, "model": {"encoder.weight": torch.zeros(3)},
                                                    "rng": {}, "history": [], "loop": {}}, model="betavae").parent)],
     ("weights do not fit",)),
    # -- weakdis analyze and data files -----------------------------------------------------------------
    ("analyze a missing run", lambda r: ["analyze", str(r / "no-run")], ("no-run", "not found")),
    ("analyze a directory that is not a run", lambda r: ["analyze", str(_dir(r, "plain"))], ("plain", "not a sweep run")),
    ("analyze a corrupt results.parquet", lambda r: ["analyze", str(_corrupt_results(r))], ("results.parquet",)),
    ("analyze --formats bmp", lambda r: ["analyze", str(_dir(r, "plain")), "--formats", "bmp"], ("--formats 'bmp'",)),
    ("data info of a junk file", lambda r: ["data", "info", _garbage(r, "junk.h5")], ("junk.h5",)),
]


def _text(root: Path, name: str, text: str) -> str:
    path = root / name
    path.write_text(text)
    return str(path)


def _garbage(root: Path, name: str) -> str:
    path = root / name
    path.write_bytes(b"\x00not a dataset file\xff" * 4)
    return str(path)


def _dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(exist_ok=True)
    (path / "notes.txt").write_text("hello")
    return path


def _broken_config(root: Path) -> Path:
    checkpoint = trial_checkpoint(root / "run" / "checkpoint", {"format": 2})
    (checkpoint / "config.json").write_text("{not json")
    return checkpoint


def _corrupt_results(root: Path) -> Path:
    run = root / "copied-run"
    run.mkdir()
    (run / "results.parquet").write_bytes(b"PAR1 this is not parquet")
    return run


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*"))}


def test_the_table_has_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, setup, words", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_error_line_and_changes_nothing(name, setup, words, tmp_path, monkeypatch, capsys):
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    argv = setup(root)
    before = snapshot(root)
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        status = exit_.code
    captured = capsys.readouterr()
    # Progress of a dataset generated on the way (logged to stderr) is not part of the error.
    lines = [line for line in captured.err.splitlines()
             if line.strip() and not line.startswith(("data: ", "generating "))]
    assert status in (1, 2), (status, captured.err, captured.out)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("weakdis: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in captured.err + captured.out
    assert snapshot(root) == before, "a bad input wrote or deleted files"
    import sys

    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized(), "Ray was started for an input that fails validation"
