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
