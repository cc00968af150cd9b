"""UDR (Duan et al. 2020) on synthetic trials: permuted / sign-flipped copies of one representation
agree, unrelated ones do not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.udr import informative_latents, pairwise_udr, similarity_matrix, udr, udr_vs_metric


def _trials(rng):
    base = rng.randn(500, 4)
    reps = {}
    for seed in range(3):   # consistent group: the same latents, permuted, sign-flipped, rescaled
        order = rng.permutation(4)
        reps[f"good{seed}"] = (base[:, order] * rng.choice([-1.0, 1.0], 4) * rng.uniform(0.5, 2, 4)
                               + 0.05 * rng.randn(500, 4), None)
    for seed in range(3):   # unrelated group: each trial entangles the latents with its own rotation
        rotation = np.linalg.qr(rng.randn(4, 4))[0]
        reps[f"bad{seed}"] = (rng.randn(500, 4) @ rotation, None)
    return reps


def test_udr_is_high_for_consistent_seeds_and_low_for_unrelated_ones():
    reps = _trials(np.random.RandomState(0))
    results = pd.DataFrame({"trial_id": list(reps), "status": "finished",
                            "beta": [1.0] * 3 + [4.0] * 3, "seed": [0, 1, 2] * 2, "dci": np.linspace(1, 0, 6)})
    frame = udr(results, representations=reps)
    scores = frame.set_index("trial_id")["udr"]
    assert scores[[f"good{s}" for s in range(3)]].min() > 0.9
    assert scores[[f"bad{s}" for s in range(3)]].max() < 0.5
    assert set(frame.loc[frame["udr_rank"] <= 3, "trial_id"]) == {"good0", "good1", "good2"}
    assert udr_vs_metric(results, frame, "dci")["spearman"] > 0.5
    lasso = udr(results, representations=reps, method="lasso").set_index("trial_id")["udr"]
    assert lasso[["good0", "good1"]].min() > lasso[["bad0", "bad1"]].max()


def test_pairwise_udr_follows_the_equation_on_a_hand_made_matrix():
    r = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 0.0]])
    informative = np.array([True, True, False])
    columns = 0.9 ** 2 / 1.1 + 0.8 ** 2 / 0.9
    rows = 0.9 ** 2 / 1.0 + 0.8 ** 2 / 1.0
    assert pairwise_udr(r, informative, informative) == pytest.approx((columns + rows) / 4)
    assert pairwise_udr(np.eye(3), np.ones(3, bool), np.ones(3, bool)) == pytest.approx(1.0)


def test_informative_latents_and_similarity_helpers():
    rng = np.random.RandomState(1)
    codes = np.c_[rng.randn(200, 2), 1e-4 * rng.randn(200)]
    logvar = np.c_[np.full((200, 2), -2.0), np.zeros(200)]
    assert informative_latents(codes, logvar).tolist() == [True, True, False]
    assert informative_latents(codes).tolist() == [True, True, False]
    r = similarity_matrix(codes, codes[:, ::-1] ** 3)
    assert r[0, 2] == pytest.approx(1.0) and r[2, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="spearman or lasso"):
        similarity_matrix(codes, codes, method="cosine")


def _seeded_run(tmp_path):
    """A hand-written run of four real (tiny) beta-VAE trials: beta 1 and 8, seeds 0 and 1, each with the
    checkpoint that `train` wrote, laid out as Tune lays out a sweep."""
    import itertools
    import json
    import shutil

    from trainables.config import TrialConfig
    from trainables.loop import train

    run = tmp_path / "seeded"
    run.mkdir()
    states = []
    for index, (beta, seed) in enumerate(itertools.product([1.0, 8.0], [0, 1])):
        config = {"model": "betavae", "dataset": "dsprites:v2", "data_images": 600, "steps": 30, "batch_size": 32,
                  "latent_dim": 4, "eval_every": 30, "eval_points": 200, "beta": beta, "seed": seed, "device": "cpu"}
        result = train(TrialConfig.from_dict(config), out_dir=tmp_path / f"train{index}")
        trial_id, logdir = f"udr00_{index:05d}", f"trial_{index}_beta={beta},seed={seed}"
        (run / logdir).mkdir()
        shutil.copytree(tmp_path / f"train{index}" / "checkpoint", run / logdir / "checkpoint_000000")
        (run / logdir / "params.json").write_text(json.dumps(config))
        report = {**result.metrics, "trial_id": trial_id, "training_iteration": 1, "config": config,
                  "checkpoint_dir_name": "checkpoint_000000"}
        (run / logdir / "result.json").write_text(json.dumps(report) + "\n")
        states.append([json.dumps({"trial_id": trial_id, "status": "TERMINATED", "config": config,
                                   "relative_logdir": logdir}), json.dumps({"error_filename": None, "last_result": {}})])
    (run / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": states}))
    return run


def test_analyze_ranks_trials_that_differ_in_seed_by_udr(tmp_path, capsys):
    from analysis.report import analyze
    from search.cli import main

    run = _seeded_run(tmp_path)
    output = analyze(run, tmp_path / "out", images=False, formats=("png",))
    table = pd.read_csv(tmp_path / "out" / "udr.csv")
    assert len(table) == 4 and table["udr"].between(0, 1).all()
    assert list(table["udr_rank"]) == sorted(table["udr_rank"])          # best first
    # the two seeds of one setting score each other: their UDRs are equal (the median of one pair)
    for _, group in table.groupby("beta"):
        assert group["udr"].nunique() == 1
    assert output.udr is not None and -1 <= output.udr_correlation["spearman"] <= 1
    assert output.udr_correlation["trials"] == 4
    # Duan et al. compare UDR with DCI's disentanglement score; MIG beside it
    assert set(output.udr_correlations) == {"dci", "dci_disentanglement", "mig"}
    assert output.udr_correlations["dci"] == output.udr_correlation
    assert {"dci", "dci_disentanglement", "mig"} <= set(table.columns)
    assert (tmp_path / "out" / "figures" / "udr_vs_dci.png").stat().st_size > 0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "<h2 id='udr'>UDR ranking</h2>" in report and "Spearman correlation of UDR and DCI over 4 trials" in report
    assert not any(note.startswith("UDR") for note in output.missing)

    assert main(["analyze", str(run), "--no-images", "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    assert "UDR ranking beside DCI's" in printed and "udr: Spearman correlation of UDR and DCI over 4 trials" in printed
    assert "; with DCI disentanglement (Duan et al.'s) " in printed
    assert main(["analyze", str(run), "--no-images", "--formats", "png", "--no-udr", "--out", str(tmp_path / "b")]) == 0
    assert "missing: UDR ranking: skipped (--no-udr)" in capsys.readouterr().err
    assert not (tmp_path / "b" / "udr.csv").exists()


def test_udr_sentence_names_each_metric_with_its_correlation():
    from analysis.report import udr_sentence

    correlations = {"dci": {"spearman": 0.27, "trials": 9.0}, "dci_disentanglement": {"spearman": 0.61, "trials": 9.0},
                    "mig": {"spearman": 0.433, "trials": 9.0}}
    assert udr_sentence(correlations) == ("Spearman correlation of UDR and DCI over 9 trials: 0.270; with "
                                          "DCI disentanglement (Duan et al.'s) 0.610, MIG 0.433")
    assert udr_sentence({"dci": correlations["dci"]}) == "Spearman correlation of UDR and DCI over 9 trials: 0.270"
