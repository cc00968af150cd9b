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


def test_resume_continues_from_the_checkpoint_with_the_same_numbers(stand_ins, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--set", "steps=15", "--set", "noise=bernoulli", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--set", "steps=30", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "step 15/30" not in printed and "step 30/30" in printed
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["step"] == 30
    # an uninterrupted run of the same config ends with exactly the same numbers
    assert main(["train", *TINY, "--set", "noise=bernoulli", "--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    for key in full:
        if key != "train_seconds":
            assert resumed[key] == full[key] or (resumed[key] != resumed[key] and full[key] != full[key]), key
    assert resumed["loss_recon"] == full["loss_recon"] and resumed["recon_error"] == full["recon_error"]


@pytest.mark.parametrize("argv, message", [
    (["--set", "steps"], "--set 'steps': expected KEY=VALUE"),
    (["--set", "stepz=3"], "unknown key 'stepz'"),
    (["--set", "steps=many"], "steps='many' is invalid; expected an integer"),
    (["--set", "model=betavae", "--set", "covariance_floor=0.1"], "unknown key 'covariance_floor'"),
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


def test_diverged_trial_is_a_one_line_error_and_keeps_its_history(stand_ins, tmp_path, capsys, monkeypatch):
    from test_loop_training import TinyModel

    monkeypatch.setattr(TinyModel, "nan_from_step", 17)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 1
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
    assert one_at_a_time[2, 2 + 6 * 2, 0] == 255 and one_at_a_time[2 + 6, 2 + 6 * 2, 0] == 0   # a row a factor


def test_prior_means_grid_of_a_large_mixture_varies_one_factor_at_a_time_a_row_per_factor():
    means = torch.tensor([[0.0], [9.0], [-9.0], [-9.0], [9.0], [0.0]])       # components (0,0) .. (1,2)
    factors = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    model = _DecodeIdentity(_Prior(means, factors))
    assert images.prior_means_grid(model, max_components=6).shape == (2 * 6 + 2, 3 * 6 + 2, 3)
    grid = images.prior_means_grid(model, max_components=5)
    assert grid.shape == (2 * 6 + 2, 3 * 6 + 2, 3)                            # rows: factor 0, factor 1
    row0 = [grid[2, 2 + 6 * c, 0] for c in range(3)]
    row1 = [grid[2 + 6, 2 + 6 * c, 0] for c in range(3)]
    assert row0 == [128, 0, 255]            # (0,0), (1,0), a blank tile
    assert row1 == [128, 255, 0]            # (0,0), (0,1), (0,2)


# -- progress, quiet, --help keys, TensorBoard -----------------------------------------------------


def test_quiet_prints_nothing_and_still_writes_everything(stand_ins, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert json.loads((out / "metrics.json").read_text())["step"] == 30


def test_progress_reaches_the_loop_once_per_step_with_the_running_losses(stand_ins, tmp_path):
    from trainables.config import TrialConfig
    from trainables.loop import train

    seen = []

    class Recorder:
        def update(self, step, losses):
            seen.append((step, losses()))

    pairs = dict(item.split("=", 1) for item in TINY[1::2])
    cfg = TrialConfig.from_dict(pairs)
    train(cfg, out_dir=tmp_path / "run", progress=Recorder())
    assert [step for step, _ in seen] == list(range(1, 31))
    assert seen[0][1] and all(k.startswith("loss_") for k in seen[0][1])
    # the means restart after each evaluation (step 15): step 16 sees one step's losses
    assert seen[14][1] and seen[15][1] and seen[15][1] != seen[14][1]


def test_help_lists_every_trial_config_key_with_its_default_and_meaning(capsys):
    import dataclasses

    from trainables.config import TrialConfig
    from trainables.train_cli import key_help_rows

    rows = key_help_rows()
    assert [key for key, _, _ in rows] == [f.name for f in dataclasses.fields(TrialConfig)]
    assert all(meaning for _, _, meaning in rows), [key for key, _, meaning in rows if not meaning]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    defaults = TrialConfig()
    for field in dataclasses.fields(TrialConfig):
        line = next(line for line in text.splitlines() if line.split()[:1] == [field.name])
        value = getattr(defaults, field.name)
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        assert line.split()[1] == (shown or "''"), line
    assert "absae.fit_batch_size" in text and "examples:" in text
    from trainables.train_cli import model_extra_rows

    for model, extra_rows in model_extra_rows().items():
        for key, default, meaning in extra_rows:
            assert meaning, f"{model}.{key} has no meaning in --help"
            line = next(line for line in text.splitlines() if line.split()[:1] == [f"{model}.{key}"])
            assert line.split()[1] == default, line  # the name never runs into its default


def _flat(cfg) -> dict:
    """A TrialConfig's keys with its model extras beside them, as a sweep's `fixed` names them."""
    import dataclasses

    return {**dataclasses.asdict(cfg), **cfg.extra}


def _assert_is_sweep_trial(cfg, sweep, family) -> None:
    """``cfg`` carries the sweep's and the family's fixed settings (the device aside) on its dataset."""
    expected = {key: value for key, value in {**sweep.fixed, **family.fixed}.items() if key != "device"}
    trial = _flat(cfg)
    assert {key: trial[key] for key in expected} == expected, sweep.name
    assert cfg.dataset == sweep.datasets[0], sweep.name


def test_the_hwf_train_config_is_the_hwf_tables_trial():
    """`weakdis train absae-hwf` runs hwf-table5's trial (and hwf-table4's at tau 130), the settings
    docs/reproduction.md measures."""
    from search.sweep_cli import read_config
    from trainables.train_cli import resolve_config

    cfg = resolve_config("absae-hwf", [])
    for name in ("hwf-table5", "hwf-table4"):
        sweep = read_config(name)
        (absae,) = sweep.models
        _assert_is_sweep_trial(cfg, sweep, absae)
    assert cfg.tau in read_config("hwf-table4").models[0].space["tau"].values


def test_the_shapes3d_train_config_is_absae_dsprites_with_the_changes_docs_measure():
    """docs/reproduction.md ("Shapes3D") describes absae-shapes3d as absae-dsprites with these changes."""
    from trainables.train_cli import resolve_config

    shapes, sprites = (resolve_config(name, []) for name in ("absae-shapes3d", "absae-dsprites"))
    a, b = _flat(shapes), _flat(sprites)
    changed = {key: a.get(key) for key in set(a) | set(b) if a.get(key) != b.get(key) and key != "extra"}
    # the last three since 2026-12-05 ("The ReL's loss on encoded labelled images on Shapes3D"), the
    # settings of dsprites-fig5-cpu-r1's AbsAE
    assert changed == {"dataset": "shapes3d:v2", "data_images": 30000, "latent_dim": 16, "steps": 4000,
                       "tau_sampling": "stratified", "min_component_samples": 50, "disc_r1": 10.0,
                       "disc_restart": True, "rel_encoder_weight": 1.0, "prior_covariance_scale": 1.0,
                       "prior_covariance_estimator": "ledoit_wolf"}
    assert shapes.prior_refit_every == 50 and shapes.tau == 1000


def test_the_shapes3d_laptop_sweep_runs_absae_shapes3d_and_mae_with_the_same_settings():
    """docs/reproduction.md reports shapes3d-fig5-cpu's AbsAE trial as `weakdis train absae-shapes3d`."""
    from search.sweep_cli import read_config
    from trainables.train_cli import resolve_config

    cfg = resolve_config("absae-shapes3d", [])
    sweep = read_config("shapes3d-fig5-cpu")
    families = {f.model: f for f in sweep.models}
    assert set(families) == {"absae", "mae", "betavae", "factorvae"}
    absae, mae = families["absae"], families["mae"]
    _assert_is_sweep_trial(cfg, sweep, absae)
    assert cfg.beta in absae.space["beta"].values
    # M-AE: the same settings, with 8 dimensions a factor (16 in all on shapes3d:v2's two factors) and
    # the covariances it was measured with, the sample covariances x 0.1 (docs/reproduction.md, "Figure
    # 5 on Shapes3D")
    assert {**absae.fixed, "latent_dim": 8, "prior_covariance_scale": 0.1,
            "prior_covariance_estimator": "sample"} == mae.fixed
    assert mae.fixed["rel_encoder_weight"] == 1.0
    assert mae.space["beta"].values == (cfg.beta,)


def test_the_r1_variants_mae_trial_is_absae_dsprites_with_the_settings_docs_measure():
    """docs/reproduction.md ("The ReL's loss on encoded labelled images") measures dsprites-fig5-cpu-r1's
    M-AE trials as `weakdis train absae-dsprites` with these settings."""
    from search.sweep_cli import read_config
    from trainables.train_cli import resolve_config

    sets = ["model=mae", "disc_r1=1", "disc_restart=true", "rel_encoder_weight=1", "prior_covariance_scale=0.5",
            "partition_mean_dropout=0.2"]
    sweep = read_config("dsprites-fig5-cpu-r1")
    mae = next(f for f in sweep.models if f.model == "mae")
    for beta in mae.space["beta"].values:
        cfg = resolve_config("absae-dsprites", [*sets, f"beta={beta}", "prior_covariance_estimator=sample",
                                                  "steps=3000"])
        _assert_is_sweep_trial(cfg, sweep, mae)
    # the two settings above restate absae-dsprites' own (the model's default estimator, 3,000 steps)
    from trainables.models.mae import MAEConfig

    plain = resolve_config("absae-dsprites", sets)
    assert plain.steps == 3000 and "prior_covariance_estimator" not in plain.extra
    assert MAEConfig().prior_covariance_estimator == "sample"


def test_the_r1_variants_absae_trial_is_absae_dsprites_with_the_settings_docs_measure():
    """docs/reproduction.md ("The ReL's loss on encoded labelled images") measures dsprites-fig5-cpu-r1's
    AbsAE trials as `weakdis train absae-dsprites` with these settings."""
    from search.sweep_cli import read_config
    from trainables.train_cli import resolve_config

    sets = ["disc_r1=1", "disc_restart=true", "steps=4000", "prior_covariance_scale=1.0",
            "prior_covariance_estimator=ledoit_wolf", "rel_encoder_weight=1"]
    sweep = read_config("dsprites-fig5-cpu-r1")
    absae = next(f for f in sweep.models if f.model == "absae")
    assert absae.space["beta"].values == (0.2, 1.0)
    for beta in absae.space["beta"].values:
        _assert_is_sweep_trial(resolve_config("absae-dsprites", [*sets, f"beta={beta}"]), sweep, absae)


def test_a_packaged_train_config_is_read_by_name_and_never_offered_as_a_sweep(capsys):
    from search.sweep_cli import packaged_configs
    from trainables.train_cli import packaged_train_configs, resolve_config

    assert "absae-dsprites" in packaged_train_configs()
    cfg = resolve_config("absae-dsprites", ["seed=3"])
    assert (cfg.model, cfg.steps, cfg.seed) == ("absae", 3000, 3)
    # the trial is dsprites-fig5-cpu's AbsAE trial at beta 0.2, the settings docs/reproduction.md measures
    from search.sweep_cli import read_config

    sweep = read_config("dsprites-fig5-cpu")
    absae = next(f for f in sweep.models if f.model == "absae")
    _assert_is_sweep_trial(cfg, sweep, absae)
    assert cfg.beta in absae.space["beta"].values
    assert all(not name.startswith("train") for name in packaged_configs())
    assert main(["train", "no-such-config"]) == 1
    assert "config file 'no-such-config': not found (packaged train configs: absae-dsprites, absae-hwf, absae-shapes3d)" in capsys.readouterr().err


def test_tensorboard_files_hold_every_history_column_and_the_image_grids(stand_ins, tmp_path, capsys):
    # tensorboard comes with the dev extra (the README's test command): no skip
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert "tensorboard" in capsys.readouterr().out
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    with (out / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    tags = set(events.Tags()["scalars"])
    for column, value in rows[-1].items():
        if column == "step" or value in ("", "nan"):
            continue
        tag = f"loss/{column[5:]}" if column.startswith("loss_") else \
            "time/train_seconds" if column == "train_seconds" else f"metrics/{column}"
        assert tag in tags, tag
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [int(float(r["step"])) for r in rows if r[column] not in ("", "nan")]
        assert scalars[-1].value == pytest.approx(float(value), rel=1e-5)
    assert "images/reconstructions" in events.Tags()["images"]
    image = events.Images("images/reconstructions")[-1]
    assert (image.width, image.height, image.step) == (8 * 66 + 2, 2 * 66 + 2, 30)
