"""Pareto fronts with known non-dominated sets (ties included), hypervolume, seed aggregation."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis import aggregate_seeds, hypervolume, pareto_front, seed_aggregated_front
from analysis.pareto import non_dominated_mask


def _trials() -> pd.DataFrame:
    # recon_error minimised, dci maximised. For absae the front is a (0.1, 0.5), b (0.2, 0.8) and its
    # exact duplicate b2, d (0.3, 0.9); c (0.25, 0.7) is dominated by b, e (0.3, 0.85) by d,
    # f (0.1, 0.4) by a (same recon, lower dci). betavae is its own group: g dominates h.
    rows = [
        ("a", "absae", 0.10, 0.50), ("b", "absae", 0.20, 0.80), ("b2", "absae", 0.20, 0.80),
        ("c", "absae", 0.25, 0.70), ("d", "absae", 0.30, 0.90), ("e", "absae", 0.30, 0.85),
        ("f", "absae", 0.10, 0.40), ("g", "betavae", 0.50, 0.60), ("h", "betavae", 0.60, 0.55),
        ("nan", "absae", np.nan, 0.99),
    ]
    return pd.DataFrame(rows, columns=["trial_id", "model", "recon_error", "dci"])


def test_front_per_model_keeps_ties_and_drops_dominated_rows():
    front = pareto_front(_trials())
    assert list(front["trial_id"]) == ["a", "b", "b2", "d", "g"]
    assert list(front.index) == [0, 1, 2, 4, 7]  # the input's index and order


def test_front_without_groups_and_with_three_objectives():
    df = _trials()
    assert list(pareto_front(df, by=None)["trial_id"]) == ["a", "b", "b2", "d"]
    df["mig"] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0]
    front = pareto_front(df, {"recon_error": "min", "dci": "max", "mig": "max"}, by=None)
    assert list(front["trial_id"]) == ["a", "b", "b2", "d", "f"]  # f now wins on mig


def test_front_matches_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(60, 3)).astype(float)  # small integers: many ties
    expected = [
        not any(np.all(other <= point) and np.any(other < point) for other in points)
        for point in points
    ]
    assert non_dominated_mask(points).tolist() == expected


def test_front_validates_its_arguments():
    with pytest.raises(ValueError, match="sense 'up' is invalid"):
        pareto_front(_trials(), {"dci": "up"})
    with pytest.raises(ValueError, match="column 'mig' is not in the DataFrame"):
        pareto_front(_trials(), {"mig": "max"})


def test_hypervolume_two_and_three_objectives():
    front = pd.DataFrame({"recon_error": [0.1, 0.2, 0.3], "dci": [0.5, 0.8, 0.9]})
    # against (1.0, 0.0): union of boxes [x, 1] x [0, y]
    expected = 0.9 * 0.5 + 0.8 * 0.3 + 0.7 * 0.1
    assert hypervolume(front, {"recon_error": 1.0, "dci": 0.0}) == pytest.approx(expected)
    # dominated and duplicate points add nothing; points beyond the reference add nothing
    bigger = pd.concat([front, pd.DataFrame({"recon_error": [0.3, 0.2, 1.5], "dci": [0.7, 0.8, 1.0]})])
    assert hypervolume(bigger, [1.0, 0.0]) == pytest.approx(expected)
    cubes = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    minimise = {"x": "min", "y": "min", "z": "min"}
    # three unit-offset corners in [0, 2]^3: 3 * 4 - 3 * 2 + 1 = 7 (inclusion-exclusion)
    assert hypervolume(cubes, [2.0, 2.0, 2.0], minimise) == pytest.approx(7.0)
    assert hypervolume(np.empty((0, 3)), [2.0, 2.0, 2.0], minimise) == 0.0
    with pytest.raises(ValueError, match="reference has no value for objective 'dci'"):
        hypervolume(front, {"recon_error": 1.0})


def _seeded() -> pd.DataFrame:
    rows = []
    for (model, beta), seed in itertools.product([("absae", 1.0), ("absae", 4.0), ("betavae", 1.0)], range(3)):
        base = {"absae": 0.2, "betavae": 0.5}[model] + 0.01 * beta
        rows.append({"trial_id": f"{model}-{beta}-{seed}", "model": model, "dataset": "dsprites:v2", "beta": beta,
                     "seed": seed, "recon_error": base + 0.01 * seed, "dci": 0.5 + 0.1 * beta / 4 + 0.1 * seed})
    frame = pd.DataFrame(rows)
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


def test_aggregate_seeds_mean_and_student_t_interval():
    table = aggregate_seeds(_seeded(), metrics=["recon_error", "dci"])
    assert list(table.columns[:3]) == ["model", "dataset", "beta"]
    assert len(table) == 3 and (table["n_seeds"] == 3).all()
    row = table[(table["model"] == "absae") & (table["beta"] == 4.0)].iloc[0]
    assert row["dci"] == pytest.approx(0.7)  # mean of 0.6, 0.7, 0.8
    assert row["dci_std"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / np.sqrt(3)  # t_{0.975, 2}
    assert row["dci_ci_low"] == pytest.approx(0.7 - half)
    assert row["dci_ci_high"] == pytest.approx(0.7 + half)
    single = aggregate_seeds(_seeded().iloc[:1], metrics=["dci"])
    assert single.loc[0, "dci_ci_low"] == single.loc[0, "dci_ci_high"] == single.loc[0, "dci"]


def test_front_before_and_after_seed_aggregation():
    df = _seeded()
    before = seed_aggregated_front(df, aggregate="before")
    # absae beta 1: (0.22, 0.625); beta 4: (0.25, 0.7): neither dominates; betavae alone in its group
    assert sorted(zip(before["model"], before["beta"])) == [("absae", 1.0), ("absae", 4.0), ("betavae", 1.0)]
    assert before.set_index(["model", "beta"]).loc[("absae", 4.0), "recon_error"] == pytest.approx(0.25)
    after = seed_aggregated_front(df, aggregate="after")
    # absae trials: beta 1 -> (0.21, 0.525), (0.22, 0.625), (0.23, 0.725), all on the front;
    # beta 4 -> (0.24, 0.6) and (0.25, 0.7) are dominated, (0.26, 0.8) is on it. betavae: all three.
    got = after.set_index(["model", "beta"])["front_trials"].to_dict()
    assert got == {("absae", 1.0): 3, ("absae", 4.0): 1, ("betavae", 1.0): 3}
    assert after.set_index(["model", "beta"]).loc[("absae", 1.0), "n_seeds"] == 3  # all seeds averaged
    with pytest.raises(ValueError, match="aggregate='sideways' is invalid"):
        seed_aggregated_front(df, aggregate="sideways")
