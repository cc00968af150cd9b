"""Searchers driven in-process (no Ray session): arms in turn, seed repeats, what Optuna is told,
determinism, save/restore, grids."""
from __future__ import annotations

import copy

import optuna
import pytest
from ray.tune.search import Searcher

from search.schema import parse_sweep_config
from search.space import (
    GridSearcher,
    SweepSearcher,
    build_searcher,
    grid_points,
    mean_objectives,
    total_trials,
    trial_dict,
)
from trainables.config import TrialConfig

BASE = {
    "dataset": "dsprites:v2",
    "fixed": {"steps": 40, "eval_every": 20, "tau": 100},
    "models": {
        "absae": {"fixed": {"gamma": 2.0}, "space": {"beta": {"loguniform": [0.1, 10.0]}}},
        "betavae": {"space": {"beta": {"uniform": [1.0, 16.0]}}},
    },
    "space": {"latent_dim": {"int": [4, 12]}, "lr": {"loguniform": [1e-4, 1e-3]}},
    "objectives": {"dci": "max", "recon_error": "min"},
    "num_samples": 6,
    "seeds": [3, 4],
}


def config(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return parse_sweep_config(data, source="t.yaml")


def draw(searcher, n, prefix="t"):
    return [searcher.suggest(f"{prefix}{i}") for i in range(n)]


def test_trial_dict_is_a_valid_flat_trial_config():
    cfg = config()
    values = trial_dict(cfg, "absae", "dsprites:v2", {"beta": 0.5, "latent_dim": 6, "lr": 2e-4}, seed=7)
    assert values == {"steps": 40, "eval_every": 20, "tau": 100, "gamma": 2.0, "beta": 0.5, "latent_dim": 6,
                      "lr": 2e-4, "model": "absae", "dataset": "dsprites:v2", "seed": 7, "data_seed": 0}
    TrialConfig.from_dict(values)


def test_families_alternate_and_each_proposal_runs_once_per_seed():
    cfg = config()
    searcher = build_searcher(cfg)
    trials = draw(searcher, 8)
    assert [t["model"] for t in trials] == ["absae", "absae", "betavae", "betavae"] * 2
    assert [t["seed"] for t in trials] == [3, 4] * 4
    for first, second in zip(trials[::2], trials[1::2]):
        assert {k: v for k, v in first.items() if k != "seed"} == {k: v for k, v in second.items() if k != "seed"}
    for trial in trials:
        TrialConfig.from_dict(trial)
        assert 4 <= trial["latent_dim"] <= 12 and 1e-4 <= trial["lr"] <= 1e-3
        low, high = (0.1, 10.0) if trial["model"] == "absae" else (1.0, 16.0)
        assert low <= trial["beta"] <= high
        assert trial["gamma"] == 2.0 if trial["model"] == "absae" else "gamma" not in trial
    assert total_trials(cfg) == 12


def test_optuna_is_told_the_mean_over_seeds_and_failures():
    cfg = config()
    searcher = build_searcher(cfg)
    draw(searcher, 4)  # t0, t1: absae proposal; t2, t3: betavae proposal
    searcher.on_trial_complete("t0", {"dci": 0.2, "recon_error": 0.05})
    study = searcher.inners[("absae", "dsprites:v2")]._ot_study
    assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # waits for the second seed
    searcher.on_trial_complete("t1", {"dci": 0.6, "recon_error": 0.03})
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert study.trials[0].values == pytest.approx([0.4, 0.04])
    # one seed failed: the other one's values; both failed: a failed Optuna trial
    searcher.on_trial_complete("t2", None, error=True)
    searcher.on_trial_complete("t3", {"dci": 0.9, "recon_error": 0.1})
    vae_study = searcher.inners[("betavae", "dsprites:v2")]._ot_study
    assert vae_study.trials[0].values == pytest.approx([0.9, 0.1])
    draw(searcher, 2, prefix="u")
    searcher.on_trial_complete("u0", {"dci": 0.9, "recon_error": 0.1}, error=True)
    searcher.on_trial_complete("u1", None, error=True)
    assert study.trials[1].state == optuna.trial.TrialState.FAIL


def test_mean_objectives_ignores_non_finite_values():
    results = [{"dci": 0.2, "recon_error": float("nan")}, {"dci": 0.4, "recon_error": 0.1}]
    assert mean_objectives(results, ["dci", "recon_error"]) == pytest.approx({"dci": 0.3, "recon_error": 0.1})
    assert mean_objectives([{"dci": float("nan")}], ["dci"]) is None
    assert mean_objectives([], ["dci"]) is None


def run_to_end(searcher, n):
    """Ask and complete n trials with a deterministic fake objective; returns the trials."""
    trials = []
    for i in range(n):
        trial = searcher.suggest(f"t{i}")
        trials.append(trial)
        searcher.on_trial_complete(f"t{i}", {"dci": trial["beta"] / 16 + trial["seed"] / 100,
                                              "recon_error": trial["lr"] * trial["latent_dim"]})
    return trials


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_same_seed_same_proposals(sampler):
    settings = {"kind": "optuna", "sampler": sampler, "seed": 5, "n_startup_trials": 2} if sampler == "tpe" else {
        "kind": "optuna", "sampler": sampler, "seed": 5}
    first = run_to_end(build_searcher(config(searcher=settings)), 16)
    second = run_to_end(build_searcher(config(searcher=settings)), 16)
    other = run_to_end(build_searcher(config(searcher={**settings, "seed": 6})), 16)
    assert first == second
    assert first != other
    inner = build_searcher(config(searcher=settings)).inners[("absae", "dsprites:v2")]
    expected = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
                "random": optuna.samplers.RandomSampler}[sampler]
    assert isinstance(inner._ot_study.sampler, expected)


