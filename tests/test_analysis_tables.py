"""The papers' tables from a synthetic run with known numbers, and their Markdown / LaTeX forms."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import published
from analysis.tables import (clustering_table, disentanglement_table, paper_tables, relations_by_depth_table,
                             relations_by_version_table, to_latex, to_markdown, write_tables)


def _row(model, dataset, beta, seed, status="finished", **metrics):
    base = {"trial_id": f"{model}-{dataset}-{beta}-{seed}", "status": status, "model": model, "dataset": dataset,
            "beta": beta, "seed": seed, "tau": 1000, "alpha": 0.5, "relation_depth": 1}
    return {**base, **metrics}


def _results() -> pd.DataFrame:
    rows = [
        # absae on dsprites: beta 1 averages dci 0.8, beta 4 averages 0.9 -> beta 4 is chosen
        _row("absae", "dsprites:v2", 1.0, 0, dci=0.7, mig=0.1, sap=0.1),
        _row("absae", "dsprites:v2", 1.0, 1, dci=0.9, mig=0.1, sap=0.1),
        _row("absae", "dsprites:v2", 4.0, 0, dci=0.85, mig=0.6, sap=0.3),
        _row("absae", "dsprites:v2", 4.0, 1, dci=0.95, mig=0.8, sap=0.5),
        # a failed trial with a higher dci is ignored
        _row("absae", "dsprites:v2", 8.0, 0, status="failed", dci=0.99, mig=0.99, sap=0.99),
        _row("betavae", "shapes3d:v2", 2.0, 0, dci=0.3, mig=0.2, sap=0.1),
    ]
    frame = pd.DataFrame(rows)
    frame["seed"] = frame["seed"].astype("Int64")
    frame["tau"] = frame["tau"].astype("Int64")
    return frame


def test_disentanglement_table_best_configuration_and_published_rows():
    table = disentanglement_table(_results())
    run = table[table["source"].str.startswith("this run")].set_index("method")
    assert list(run.index) == ["AbsAE", "β-VAE"]
    assert run.loc["AbsAE", "dsprites DCI"] == pytest.approx(0.9)
    assert run.loc["AbsAE", "dsprites MIG"] == pytest.approx(0.7)
    assert run.loc["AbsAE", "dsprites SAP"] == pytest.approx(0.4)
    assert run.loc["AbsAE", "dsprites seeds"] == 2
    assert math.isnan(run.loc["AbsAE", "shapes3d DCI"]) and pd.isna(run.loc["AbsAE", "shapes3d seeds"])
    assert run.loc["β-VAE", "shapes3d DCI"] == pytest.approx(0.3)
    paper = table[table["source"].str.startswith("published")].set_index("method")
    assert paper.loc["AbsAE", "dsprites DCI"] == 0.9543 and paper.loc["AbsAE", "shapes3d SAP"] == 0.5007
    assert paper.loc["M-AE", "dsprites DCI"] == 0.9732 and paper.loc["M-AE", "source"] == "published (modular Table 2)"
    assert paper.loc["β-VAE", "shapes3d MIG"] == 0.270
    assert len(paper) == len(published.DISENTANGLEMENT)


def test_relations_by_version_table_puts_run_beside_paper():
    frame = pd.DataFrame([
        _row("mae", "dsprites:v3", 0.1, 0, relation_accuracy=0.6),
        _row("mae", "dsprites:v3", 0.1, 1, relation_accuracy=0.8),
        _row("absae", "dsprites:v3", 0.1, 0, relation_accuracy=0.5),
    ])
    table = relations_by_version_table(frame).set_index("version")
    assert list(table.index[:6]) == list(published.RELATION_ACCURACY_BY_VERSION)
    assert table.loc["dsprites:v3", "M-AE accuracy"] == pytest.approx(0.7)
    assert table.loc["dsprites:v3", "M-AE tau"] == 1000
    assert table.loc["dsprites:v3", "AbsAE accuracy"] == pytest.approx(0.5)
    assert table.loc["dsprites:v3", "M-AE accuracy (paper)"] == 0.751
    assert table.loc["dsprites:v3", "AbsAE tau (paper)"] == 1350
    assert table.loc["dsprites:v3", "combinations"] == 135
    assert math.isnan(table.loc["shapes3d:v5", "M-AE accuracy"])
    assert "M-AE accuracy (moved factors)" not in table      # results without the column


def test_relations_by_version_table_shows_the_moved_factors_reading_of_the_best_configuration():
    frame = pd.DataFrame([
        _row("mae", "dsprites:v3", 0.1, 0, relation_accuracy=0.1, relation_accuracy_moved=0.6),
        _row("mae", "dsprites:v3", 0.1, 1, relation_accuracy=0.3, relation_accuracy_moved=0.8),
        _row("mae", "dsprites:v3", 1.0, 0, relation_accuracy=0.05, relation_accuracy_moved=0.99),
    ])
    table = relations_by_version_table(frame).set_index("version")
    assert table.loc["dsprites:v3", "M-AE accuracy"] == pytest.approx(0.2)
    assert table.loc["dsprites:v3", "M-AE accuracy (moved factors)"] == pytest.approx(0.7)   # beta 0.1's, not 0.99
    assert math.isnan(table.loc["dsprites:v3", "AbsAE accuracy (moved factors)"])


def test_clustering_and_depth_tables_average_the_run_and_merge_the_paper_grid():
    # Table 4's tau is labelled images per prior component: 540 on dsprites:v2 (27 combinations) is row 20
    frame = pd.DataFrame([
        _row("absae", "dsprites:v2", 1.0, 0, alpha=0.5, tau=540, clustering_accuracy=0.8, accepted_ratio=0.9),
        _row("absae", "dsprites:v2", 1.0, 1, alpha=0.5, tau=540, clustering_accuracy=0.9, accepted_ratio=1.0),
        _row("absae", "dsprites:v2", 1.0, 0, alpha=0.25, tau=500, clustering_accuracy=0.6, accepted_ratio=0.7),
        _row("betavae", "dsprites:v2", 1.0, 0, alpha=0.5, tau=540, clustering_accuracy=0.0, accepted_ratio=0.0),
        _row("absae", "shapes3d:v2", 1.0, 0, alpha=0.9, relation_depth=5, relation_accuracy=0.75),
        _row("absae", "hwf:v1", 1.0, 0, alpha=0.0, tau=130, clustering_accuracy=0.5, accepted_ratio=1.0),
    ])
    table = clustering_table(frame).set_index(["alpha", "tau"])
    # the paper's 18 cells plus the run's (0.25, 500 / 27) and (0.9, 1000 / 120 on shapes3d:v2)
    assert len(table) == len(published.CLUSTERING) + 2
    assert table.loc[(0.5, 20), "dsprites ACC"] == pytest.approx(0.85)  # betavae is not an AbsAE
    assert table.loc[(0.5, 20), "dsprites AR"] == pytest.approx(0.95)
    assert table.loc[(0.5, 20), "dsprites ACC (paper)"] == 0.882
    assert table.loc[(0.5, 20), "shapes3d AR (paper)"] == 0.714
    assert table.loc[(0.25, 18.52), "dsprites ACC"] == pytest.approx(0.6)
    assert math.isnan(table.loc[(0.25, 18.52), "dsprites ACC (paper)"])
    assert table.loc[(0.0, 10), "hwf ACC"] == pytest.approx(0.5)       # 130 images of 13 symbols: 10 each
    assert table.loc[(0.0, 10), "hwf ACC (paper)"] == 0.917
    depth = relations_by_depth_table(frame).set_index(["alpha", "relation_depth"])
    assert depth.loc[(0.9, 5), "shapes3d ACC"] == pytest.approx(0.75)
    assert depth.loc[(0.9, 5), "shapes3d ACC (paper)"] == 0.8830
    assert math.isnan(depth.loc[(0.9, 5), "shapes3d AR"])  # the run reports no relation accepted ratio
    assert depth.loc[(0.9, 10), "dsprites AR (paper)"] == 0.9419


def test_markdown_and_latex_formatting():
    table = pd.DataFrame({"method": ["β-VAE", "a_b"], "DCI": [0.45661, np.nan], "seeds": pd.array([3, None], "Int64")})
    assert to_markdown(table) == (
        "| method | DCI | seeds |\n|---|---:|---:|\n| β-VAE | 0.457 | 3 |\n| a_b | – | – |\n")
    latex = to_latex(table, caption="Scores", label="tab:x")
    assert r"\begin{tabular}{lrr}" in latex
    assert r"$\beta$-VAE & 0.457 & 3 \\" in latex
    assert r"a\_b & -- & -- \\" in latex
    assert r"\caption{Scores}" in latex and r"\label{tab:x}" in latex


def test_write_tables_writes_every_format(tmp_path):
    written = write_tables(_results(), tmp_path)
    assert set(written) == set(paper_tables(_results()))
    for name in written:
        for suffix in ("csv", "md", "tex"):
            assert (tmp_path / f"{name}.{suffix}").stat().st_size > 0
    csv = pd.read_csv(tmp_path / "table1_disentanglement.csv")
    assert csv.loc[0, "method"] == "AbsAE" and csv.loc[0, "dsprites DCI"] == pytest.approx(0.9)


def test_completed_trials_fall_back_to_trials_that_have_reported():
    from analysis.tables import completed_trials

    frame = pd.DataFrame({"status": ["finished", "running", "pending"], "step": pd.array([20, 10, None], "Int64")})
    assert list(completed_trials(frame).index) == [0]
    still_running = frame.assign(status=["failed", "running", "pending"])
    assert list(completed_trials(still_running).index) == [0, 1]


def _grid_trial(seed, tau, base, **extra):
    """An AbsAE trial reporting the evaluation grid: accuracy base + alpha (+ depth / 100 for relations)."""
    from weakdis.registry import ALPHA_GRID, DEPTH_GRID, clustering_column, relation_column

    values = {}
    for alpha in ALPHA_GRID:
        values[clustering_column(alpha)] = base + alpha / 10
        values[clustering_column(alpha, "ratio")] = 1.0 - alpha / 2
        for depth in DEPTH_GRID:
            values[relation_column(depth, alpha)] = base + alpha / 10 + depth / 100
            values[relation_column(depth, alpha, "ratio")] = 1.0 - alpha / 4
    return _row("absae", "dsprites:v2", 1.0, seed, tau=tau, alpha=0.5, relation_depth=1, **values, **extra)


def test_one_trial_per_tau_fills_every_alpha_of_table_4_and_one_trial_table_5():
    frame = pd.DataFrame([_grid_trial(0, 270, 0.5), _grid_trial(1, 270, 0.7), _grid_trial(0, 540, 0.6)])
    table = clustering_table(frame, published_rows=False).set_index(["alpha", "tau"])
    assert len(table) == 6 * 2                                         # six alphas x two taus
    assert table.loc[(0.0, 10), "dsprites ACC"] == pytest.approx(0.6)  # mean of the two seeds
    assert table.loc[(0.9, 10), "dsprites ACC"] == pytest.approx(0.69)
    assert table.loc[(0.9, 20), "dsprites AR"] == pytest.approx(0.55)
    depth = relations_by_depth_table(frame[frame["tau"] == 540], published_rows=False)
    depth = depth.set_index(["alpha", "relation_depth"])
    assert len(depth) == 6 * 3
    assert depth.loc[(0.3, 5), "dsprites ACC"] == pytest.approx(0.6 + 0.03 + 0.05)
    assert depth.loc[(0.7, 10), "dsprites AR"] == pytest.approx(1 - 0.7 / 4)
    # a trial without the grid (an older run) still counts at its own alpha and depth
    old = pd.DataFrame([_row("absae", "dsprites:v2", 1.0, 0, tau=810, alpha=0.5, clustering_accuracy=0.4,
                             accepted_ratio=0.8)])
    mixed = clustering_table(pd.concat([frame, old], ignore_index=True), published_rows=False)
    assert mixed.set_index(["alpha", "tau"]).loc[(0.5, 30), "dsprites ACC"] == pytest.approx(0.4)


def test_figure_2_draws_a_point_per_alpha_from_one_trial():
    from analysis import plots

    fig = plots.clustering_vs_alpha(pd.DataFrame([_grid_trial(0, 270, 0.5)]))
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.51, 0.53, 0.55, 0.57, 0.59])
    depth = plots.relation_accuracy_vs_depth(pd.DataFrame([_grid_trial(0, 10, 0.5)]))
    assert len(depth.axes[0].get_lines()) == 6   # a line per alpha
    assert list(depth.axes[0].get_lines()[0].get_xdata()) == [1, 5, 10]
