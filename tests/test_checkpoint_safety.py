"""Checkpoints are plain data: a planted pickle payload never runs (``weakdis train --resume``,
``weakdis analyze``), RNG states survive a weights-only round trip, a damaged checkpoint falls back to
``<dir>.previous``, and a damaged results.parquet is rebuilt from Tune's files."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.results import load_results
from search.cli import main
from trainables.checkpoint import (
    capture_rng_states,
    has_checkpoint,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from trainables.config import TrialConfig
from trainables.errors import WeakdisError
from test_loop_cli import TINY
from test_loop_training import stand_ins  # noqa: F401  (the fixture)


class Payload:
    """Unpickling this calls exec(), which writes the marker file: what an attacker would plant."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def config() -> TrialConfig:
    return TrialConfig.from_dict({"model": "betavae", "dataset": "dsprites:v2", "steps": 4, "eval_every": 2,
                                  "batch_size": 8, "data_images": 300, "tau": 60, "device": "cpu"})


def planted_checkpoint(directory: Path, marker: Path) -> Path:
    save_checkpoint(directory, config(), {"step": 2, "model": {}, "rng": {}, "history": [], "loop": {}})
    torch.save({"format": 2, "step": 2, "model": Payload(marker), "rng": {}, "history": [], "loop": {}},
               directory / "state.pt")
    return directory


def test_the_payload_is_real_when_unpickled(tmp_path):
    """The planted file does run code under a plain pickle load: the tests below can fail."""
    marker = tmp_path / "marker"
    planted_checkpoint(tmp_path / "checkpoint", marker)
    torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=False)
    assert marker.read_text() == "pwned"