def test_save_and_restore_continue_the_same_sequence(tmp_path):
    cfg = config(searcher={"kind": "optuna", "sampler": "tpe", "seed": 1, "n_startup_trials": 2})
    searcher = build_searcher(cfg)
    run_to_end(searcher, 9)                    # stops mid-proposal: t8 is the first seed of one
    path = tmp_path / "searcher.pkl"
    searcher.save(str(path))
    restored = build_searcher(cfg)
    restored.restore(str(path))
    tail_original = [searcher.suggest(f"x{i}") for i in range(5)]
    tail_restored = [restored.suggest(f"x{i}") for i in range(5)]
    assert tail_original == tail_restored
    assert tail_restored[0]["seed"] == 4         # the open proposal's second seed comes first


def test_seed_as_a_dimension_means_one_trial_per_proposal():
    cfg = config(seeds=[0], space={**BASE["space"], "seed": {"int": [0, 100]}})
    searcher = build_searcher(cfg)
    trials = draw(searcher, 4)
    assert [t["model"] for t in trials] == ["absae", "betavae", "absae", "betavae"]
    assert all(0 <= t["seed"] <= 100 for t in trials)
    assert total_trials(cfg) == 6


def test_dataset_versions_are_arms_of_their_own():
    # tau >= 135: dsprites:v3's AbsAE prior has 135 components, each needing a labelled sample
    cfg = config(dataset=["dsprites:v2", "dsprites:v3"], seeds=[0], fixed={"steps": 40, "eval_every": 20, "tau": 200})
    trials = draw(build_searcher(cfg), 4)
    assert [(t["model"], t["dataset"]) for t in trials] == [
        ("absae", "dsprites:v2"), ("absae", "dsprites:v3"), ("betavae", "dsprites:v2"), ("betavae", "dsprites:v3")]


def test_single_objective_optuna_gets_a_scalar_metric():
    cfg = config(objectives={"dci": "max"}, scheduler={"kind": "asha"})
    searcher = build_searcher(cfg)
    inner = searcher.inners[("absae", "dsprites:v2")]
    assert inner.metric == "dci" and inner.mode == "max"
    assert searcher.metric == ["dci"]
    draw(searcher, 2)
    searcher.on_trial_complete("t0", {"dci": 0.5, "recon_error": 1.0})
    searcher.on_trial_complete("t1", {"dci": 0.7, "recon_error": 1.0})
    assert inner._ot_study.trials[0].value == pytest.approx(0.6)


def test_grid_points_order_and_finish():
    cfg = config(searcher={"kind": "grid"}, num_samples=None, seeds=[0, 1],
                 space={"latent_dim": {"grid": [6, 10]}},
                 models={"absae": {"space": {"beta": {"grid": [0.1, 1.0]}}}, "betavae": {}})
    points = grid_points(cfg)
    assert [(p["model"], p["latent_dim"], p.get("beta"), p["seed"]) for p in points] == [
        ("absae", 6, 0.1, 0), ("absae", 6, 0.1, 1), ("absae", 6, 1.0, 0), ("absae", 6, 1.0, 1),
        ("absae", 10, 0.1, 0), ("absae", 10, 0.1, 1), ("absae", 10, 1.0, 0), ("absae", 10, 1.0, 1),
        ("betavae", 6, None, 0), ("betavae", 6, None, 1), ("betavae", 10, None, 0), ("betavae", 10, None, 1),
    ]
    assert total_trials(cfg) == 12
    searcher = build_searcher(cfg)
    assert isinstance(searcher, GridSearcher)
    assert draw(searcher, 12) == points
    assert searcher.suggest("extra") == Searcher.FINISHED


def test_sweep_searcher_passes_finished_through():
    class Exhausted(Searcher):
        def suggest(self, trial_id):
            return Searcher.FINISHED

    cfg = config()
    searcher = SweepSearcher({arm: Exhausted() for arm in cfg.model_dataset_pairs}, cfg, seeds=cfg.seeds)
    assert searcher.suggest("t0") == Searcher.FINISHED


def test_persistent_optuna_storage_holds_one_study_per_arm(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = config(searcher={"kind": "optuna", "sampler": "random", "seed": 0, "storage": url}, seeds=[0])
    searcher = build_searcher(cfg, study_name="run1")
    trials = run_to_end(searcher, 4)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert names == ["run1-absae", "run1-betavae"]
    stored = optuna.load_study(study_name="run1-absae", storage=url)
    assert [t.params["beta"] for t in stored.trials] == [t["beta"] for t in trials if t["model"] == "absae"]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in stored.trials)
