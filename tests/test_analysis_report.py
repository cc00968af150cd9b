"""`weakdis analyze` and analysis.report.analyze on hand-written Tune runs (finished and partial)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import analyze
from search.cli import main


def _trial(run: Path, index: int, model: str, beta: float, reports: list[dict], status: str, steps: int = 20):
    trial_id = f"abcde_{index:05d}"
    logdir = f"trial_function_{trial_id}_{index}_beta={beta}"
    config = {"model": model, "dataset": "dsprites:v2", "steps": steps, "beta": beta, "latent_dim": 8, "seed": 0,
              "tau": 200, "alpha": 0.5, "relation_depth": 1}
    if reports is not None:
        directory = run / logdir
        directory.mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(config))
        with (directory / "result.json").open("w") as handle:
            for iteration, report in enumerate(reports, start=1):
                handle.write(json.dumps({**report, "trial_id": trial_id, "training_iteration": iteration,
                                         "config": config}) + "\n")
    return [json.dumps({"trial_id": trial_id, "status": status, "config": config, "relative_logdir": logdir}),
            json.dumps({"error_filename": None, "last_result": {}})]


def _evaluation(step: int, recon: float, dci: float, **extra) -> dict:
    return {"step": step, "recon_error": recon, "dci": dci, "mig": dci / 2, "sap": dci / 3,
            "train_seconds": step / 10, **extra}


def _run(tmp_path: Path, partial: bool = False) -> Path:
    run = tmp_path / "quick"
    run.mkdir(parents=True)
    weak = {"clustering_accuracy": 0.8, "accepted_ratio": 0.9, "relation_accuracy": 0.7}
    trials = [
        # absae front: 00000 (0.02, 0.6) and 00001 (0.03, 0.9); 00002 (0.04, 0.5) is dominated
        _trial(run, 0, "absae", 1.0, [_evaluation(10, 0.05, 0.3, **weak), _evaluation(20, 0.02, 0.6, **weak)],
               "TERMINATED"),
        _trial(run, 1, "absae", 4.0, [_evaluation(10, 0.04, 0.5, **weak), _evaluation(20, 0.03, 0.9, **weak)],
               "TERMINATED"),
        _trial(run, 2, "absae", 8.0, [_evaluation(10, 0.06, 0.2, **weak), _evaluation(20, 0.04, 0.5, **weak)],
               "TERMINATED"),
        _trial(run, 3, "betavae", 2.0, [_evaluation(10, 0.05, 0.2), _evaluation(20, 0.05, 0.4)], "TERMINATED"),
    ]
    if partial:
        trials.append(_trial(run, 4, "betavae", 6.0, [_evaluation(10, 0.09, 0.1)], "RUNNING"))
        trials.append(_trial(run, 5, "absae", 2.0, None, "PENDING"))
    (run / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": trials}))
    (run / "sweep.yaml").write_text("name: quick\nobjectives:\n  dci: max\n  recon_error: min\n")
    return run


def test_analyze_writes_frontier_figures_tables_and_report(tmp_path):
    run = _run(tmp_path)
    out = tmp_path / "out"
    output = analyze(run, out, images=False)
    frontier = pd.read_csv(out / "frontier.csv")
    assert list(frontier["trial_id"]) == ["abcde_00001", "abcde_00000", "abcde_00003"]  # by model, then dci
    assert list(frontier["dci"]) == [0.9, 0.6, 0.4]
    assert set(output.figures) == {"tradeoff", "dci_vs_beta", "clustering_vs_alpha", "relations_vs_depth", "progress"}
    for paths in output.figures.values():
        assert sorted(path.suffix for path in paths) == [".pdf", ".png"] and all(path.stat().st_size for path in paths)
    from analysis.tables import TABLES
    assert sorted(path.name for path in (out / "tables").iterdir()) == sorted(
        f"{name}.{suffix}" for name in TABLES for suffix in ("csv", "md", "tex"))
    report = (out / "report.html").read_text()
    assert report.count("src='data:image/png;base64,") == 5
    assert "<pre>name: quick\nobjectives:" in report  # the sweep's configuration
    assert "dci (max), recon_error (min)" in report  # frontier objectives come from sweep.yaml
    assert output.missing == ["image grids: skipped (--no-images)",
                              "UDR ranking: no two finished trials with checkpoints share hyperparameters and differ "
                              "only in seed (list several seeds: in the sweep config)"]
    assert "<li>image grids: skipped (--no-images)</li>" in report
    assert output.status_counts == {"finished": 4, "stopped_early": 0, "failed": 0, "running": 0, "pending": 0}


def test_analyze_on_a_partial_sweep_says_what_is_missing(tmp_path):
    run = _run(tmp_path, partial=True)
    output = analyze(run, tmp_path / "out", images=True, formats=("png",))
    assert output.status_counts["running"] == 1 and output.status_counts["pending"] == 1
    assert output.missing[0] == ("the sweep is not complete: 1 trial(s) running or paused, 1 pending; figures and "
                                 "tables use the 4 finished or stopped trial(s)")
    assert "image grids: no completed trial has a checkpoint" in output.missing
    report = (tmp_path / "out" / "report.html").read_text()
    assert "the sweep is not complete" in report
    frontier = pd.read_csv(tmp_path / "out" / "frontier.csv")
    assert "abcde_00004" not in set(frontier["trial_id"])  # running trials stay off the frontier


def test_cli_analyze_and_its_errors(tmp_path, capsys):
    run = _run(tmp_path)
    assert main(["analyze", str(run), "--no-images", "--formats", "png"]) == 0
    captured = capsys.readouterr()
    assert f"report: {run / 'analysis' / 'report.html'}" in captured.out
    assert "trials: 4 finished" in captured.out
    assert (run / "analysis" / "figures" / "tradeoff.png").exists()
    assert not (run / "analysis" / "figures" / "tradeoff.pdf").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", str(empty)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("weakdis: error: ") and error.count("\n") == 1
    assert f"{empty}: not a sweep run directory" in error
    (tmp_path / "file").write_text("x")
    assert main(["analyze", str(run), "--out", str(tmp_path / "file")]) == 1
    assert "is a file; expected a directory" in capsys.readouterr().err
    assert main(["analyze", str(run), "--formats", "gif"]) == 1
    assert "--formats 'gif' is invalid" in capsys.readouterr().err


def test_several_runs_are_combined(tmp_path):
    first = _run(tmp_path / "a")
    second = _run(tmp_path / "b")
    output = analyze([first, second], tmp_path / "out", images=False, formats=("png",))
    frontier = pd.read_csv(output.frontier)
    assert len(frontier) == 6 and set(frontier["run"]) == {str(first), str(second)}


@pytest.mark.parametrize("name", ["absent"])
def test_missing_run_directory(tmp_path, name, capsys):
    assert main(["analyze", str(tmp_path / name)]) == 1
    assert "run directory not found" in capsys.readouterr().err


def test_hypervolume_per_model_against_the_worst_completed_values(tmp_path):
    from analysis import load_results
    from analysis.report import hypervolumes

    table = hypervolumes(load_results(_run(tmp_path)), {"recon_error": "min", "dci": "max"}).set_index("model")
    # reference: recon_error 0.05 (worst), dci 0.4 (worst). absae front (0.02, 0.6), (0.03, 0.9):
    # boxes [0.02, 0.05] x [0.4, 0.6] and [0.03, 0.05] x [0.6, 0.9]
    assert table.loc["absae", "hypervolume"] == pytest.approx(0.03 * 0.2 + 0.02 * 0.3)
    assert table.loc["absae", "front_size"] == 2 and table.loc["absae", "trials"] == 3
    assert table.loc["betavae", "hypervolume"] == 0.0  # it is the reference point itself


def test_report_reads_cleanly_in_a_browser(tmp_path):
    """What the Chromium screenshot showed a reader stumbling on: wide tables running off the page,
    the same value repeated in every row, and pandas' <NA> beside "–" for a missing value."""
    run = _run(tmp_path)
    report = analyze(run, tmp_path / "out", images=False, formats=("png",)).report.read_text()
    assert "&lt;NA&gt;" not in report and "<NA>" not in report
    assert report.count("<div class='table-wrap'><table") == report.count("<table")
    assert "<p class='note'>Every row: dataset dsprites:v2, seed 0, latent_dim 8, tau 200, alpha 0.5, lr 0.0001" in report
    assert "<nav class='toc'>Contents: <a href='#missing'>" in report and "<h2 id='frontier'>" in report


def test_report_says_where_the_trials_ran_and_warns_when_set_ups_differ(tmp_path):
    run = _run(tmp_path)
    trial_dirs = sorted(p for p in run.iterdir() if p.is_dir())
    setup = {"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "cpu_id": "family 6 model 207 stepping 2",
             "cpu_capability": "AVX512", "torch": "2.13.0+cpu", "torch_threads": 1}
    for trial_dir in trial_dirs:
        (trial_dir / "environment.json").write_text(json.dumps([{"from_step": 0, **setup}]))
    analyze(run, tmp_path / "same", images=False)
    report = (tmp_path / "same" / "report.html").read_text()
    assert "Where the trials ran" in report and "family 6 model 207 stepping 2" in report
    assert "more than one set-up" not in report
    # one trial resumed on a machine with other kernels: two set-ups, and the report says so
    resumed = [{"from_step": 0, **setup}, {"from_step": 10, **setup, "cpu_capability": "AVX2"}]
    (trial_dirs[0] / "environment.json").write_text(json.dumps(resumed))
    analyze(run, tmp_path / "mixed", images=False)
    report = (tmp_path / "mixed" / "report.html").read_text()
    assert "more than one set-up" in report and "AVX2" in report
