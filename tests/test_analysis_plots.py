"""Figures: what each draws (data of the lines and images), and what it says when data is missing."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.plots import MissingDataError


def _results() -> pd.DataFrame:
    rows = []
    # absae on dsprites:v2, known front against recon_error: (0.1, 0.5), (0.2, 0.8); (0.3, 0.6) dominated
    for index, (recon, dci) in enumerate([(0.1, 0.5), (0.2, 0.8), (0.3, 0.6)]):
        rows.append({"trial_id": f"a{index}", "status": "finished", "model": "absae", "dataset": "dsprites:v2",
                     "beta": [1.0, 4.0, 16.0][index], "seed": 0, "alpha": 0.5, "tau": 270, "relation_depth": 1,
                     "recon_error": recon, "dci": dci, "mig": dci / 2, "sap": np.nan,
                     "clustering_accuracy": 0.7 + 0.1 * index, "accepted_ratio": 0.9,
                     "relation_accuracy": 0.95})
    for seed, dci in enumerate([0.3, 0.5]):
        rows.append({"trial_id": f"b{seed}", "status": "finished", "model": "betavae", "dataset": "dsprites:v2",
                     "beta": 4.0, "seed": seed, "recon_error": 0.4, "dci": dci, "mig": 0.1, "sap": np.nan})
    rows.append({"trial_id": "p", "status": "pending", "model": "betavae", "dataset": "dsprites:v2", "beta": 8.0})
    return pd.DataFrame(rows)


def test_tradeoff_grid_draws_each_models_frontier():
    fig = plots.tradeoff_grid(_results())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["dsprites:v2: DCI", "dsprites:v2: MIG"]  # sap has no values
    lines = axes[0].get_lines()
    assert len(lines) == 2  # one staircase per model
    absae_line = lines[0]
    assert list(absae_line.get_xdata()) == [0.1, 0.2]
    assert list(absae_line.get_ydata()) == [0.5, 0.8]
    assert absae_line.get_drawstyle() == "steps-post"
    assert absae_line.get_color() == plots.MODEL_STYLES["absae"][0]
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["AbsAE", "β-VAE"]


def test_score_vs_beta_mean_and_t_interval_over_seeds():
    fig = plots.score_vs_beta(_results(), "dci")
    ax = fig.axes[0]
    betavae = [line for line in ax.get_lines() if line.get_color() == plots.MODEL_STYLES["betavae"][0]][0]
    assert list(betavae.get_xdata()) == [4.0] and list(betavae.get_ydata()) == [pytest.approx(0.4)]
    band = ax.collections[-1]  # the last model's fill_between: mean +- t_{0.975,1} * std / sqrt(2)
    half = 12.706204736174707 * np.std([0.3, 0.5], ddof=1) / np.sqrt(2)
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.max() == pytest.approx(0.4 + half) and ys.min() == pytest.approx(0.4 - half)
    assert ax.get_xscale() == "log"  # betas span 1..16


def test_clustering_and_depth_figures():
    fig = plots.clustering_vs_alpha(_results())
    top = fig.axes[0]
    assert top.get_title() == "dsprites"
    line = top.get_lines()[0]
    assert list(line.get_xdata()) == [0.5] and list(line.get_ydata()) == [pytest.approx(0.8)]  # mean of 0.7..0.9
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["τ = 10"]  # 270 labelled images / 27 components
    depth = plots.relation_accuracy_vs_depth(_results())
    assert depth.axes[0].get_title() == "dsprites: AbsAE + ReL"
    assert list(depth.axes[0].get_lines()[0].get_ydata()) == [pytest.approx(0.95)]


def test_missing_data_raises_a_clear_error():
    frame = _results().drop(columns=["relation_accuracy"])
    with pytest.raises(MissingDataError, match="the results have no column 'relation_accuracy'"):
        plots.relation_accuracy_vs_depth(frame)
    only_pending = _results()[lambda df: df["status"] == "pending"]
    with pytest.raises(MissingDataError, match="no trial has a value for recon_error"):
        plots.tradeoff_grid(only_pending)
    with pytest.raises(MissingDataError, match="no vae trial"):
        plots.clustering_vs_alpha(_results(), model="vae")


def test_progress_figure_follows_the_best_trials():
    history = pd.DataFrame({"trial_id": ["a1", "a1", "a0", "b0"], "step": [10, 20, 20, 20],
                            "recon_error": [0.5, 0.2, 0.1, 0.4], "dci": [0.3, 0.8, 0.5, 0.3]})
    fig = plots.progress_figure(history, _results(), metrics=("recon_error", "dci"), top=2)
    lines = fig.axes[1].get_lines()
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == [10, 20] and list(lines[0].get_ydata()) == [0.3, 0.8]  # a1 is best
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["AbsAE a1", "AbsAE a2"]  # by last dci: 0.8, 0.6


def test_image_grid_figure_shows_the_grid_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, size=(2 * 66, 3 * 66, 3), dtype=np.uint8)
    fig = plots.image_grid_figure(grid, title="reconstructions", row_labels=["input", "reconstruction"])
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.get_images()[0].get_array()), grid)
    assert [label.get_text() for label in ax.get_yticklabels()] == ["input", "reconstruction"]
    assert list(ax.get_yticks()) == [33.0, 99.0]
    paths = plots.save_figure(fig, str(tmp_path / "grid"))
    assert [open(path, "rb").read(4) for path in paths] == [b"\x89PNG", b"%PDF"]
    gray = plots.image_grid_figure(grid[:, :, 0])
    assert gray.axes[0].get_images()[0].get_cmap().name == "gray"
    with pytest.raises(ValueError, match="expected uint8"):
        plots.image_grid_figure(grid.astype(np.float32))


def test_a_long_title_on_a_narrow_grid_stays_inside_the_figure():
    """One column of 3 prior means (AbsAE's 27, three to a row) clipped its title before."""
    grid = np.zeros((9 * 66, 3 * 66), dtype=np.uint8)
    title = "AbsAE on dsprites:v2-ref: decoded prior means"
    fig = plots.image_grid_figure(grid, title=title)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box, inside = fig.axes[0].title.get_window_extent(renderer), fig.bbox
    assert box.x0 >= inside.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1
    assert fig.axes[0].title.get_text().replace("\n", " ") == title


def test_importing_analysis_stays_light():
    import subprocess

    code = ("import sys, analysis, analysis.report, analysis.plots, analysis.tables; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ray', 'search') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_checkpoint_image_figures_wrap_the_training_packages_grids():
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    from trainables.images import tile

    class Inverter(torch.nn.Module):
        """Reconstructs 1 - x; relation r adds r + 1 to the code; decodes a code to a flat image."""

        relations = (SimpleNamespace(name="move_left"), SimpleNamespace(name="change_shape"))
        prior = None

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def reconstruct(self, x):
            return 1.0 - x

        def encode(self, x):
            return x.mean(dim=(1, 2, 3))[:, None]

        def decode(self, z):
            return torch.logit(torch.full((len(z), 1, 64, 64), 0.5)) + z[:, :1, None, None] * 0

        def relational_model(self, z, relation):
            return z + relation[:, None].float() + 1

        def relation_targets(self):
            return [[0], [0]]

    images = torch.rand(6, 1, 64, 64)
    dataset = SimpleNamespace(splits={"test": torch.arange(6)}, images=images,
                              batch=lambda indices: images[indices])
    trial = (SimpleNamespace(model="absae", dataset="dsprites:v2"), Inverter(), dataset)

    fig = plots.reconstruction_figure(trial, n=3, seed=0)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))[:3]
    expected = tile(torch.cat([images[order], 1.0 - images[order]]), columns=3)
    np.testing.assert_array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()), expected)
    assert fig.axes[0].get_title() == "AbsAE on dsprites:v2: reconstructions"

    relations = plots.relation_figure(trial, n=2, seed=0)
    labels = [label.get_text() for label in relations.axes[0].get_xticklabels()]
    assert labels == ["input", "reconstruction", "move_left", "change_shape"]
    with pytest.raises(MissingDataError, match="absae has no mixture prior"):
        plots.prior_means_figure(trial)
