"""`weakdis train` and the image grids, with the stand-ins of test_loop_training."""
from __future__ import annotations

import csv
import json

import matplotlib.image
import numpy as np
import pytest
import torch

from search.cli import main
from test_loop_training import stand_ins  # noqa: F401  (the fixture)
from trainables import images

TINY = ["--set", "dataset=tiny:v1", "--set", "model=betavae", "--set", "steps=30", "--set", "eval_every=15",
        "--set", "batch_size=16", "--set", "lr=0.003", "--set", "latent_dim=4", "--set", "eval_points=30",
        "--set", "tau=10", "--set", "device=cpu", "--set", "log_every=5"]


def test_train_writes_every_output_and_prints_a_line_per_evaluation(stand_ins, tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("seed: 5\nsteps: 1000\n")
    out = tmp_path / "run"
    assert main(["train", str(config), *TINY, "--out", str(out)]) == 0  # --set overrides the file
    printed = capsys.readouterr().out
    assert "step 15/30" in printed and "step 30/30" in printed and "recon_error" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 5 and metrics["steps"] == 30 and metrics["step"] == 30
    with (out / "history.csv").open() as handle:
        assert [int(float(r["step"])) for r in csv.DictReader(handle)] == [15, 30]
    assert (out / "checkpoint" / "state.pt").is_file()
    grid = matplotlib.image.imread(out / "reconstructions.png")
    assert grid.shape[:2] == (2 * 66 + 2, 8 * 66 + 2)
    # the stand-in has no prior and no relations: no such grids
    assert not (out / "prior_means.png").exists() and not (out / "relations.png").exists()


def test_resume_continues_from_the_checkpoint(stand_ins, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--set", "steps=15", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--set", "steps=30", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "step 15/30" not in printed and "step 30/30" in printed
    assert json.loads((out / "metrics.json").read_text())["step"] == 30


@pytest.mark.parametrize("argv, message", [
    (["--set", "steps"], "--set 'steps': expected KEY=VALUE"),
    (["--set", "stepz=3"], "unknown key 'stepz'"),
    (["--set", "steps=many"], "steps='many' is not a valid int"),
    (["--resume"], "--resume needs --out DIR"),
])
def test_bad_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    assert main(["train", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("weakdis: error: ") and message in err and "\n" not in err


def test_bad_config_file_is_named(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("- steps\n")
    assert main(["train", str(config)]) == 1
    assert f"config file '{config}': expected a mapping" in capsys.readouterr().err


def test_diverged_trial_is_a_one_line_error_and_keeps_its_history(stand_ins, tmp_path, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text("extra:\n  nan_at: 17\n")
    out = tmp_path / "run"
    assert main(["train", str(config), *TINY, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "weakdis: error: trial diverged at step 17: loss 'code_norm' is nan"
    assert "step 15/30" in captured.out
    with (out / "history.csv").open() as handle:
        assert [int(float(r["step"])) for r in csv.DictReader(handle)] == [15]
    assert (out / "checkpoint" / "state.pt").is_file() and not (out / "metrics.json").exists()


def test_tile_places_images_row_major_with_padding():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.ones(1, 3, 2, 2) * torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    grid = images.tile(torch.cat([a.expand(1, 3, 2, 2), b, a.expand(1, 3, 2, 2)]), columns=2, pad=1)
    assert grid.dtype == np.uint8 and grid.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    assert (grid[1:3, 1:3] == 0).all()                       # first image, row 0 col 0
    assert (grid[1:3, 4:6] == [255, 128, 0]).all()           # second image, row 0 col 1
    assert (grid[4:6, 1:3] == 0).all()                       # third image, row 1 col 0
    assert (grid[4:6, 4:6] == 255).all() and (grid[0] == 255).all()   # empty cell and padding white


class _Prior:
    def __init__(self, means, component_factors):
        self.means = means
        self.component_factors = component_factors


class _ModularPrior:
    def __init__(self, priors, slices):
        self.priors, self.slices = priors, slices


class _DecodeIdentity(torch.nn.Module):
    """decode(z) paints the whole image with logit z[0] and z[-1] halves: lets a test read codes back."""

    def __init__(self, prior):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.prior = prior

    def decode(self, z):
        top = z[:, :1, None, None].expand(-1, 1, 2, 4)
        bottom = z[:, -1:, None, None].expand(-1, 1, 2, 4)
        return torch.cat([top, bottom], dim=2)


def test_prior_means_grid_decodes_each_component_in_factor_order():
    means = torch.tensor([[-9.0], [9.0], [0.0], [-9.0], [9.0], [0.0]])
    factors = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    grid = images.prior_means_grid(_DecodeIdentity(_Prior(means, factors)))
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (4 + 2) + 2, 3)      # 2 rows x 3 columns
    assert grid[2, 2, 0] == 0 and grid[2, 8, 0] == 255 and grid[8, 2, 0] == 0 and grid[8, 14, 0] == 128


def test_prior_means_grid_for_a_modular_prior_combines_one_mean_per_partition():
    priors = [_Prior(torch.tensor([[-9.0], [9.0]]), torch.tensor([[0], [1]])),
              _Prior(torch.tensor([[9.0], [-9.0], [0.0]]), torch.tensor([[0], [1], [2]]))]
    model = _DecodeIdentity(_ModularPrior(priors, [slice(0, 1), slice(1, 2)]))
    grid = images.prior_means_grid(model)                           # 2 x 3 = 6 combinations
    assert grid.shape == (2 * 6 + 2, 3 * 6 + 2, 3)
    top, bottom = grid[2 + 6 * 1, 2 + 6 * 2, 0], grid[2 + 6 * 1 + 3, 2 + 6 * 2, 0]
    assert (top, bottom) == (255, 128)                              # factor 0 value 1, factor 1 value 2
    one_at_a_time = images.prior_means_grid(model, max_images=4)    # 2 + 3 images, 3 columns
    assert one_at_a_time.shape == (2 * 6 + 2, 3 * 6 + 2, 3)