def test_train_resume_refuses_a_planted_pickle(tmp_path, capsys):
    marker = tmp_path / "marker"
    out = tmp_path / "run"
    planted_checkpoint(out / "checkpoint", marker)
    assert main(["train", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("weakdis: error: checkpoint file") and "state.pt" in err and "refused" in err
    assert "pickled exec" in err and "\n" not in err
    assert not marker.exists()


def test_analyze_never_runs_a_planted_pickle_in_a_run_directory(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "someone-elses-run"
    trial = run / "trial_function_abcde_00000"
    checkpoint = planted_checkpoint(trial / "checkpoint_000001", marker)
    params = config().to_dict()
    (trial / "params.json").write_text(json.dumps(params))
    report = {"step": 4, "recon_error": 0.05, "dci": 0.5, "mig": 0.2, "sap": 0.1, "trial_id": "abcde_00000",
              "training_iteration": 2, "checkpoint_dir_name": checkpoint.name}
    (trial / "result.json").write_text(json.dumps(report) + "\n")
    state = [json.dumps({"trial_id": "abcde_00000", "status": "TERMINATED", "config": params,
                         "relative_logdir": trial.name}), json.dumps({"error_filename": None, "last_result": {}})]
    (run / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": [state]}))
    # planted pickles beside the Tune files too (Tune's own tuner.pkl / searcher state are pickles):
    # nothing that analyze reads is a pickle
    import pickle

    torch.save({"x": Payload(marker)}, run / "results.pt")
    for name in ("tuner.pkl", "searcher-state-2026-01-01_00-00-00.pkl", "results.pkl"):
        (run / name).write_bytes(pickle.dumps(Payload(marker)))
    assert main(["analyze", str(run), "--out", str(tmp_path / "out"), "--formats", "png"]) == 0
    captured = capsys.readouterr()
    assert not marker.exists()
    assert "cannot load its checkpoint" in captured.err and "refused" in captured.err
    assert (tmp_path / "out" / "report.html").is_file()


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    generator = torch.Generator().manual_seed(3)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(4)
    np.random.normal()  # leaves a cached Gaussian in NumPy's state
    save_checkpoint(tmp_path / "ckpt", config(), {"step": 1, "model": {}, "rng": capture_rng_states(
        {"batch": generator}), "history": [], "loop": {}})
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(2).tolist(),
                torch.rand(2, generator=generator).tolist())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    generator.manual_seed(99)
    _, state = load_checkpoint(tmp_path / "ckpt")
    restore_rng_states(state["rng"], {"batch": generator})
    assert (random.random(), np.random.normal(), np.random.rand(), torch.rand(2).tolist(),
            torch.rand(2, generator=generator).tolist()) == expected


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path):
    target = tmp_path / "checkpoint"
    save_checkpoint(target, config(), {"step": 2, "model": {}, "rng": {}, "history": [], "loop": {}})
    save_checkpoint(target, config(), {"step": 4, "model": {}, "rng": {}, "history": [], "loop": {}})
    assert load_checkpoint(target)[1]["step"] == 4
    (target / "state.pt").write_bytes(b"\x00" * 100)          # a damaged block
    assert has_checkpoint(target)
    assert load_checkpoint(target)[1]["step"] == 2           # the kept previous checkpoint
    (tmp_path / "checkpoint.previous" / "state.pt").write_bytes(b"")
    with pytest.raises(WeakdisError, match=r"checkpoint/state.pt': cannot be read"):
        load_checkpoint(target)                               # both damaged: the first one's error


def test_a_corrupt_results_parquet_is_rebuilt_from_tunes_files(tmp_path):
    run = tmp_path / "run"
    trial = run / "trial_function_abcde_00000"
    trial.mkdir(parents=True)
    params = {"model": "absae", "dataset": "dsprites:v2", "steps": 4, "beta": 2.0, "seed": 0}
    (trial / "params.json").write_text(json.dumps(params))
    (trial / "result.json").write_text(json.dumps({"step": 4, "dci": 0.7, "recon_error": 0.03,
                                                   "trial_id": "abcde_00000", "training_iteration": 1}) + "\n")
    (run / "results.parquet").write_bytes(b"PAR1 garbage, a truncated upload")
    results = load_results(run)
    assert list(results["trial_id"]) == ["abcde_00000"]
    assert results["dci"].tolist() == [0.7] and results["status"].tolist() == ["finished"]
    with pytest.raises(Exception):
        pd.read_parquet(run / "results.parquet")             # rebuilt in memory, the file left as it was


def test_a_recorded_failure_is_a_failed_trial_with_its_reason(tmp_path):
    """A trial that reported {"weakdis_error": ...} and ended (not retried) reads as failed."""
    run = tmp_path / "run"
    trial = run / "trial_function_abcde_00001"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"model": "absae", "dataset": "dsprites:v2", "steps": 4}))
    lines = [{"step": 2, "dci": 0.4, "recon_error": 0.1, "trial_id": "abcde_00001", "training_iteration": 1},
             {"dci": float("nan"), "recon_error": float("nan"), "trial_id": "abcde_00001", "training_iteration": 2,
              "weakdis_error": "trial diverged at step 3: loss 'recon' is nan"}]
    (trial / "result.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    state = [json.dumps({"trial_id": "abcde_00001", "status": "TERMINATED", "config": {},
                         "relative_logdir": trial.name}), json.dumps({"error_filename": None, "last_result": {}})]
    (run / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": [state]}))
    results = load_results(run)
    assert results["status"].tolist() == ["failed"]
    assert results["error"].tolist() == ["trial diverged at step 3: loss 'recon' is nan"]
    assert results["step"].tolist() == [2] and results["dci"].tolist() == [0.4]   # its last evaluation


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_file(stand_ins, tmp_path, monkeypatch, capsys):
    import errno

    import trainables.checkpoint

    def full_disk(state, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(trainables.checkpoint.torch, "save", full_disk)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("weakdis: error: cannot write or read '") and "state.pt" in err
    assert "No space left on device" in err and "\n" not in err
    assert not list(out.glob(".checkpoint.tmp-*"))        # the half-written staging directory is gone


def test_a_file_replaced_atomically_is_old_or_new_never_half_and_leaves_no_temporary(tmp_path):
    from weakdis.files import replaced_atomically, write_text_atomically

    target = tmp_path / "history.csv"
    write_text_atomically(target, "step\n1\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with replaced_atomically(target) as temporary:
            temporary.write_text("step\n1\n2")     # half written, then the writer fails
            raise RuntimeError("disk full")
    assert target.read_text() == "step\n1\n"                 # the old file, whole
    write_text_atomically(target, "step\n1\n2\n")
    assert target.read_text() == "step\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]
