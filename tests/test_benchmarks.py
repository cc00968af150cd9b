"""The benchmark scripts still run: the throughput loop on the CPU, the GPU lease's script in its CPU smoke mode."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(out: Path, sets: list[str]) -> Path:
    """``weakdis train --set ... --out out -q`` (data under $WEAKDIS_DATA, which the caller sets)."""
    from search.cli import main

    assert main(["train", *[arg for s in sets for arg in ("--set", s)], "--out", str(out), "-q"]) == 0
    return out


def test_train_throughput_reports_a_finite_rate_per_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path))
    throughput = _load("train_throughput")
    rc = throughput.main(["--device", "cpu", "--batch-size", "8", "--warmup", "1", "--iters", "2",
                          "--models", "absae", "betavae", "--data-images", "2000", "--tau", "500", "--json"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["model"] for row in rows] == ["absae+ReL", "betavae"]
    for row in rows:
        assert 0 < row["images_per_s"] < float("inf") and not row["diverged"]
    assert rows[0]["losses"] == ["disc", "gen", "recon", "rel"]
    absae, betavae = rows
    # One refit every prior_refit_every (50) iterations: the rate a trial past its warm-up runs at.
    assert absae["refit_s"] > 0 and absae["prior_refit_every"] == 50
    expected = 50 * 8 / (50 * absae["ms_per_iter"] / 1000 + absae["refit_s"])
    assert absae["images_per_s_with_refits"] == pytest.approx(expected)
    assert absae["images_per_s_with_refits"] < absae["images_per_s"]
    assert betavae["refit_s"] is None and betavae["images_per_s_with_refits"] is None


def test_train_throughput_takes_trial_config_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path))
    throughput = _load("train_throughput")
    base = ["--device", "cpu", "--batch-size", "8", "--warmup", "1", "--iters", "1", "--models", "mae",
            "--data-images", "2000", "--tau", "500", "--json"]
    assert throughput.main([*base, "--set", "prior_refit_every=0", "--set", "latent_dim=4"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["prior_refit_every"] == 0                  # fitted once: no refit cost to spread
    assert row["images_per_s_with_refits"] == pytest.approx(row["images_per_s"])

    assert throughput.main([*base, "--set", "warmup_steps=5"]) == 2
    assert "warmup_steps=0" in capsys.readouterr().err
    assert throughput.main([*base, "--set", "prior_refit_evry=5"]) == 2
    assert "unknown key 'prior_refit_evry'" in capsys.readouterr().err


def test_gpu_check_results_reads_finished_and_stopped_trials(tmp_path):
    results = _load("gpu_check_results")
    finished = tmp_path / "r1_s0"
    finished.mkdir()
    (finished / "metrics.json").write_text(json.dumps(
        {"step": 4000, "train_seconds": 95.2, "recon_error": 0.00171, "dci": 0.9876, "mig": float("nan"),
         "accepted_ratio_a0.9": 0.96}))
    stopped = tmp_path / "paper"
    stopped.mkdir()
    (stopped / "history.csv").write_text("step,dci,recon_error,mig\n1000,0.5,0.01,\n2000,0.75,0.005,0.4\n")
    (tmp_path / "empty").mkdir()

    finished_row = results.row(finished)
    assert finished_row.split()[:5] == ["r1_s0", "4000", "95", "0.0017", "0.988"]
    assert finished_row.split()[5] == "-"            # NaN MIG shows as missing
    assert "0.960" in finished_row
    stopped_row = results.row(stopped)
    assert stopped_row.split()[:5] == ["paper", "2000", "-", "0.0050", "0.750"]
    assert stopped_row.endswith("(no metrics.json: running, or stopped)")
    assert "no evaluation" in results.row(tmp_path / "empty")


@pytest.mark.slow
def test_gpu_check_script_runs_its_smoke_mode(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "SMOKE": "1", "WEAKDIS_DATA": str(tmp_path / "data"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(out), str(tmp_path / "check.tar.gz")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (out / "results.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["paper", "paper_obj_s0", "r1_s0"]
    assert not any("no evaluation" in line for line in lines)
    assert "absae+ReL" in (out / "throughput.txt").read_text()
    assert (tmp_path / "check.tar.gz").stat().st_size > 0
    # the script's trials restate the configs' settings, all but the sizes its mode sets
    from search.sweep_cli import read_config

    sizes = {"steps", "warmup_steps", "batch_size", "eval_every", "eval_points", "data_images", "device"}
    paper = read_config("dsprites-fig5")
    r1_absae = next(f for f in read_config("dsprites-fig5-cpu-r1").models if f.model == "absae")
    for trial, settings in (("paper", paper.fixed), ("r1_s0", r1_absae.fixed)):
        saved = json.loads((out / trial / "checkpoint" / "config.json").read_text())
        saved.update(saved.pop("extra"))
        expected = {key: value for key, value in settings.items() if key not in sizes}
        assert {key: saved[key] for key in expected} == expected, trial


def test_decoded_sprites_counts_connected_regions_above_the_threshold():
    sprites = _load("decoded_sprites")
    images = np.zeros((4, 1, 16, 16), dtype=np.float32)
    images[1, 0, 2:5, 2:5] = 0.9                       # one sprite
    images[2, 0, 2:5, 2:5] = 0.9
    images[2, 0, 10:13, 9:12] = 0.6                    # and a fainter second one
    images[3, 0, 2:5, 2:5] = 0.9
    images[3, 0, 10, 10] = 1.0                         # a single pixel is no sprite
    images[3, 0, 12:14, 2:4] = 0.4                     # nor a region below the threshold
    assert sprites.count_sprites(images).tolist() == [0, 1, 2, 1]
    assert sprites.count_sprites(images[:, 0], threshold=0.3).tolist() == [0, 1, 2, 2]
    with pytest.raises(ValueError, match="single-channel"):
        sprites.count_sprites(np.zeros((2, 3, 8, 8)))


def test_decoded_sprites_reads_factors_from_the_nearest_reference_image():
    sprites = _load("decoded_sprites")
    reference = np.zeros((3, 1, 8, 8), dtype=np.float32)
    reference[0, 0, :4, :4] = reference[1, 0, 4:, 4:] = reference[2, 0, :4, 4:] = 1.0
    factors = np.array([[0, 0], [1, 1], [2, 0]])
    queries = np.clip(reference[[2, 0, 1]] * 0.7 + 0.1, 0, 1)     # faint, blurred-looking copies
    assert sprites.read_factors(queries, reference, factors, chunk=2).tolist() == [[2, 0], [0, 0], [1, 1]]
    with pytest.raises(ValueError, match="do not match"):
        sprites.read_factors(np.zeros((2, 1, 4, 4)), reference, factors)


@pytest.fixture(scope="module")
def tiny_mae_trial(tmp_path_factory):
    """An M-AE trained 8 steps on 600 generated dsprites:v2 images: a trial directory to diagnose."""
    root = tmp_path_factory.mktemp("tiny_mae")
    sets = ["model=mae", "dataset=dsprites:v2", "data_images=600", "steps=8", "warmup_steps=4", "eval_every=8",
            "eval_points=60", "tau=100", "batch_size=16", "mlp_hidden=32", "device=cpu"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WEAKDIS_DATA", str(root / "data"))
        yield _train(root / "mae", sets)


def test_decoded_sprites_reports_a_trained_mae_trial(tiny_mae_trial, capsys):
    out = tiny_mae_trial
    sprites = _load("decoded_sprites")
    sprites.main([str(out), "--images", "30", "--reference", "200"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{out}: mae on dsprites:v2, seed 0, 30 test images, factors read from the "
                                 "nearest of 200 training images")
    pattern = re.compile(r"^  (\S.*?)\s+(\d+)  none (\S+)  one (\S+)  two or more (\S+)  "
                         r"factors (\S+) \((\S+) (\S+) (\S+)\)$")
    rows = {m[1]: m.groups()[1:] for m in map(pattern.match, printed) if m}
    assert set(rows) == {"test images", "reconstruction", "move_left", "move_right", "move_up", "move_down",
                         "change_shape", "prior means", "prior samples"}
    assert rows["reconstruction"][0] == "30" and rows["prior means"][0] == "27" and rows["prior samples"][0] == "30"
    for _, none, one, more, every, *per_factor in rows.values():
        assert float(none) + float(one) + float(more) == pytest.approx(1.0, abs=2e-3)
        assert 0 <= float(every) <= min(map(float, per_factor)) <= 1
    # test images hold one sprite each; the reader, among only 200 images of every scale and orientation,
    # finds all three factors of far more than chance (1 in 27)
    assert rows["test images"][1:4] == ("0.000", "1.000", "0.000") and float(rows["test images"][4]) > 0.25
    assert printed[-4].startswith("  partition -> factor accuracy") and len(printed[-1].split()) == 4


def test_decoded_sprites_reads_the_factors_of_a_colour_trial_without_counting_sprites(tmp_path, monkeypatch,
                                                                                      capsys):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "data"))
    out = _train(tmp_path / "absae", ["model=absae", "dataset=shapes3d:v2", "data_images=400", "steps=6",
                                      "warmup_steps=3", "eval_every=6", "eval_points=40", "tau=80",
                                      "tau_sampling=stratified", "batch_size=16", "mlp_hidden=32", "device=cpu"])
    sprites = _load("decoded_sprites")
    sprites.main([str(out), "--images", "20", "--reference", "100"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("training images; sprites not counted (3 channels)")
    pattern = re.compile(r"^  (\S.*?)\s+(\d+)  none -  one -  two or more -  factors (\S+) \((\S+) (\S+)\)$")
    rows = {m[1]: m.groups()[1:] for m in map(pattern.match, printed[2:]) if m}
    assert len(rows) == len(printed) - 2 and {"test images", "reconstruction", "prior means", "prior samples"} <= set(rows)
    assert rows["prior means"][0] == "40" and rows["prior samples"][0] == "20"       # 10 hues x 4 shapes
    for _, every, *per_factor in rows.values():
        assert 0 <= float(every) <= min(map(float, per_factor)) <= 1


def test_prior_diagnostics_separation_is_the_mahalanobis_distance_between_neighbouring_values():
    diagnostics = _load("prior_diagnostics")
    component_factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])           # factor 0 (2) x factor 1 (2)
    means = np.array([[0.0, 0.0], [0.0, 0.5], [6.0, 0.0], [6.0, 0.5]])        # factor 0 apart, factor 1 not
    covariances = np.repeat(np.diag([4.0, 1.0])[None], 4, axis=0)
    separation = diagnostics.factor_separation(means, covariances, component_factors)
    assert separation == pytest.approx([3.0, 0.5])                           # 6 / 2 along a std of 2; 0.5 / 1
    every, by_factor = diagnostics.per_factor_accuracy(np.array([[0, 1], [1, 1], [0, 1]]),
                                                       np.array([[0, 1], [1, 0], [1, 0]]))
    assert every == pytest.approx(1 / 3) and by_factor.tolist() == pytest.approx([2 / 3, 1 / 3])


def test_prior_diagnostics_code_fit_tells_a_wider_code_space_from_codes_outside_their_components():
    diagnostics = _load("prior_diagnostics")
    rng = np.random.RandomState(0)
    means = np.array([[0.0] * 8, [10.0] * 8])
    covariances = np.stack([np.eye(8), 4 * np.eye(8)])
    component = np.repeat([0, 1], 2000)
    std = np.where(component == 1, 2.0, 1.0)[:, None]                       # each component's own width
    own = means[component] + std * rng.randn(4000, 8)
    fit = diagnostics.code_fit(own, means, covariances, component)
    assert fit["gaussian"] == pytest.approx(7.344, abs=0.01)                # chi-square median, 8 dof
    assert fit["mahalanobis2"] == pytest.approx(fit["gaussian"], rel=0.05)
    assert fit["log_det"] == pytest.approx(4 * np.log(4.0))                 # the median of 0 and 8 ln 4
    wide = diagnostics.code_fit(means[component] + 2 * (own - means[component]), means, covariances, component)
    assert wide["mahalanobis2"] == pytest.approx(4 * fit["mahalanobis2"], rel=0.01)
    assert wide["log_density"] < fit["log_density"] - 10


def test_prior_diagnostics_probe_reads_a_factor_on_a_circle_the_mixture_would_need_a_curve_for():
    diagnostics = _load("prior_diagnostics")
    rng = np.random.default_rng(0)

    def codes(n):
        # factor 0: five sectors of a circle in dims 0-1; factor 1: the sign of dim 2; dim 3 noise
        angle = rng.uniform(0, 2 * np.pi, n)
        sign = rng.integers(0, 2, n)
        z = np.stack([np.cos(angle), np.sin(angle), (2 * sign - 1) * rng.uniform(0.5, 1, n), rng.normal(size=n)], 1)
        return z, np.stack([(angle // (2 * np.pi / 5)).astype(int), sign], 1)

    train, train_factors = codes(2000)
    test, test_factors = codes(500)
    predicted = diagnostics.probe_predictions(train, train_factors, test, random_state=0)
    assert predicted.shape == (500, 2)
    assert (predicted == test_factors).mean(axis=0).min() > 0.9
    noise = diagnostics.probe_predictions(rng.normal(size=(2000, 4)), train_factors, test, random_state=0)
    assert (noise[:, 0] == test_factors[:, 0]).mean() < 0.35                  # chance: 0.2
    assert (diagnostics.probe_predictions(train, train_factors, test, random_state=0) == predicted).all()


def test_prior_diagnostics_accuracy_by_class_splits_each_factors_accuracy_by_one_factors_class():
    diagnostics = _load("prior_diagnostics")
    expected = np.array([[0, 1], [0, 2], [1, 1], [1, 2], [1, 0]])
    predicted = np.array([[0, 1], [0, 0], [1, 1], [0, 2], [1, 1]])
    rows = diagnostics.accuracy_by_class(predicted, expected, expected[:, 0])
    assert [c for c, _ in rows] == [0, 1]
    np.testing.assert_allclose(rows[0][1], [1.0, 0.5])
    np.testing.assert_allclose(rows[1][1], [2 / 3, 2 / 3])
    # grouped by another class per row (a relation's input's, where the relation moved that factor)
    rows = diagnostics.accuracy_by_class(predicted, expected, np.array([2, 2, 2, 0, 0]))
    assert [c for c, _ in rows] == [0, 2]
    np.testing.assert_allclose(rows[0][1], [0.5, 0.5])
    np.testing.assert_allclose(rows[1][1], [1.0, 2 / 3])


def test_prior_diagnostics_reports_a_trained_mae_trial(tiny_mae_trial, capsys):
    diagnostics = _load("prior_diagnostics")
    diagnostics.main([str(tiny_mae_trial), "--codes", "40", "--samples", "270", "--probe", "60"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{tiny_mae_trial}: mae on dsprites:v2, seed 0, 27 components"
    number = r"(\d\.\d{3})"
    factors = rf"shape {number}, posX {number}, posY {number}"
    read = re.match(rf"^  test codes \(40\) read by the prior: all {number}; {factors}$", printed[1])
    labelled = next(re.match(rf"^  labelled codes \((\d+), the fit's\) read by the prior: all {number}; {factors}$",
                             line) for line in printed if line.startswith("  labelled codes"))
    assert labelled and int(labelled[1]) == 100                              # the fixture's tau
    back = next(re.match(rf"^  prior samples \(270\) classified back: all {number}; {factors}$", line)
                for line in printed if "classified back" in line)
    for match in (read, back, labelled):
        assert match
        values = list(map(float, match.groups()))[-4:]                 # all, shape, posX, posY
        assert values[0] <= min(values[1:]) <= 1
    # dsprites:v2 keeps scale and orientation as nuisance factors: one line each, six groups of classes
    assert [line.split(" class:")[0].strip() for line in printed if " class:" in line] == [
        "all right by scale", "all right by orientation", "by shape", "by shape",     # the prior's, the probe's
        *["by input's shape"] * 5]                                                 # each relation's outputs
    probe = next(re.match(rf"^  test codes read by an MLP probe \(60 training codes\): all {number}; {factors}$", line)
                 for line in printed if "MLP probe" in line)
    assert probe and all(0 <= float(value) <= 1 for value in probe.groups())
    by_shape = [line for line in printed if line.startswith("    by shape class: ")]
    assert all(re.fullmatch(rf"    by shape class: (\d: {factors}(; )?)+", line) for line in by_shape)
    by_input = [line for line in printed if line.startswith("      by input's shape class: ")]
    assert len(by_input) == 5 and all(re.fullmatch(rf"      by input's shape class: (\d: {factors}(; )?)+", line)
                                      for line in by_input)
    # every component gets as many prior samples and each shape as many components: the classes' mean is the whole
    for index, line in enumerate(printed):
        if line.startswith("      by input's shape class: "):
            whole = [float(v) for v in re.findall(r"(?:shape|posX|posY) (\d\.\d{3})", printed[index - 1])]
            split = np.array([float(v) for v in re.findall(r"(?:shape|posX|posY) (\d\.\d{3})", line)]).reshape(-1, 3)
            np.testing.assert_allclose(split.mean(axis=0), whole, atol=2e-3)
    assert printed[[i for i, line in enumerate(printed) if "orientation class" in line][0]].count(",") == 5
    assert any(line.startswith("  Mahalanobis distance between neighbouring values' components: shape ")
               for line in printed)
    fit = re.match(r"^  test codes in their most likely component \(medians\): squared Mahalanobis distance (\S+) "
                   r"\(the Gaussian's own samples: (\S+)\), log det (\S+), log density (\S+) \(accepted at alpha 0.9 "
                   r"from -0.105\)$", printed[2])
    assert fit and float(fit[2]) == pytest.approx(23.3, abs=0.05)             # 3 partitions x 8 dims
    assert float(fit[1]) >= 0 and all(math.isfinite(float(value)) for value in fit.groups())
    relations = [line.split()[0] for line in printed if line.startswith("    ") and " class:" not in line]
    assert relations == ["move_left", "move_right", "move_up", "move_down", "change_shape"]
    readings = re.match(r"^  mean over relations: every factor right (\S+), the moved factor right (\S+) ", printed[-1])
    assert readings and 0 <= float(readings[1]) <= float(readings[2]) <= 1


def test_prior_diagnostics_refuses_a_model_without_a_mixture_prior(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "data"))
    out = _train(tmp_path / "betavae", ["model=betavae", "dataset=dsprites:v2", "data_images=300", "steps=2",
                                        "eval_every=2", "eval_points=30", "tau=100", "batch_size=8", "device=cpu"])
    with pytest.raises(SystemExit, match="betavae has no fitted mixture prior"):
        _load("prior_diagnostics").main([str(out)])
    with pytest.raises(SystemExit, match="betavae has no fitted mixture prior to diagnose$"):
        _load("prior_diagnostics").main([str(out), "--probe", "40"])


def test_prior_diagnostics_reads_a_trial_still_in_its_warm_up_with_the_probe_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "data"))
    out = _train(tmp_path / "absae", ["model=absae", "dataset=dsprites:v2", "data_images=300", "steps=2",
                                      "warmup_steps=10", "eval_every=2", "eval_points=30", "tau=100",
                                      "tau_sampling=stratified", "batch_size=8", "device=cpu", "mlp_hidden=16"])
    diagnostics = _load("prior_diagnostics")
    with pytest.raises(SystemExit, match=r"absae has no fitted mixture prior to diagnose \(still in its warm-up"):
        diagnostics.main([str(out)])
    diagnostics.main([str(out), "--codes", "30", "--probe", "60"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{out}: absae on dsprites:v2, seed 0, no mixture prior yet (warm-up); 30 test codes"
    number = r"(\d\.\d{3})"
    assert re.fullmatch(rf"  test codes read by an MLP probe \(60 training codes\): all {number}; shape {number}, "
                        rf"posX {number}, posY {number}", printed[1])
    assert printed[2].startswith("    by shape class: 0: shape ") and len(printed) == 3


def test_supervised_probe_scores_each_factor_head_on_its_own_slice_of_the_logits():
    from trainables.models.factored import predictor_cross_entropy       # the probe's training loss

    probe = _load("supervised_probe")
    logits = torch.tensor([[2.0, 0.0, 0.0, 1.0],      # factor 0 (2 values) -> 0; factor 1 (2 values) -> 1
                           [0.0, 3.0, 5.0, 0.0],      # -> 1; -> 0
                           [1.0, 0.0, 0.0, 2.0]])     # -> 0; -> 1
    factors = torch.tensor([[0, 1], [1, 1], [1, 1]])
    assert probe.factor_accuracies(logits, factors, (2, 2)) == pytest.approx([2 / 3, 2 / 3])
    assert float(predictor_cross_entropy(logits, factors, (2, 2))) > 0


def test_supervised_probe_learns_the_positions_from_the_labelled_images(tmp_path, capsys):
    from trainables.data import generate_file

    path = generate_file("dsprites", tmp_path / "sprites.npz", max_images=3000, seed=3)
    reports = _load("supervised_probe").main(["dsprites:v2", "--data-path", str(path), "--tau", "300",
                                             "--steps", "120", "--batch-size", "32", "--test", "200"])
    out = capsys.readouterr().out
    assert "dsprites:v2: tau 300" in out and "chance: shape 0.33, posX 0.33, posY 0.33" in out
    assert len(reports) == 4 and all(len(r) == 3 for r in reports)
    shape, pos_x, pos_y = reports[-1]
    assert pos_x > 0.8 and pos_y > 0.8                  # three position bins far apart: chance is 0.33


def test_label_spreading_carries_labels_through_the_unlabelled_codes_that_nearest_labelled_ones_miss():
    spreading = _load("label_spreading")
    rng = np.random.default_rng(0)
    # two tight, far-apart clusters, one a class; class 0 has 2 labelled codes, class 1 has 18, so the
    # 10 nearest labelled codes of any code are mostly class 1, while the unlabelled codes tie each
    # cluster's codes to its own labelled ones
    def cluster(n, label):
        return rng.normal([5.0 * label, 0.0], 0.3, (n, 2)), np.full(n, label)
    (few, few_labels), (many, many_labels) = cluster(2, 0), cluster(18, 1)
    labelled, labels = np.concatenate([few, many]), np.concatenate([few_labels, many_labels])
    unlabelled = np.concatenate([cluster(200, 0)[0], cluster(200, 1)[0]])
    (test0, y0), (test1, y1) = cluster(100, 0), cluster(100, 1)
    test, test_labels = np.concatenate([test0, test1]), np.concatenate([y0, y1])
    alone, spread, unreached = spreading.spread_accuracy(labelled, labels, unlabelled, test, test_labels)
    assert alone == pytest.approx(0.5, abs=0.05) and spread > 0.95 and unreached == 0
    assert spreading.spread_accuracy(labelled, labels, unlabelled, test, test_labels) == (alone, spread, unreached)
    # test codes in a cluster no labelled code is tied to are not reached, and are counted
    stray = rng.normal([0.0, 50.0], 0.3, (100, 2))
    _, spread, unreached = spreading.spread_accuracy(labelled, labels, np.concatenate([unlabelled, stray]),
                                                     np.concatenate([test, stray[:50]]), np.concatenate([test_labels, np.ones(50, int)]))
    assert unreached == pytest.approx(50 / 250) and spread == pytest.approx(200 / 250, abs=0.01)


def test_label_spreading_scores_a_trials_own_spread_labels(tmp_path, monkeypatch, capsys):
    from trainables.loop import load_trial, unlabelled_indices

    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "data"))
    sets = ["model=mae", "dataset=dsprites:v2", "data_images=600", "steps=6", "warmup_steps=4", "eval_every=6",
            "eval_points=60", "tau=100", "batch_size=16", "mlp_hidden=32", "device=cpu", "label_weight=1",
            "label_classifier=linear", "label_batch_size=8", "pseudo_labels=shape", "pseudo_label_images=200",
            "pseudo_label_confidence=0"]
    trial = _train(tmp_path / "mae", sets)
    _load("label_spreading").main([str(trial), "--unlabelled", "100", "--test", "40"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2] == "  the trial's own spread labels (pseudo_labels='shape', 200 unlabelled training images):"
    cfg, model, dataset = load_trial(trial)
    truth = dataset.factors[unlabelled_indices(dataset, cfg, 200), 0]
    kept = model.pseudo_labels()[:, 0] >= 0
    right = (model.pseudo_labels()[kept, 0] == truth[kept]).float().mean()
    assert printed[-1] == f"  shape        kept {float(kept.float().mean()):.3f}, right {float(right):.3f}"


def test_label_spreading_reports_a_trained_mae_trial(tiny_mae_trial, capsys):
    _load("label_spreading").main([str(tiny_mae_trial), "--unlabelled", "200", "--test", "40"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (f"{tiny_mae_trial}: mae on dsprites:v2, seed 0; 100 labelled, 200 unlabelled training and "
                          "40 test images, 10 neighbours")
    pattern = re.compile(r"^  (\S+)\s+labelled alone (\d\.\d{3}), spread over the unlabelled (\d\.\d{3}) "
                         r"\((\d\.\d{3}) of the test codes unreached\), every training code labelled (\d\.\d{3})$")
    rows = {m[1]: m.groups()[1:] for m in map(pattern.match, printed[1:]) if m}
    assert list(rows) == ["shape", "posX", "posY"] and len(printed) == 4
    assert all(0 <= float(value) <= 1 for values in rows.values() for value in values)


def test_relation_depth_follows_a_trials_chain_and_reads_its_own_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEAKDIS_DATA", str(tmp_path / "data"))
    out = _train(tmp_path / "absae", ["model=absae", "dataset=dsprites:v2", "data_images=300", "steps=8",
                                      "warmup_steps=4", "eval_every=8", "eval_points=40", "tau=100",
                                      "tau_sampling=stratified", "batch_size=8", "device=cpu", "mlp_hidden=16",
                                      "seed=3"])
    depth = _load("relation_depth")
    assert depth.main([str(out), "--samples", "50", "--depth", "4", "--final-iterations", "8"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{out}: absae on dsprites:v2, seed 3, step 8, 27 components")
    rows = [line.split() for line in printed if line.split() and line.split()[0].isdigit()]
    assert [int(row[0]) for row in rows] == [1, 2, 3, 4] * 2
    for row in rows:
        accuracy, error, mahalanobis2, resampled = (float(v) for v in row[1:5])
        assert 0 <= accuracy <= 1 and 0 <= resampled <= 1 and mahalanobis2 >= 0
        assert 0 <= error <= 1 or math.isnan(error)
    # the trial's own columns, read again from its checkpoint, are the numbers its evaluation wrote
    metrics = json.loads((out / "metrics.json").read_text())
    trained = [line for line in printed if "relation_accuracy (combination)" in line][0]
    expected = " / ".join(f"{metrics[f'relation_accuracy_d{d}_a0']:.3f}" for d in (1, 5, 10))
    assert trained.endswith(expected)
    assert any("8 ReL iterations on the final prior" in line for line in printed)
    assert any(line.startswith("after 8 ReL iterations") for line in printed)

    plain = _train(tmp_path / "betavae", ["model=betavae", "dataset=dsprites:v2", "data_images=300", "steps=2",
                                          "eval_every=2", "eval_points=30", "tau=100", "batch_size=8", "device=cpu"])
    with pytest.raises(SystemExit, match="betavae has no relational learner"):
        depth.main([str(plain)])
    warming = _train(tmp_path / "warming", ["model=absae", "dataset=dsprites:v2", "data_images=300", "steps=2",
                                            "warmup_steps=10", "eval_every=2", "eval_points=30", "tau=100",
                                            "tau_sampling=stratified", "batch_size=8", "device=cpu", "mlp_hidden=16"])
    with pytest.raises(SystemExit, match=r"absae has no fitted mixture prior \(still in its warm-up at step 2\)"):
        depth.main([str(warming)])
