"""Search spaces and searchers: from a :class:`SweepConfig` to the flat trial configs Tune runs.

Several model families (and dataset versions) are searched in one sweep with one Optuna study per
arm, a (family, version) pair: each arm's sampler learns only its own space (the shared dimensions
plus the family's own), and configurations are drawn from the arms in turn (round robin), so every
family gets its share of ``num_samples`` however few there are. A conditional space with the family as a categorical dimension would let a
short sweep draw one family only, and the papers compare families on their own Pareto fronts anyway.

Seeds repeat configurations: :class:`SweepSearcher` hands each Optuna proposal out once per seed and
tells Optuna the mean of every objective over the seeds that finished. The trainable always receives
the flat dict of :class:`trainables.config.TrialConfig` keys.
"""
from __future__ import annotations

import itertools
import math
import pickle
from typing import Any, Mapping

from ray.tune.search import Searcher

from search.schema import Dimension, SweepConfig
from trainables.errors import WeakdisError

class FamilySpace:
    """The Optuna space of one model family (a picklable callable, so the searcher state can be
    saved and restored on ``--resume``): the shared dimensions and the family's own."""

    def __init__(self, config: SweepConfig, model: str):
        self.model = model
        self.dimensions = {**config.space, **config.family(model).space}

    def __call__(self, trial: Any) -> dict[str, Any] | None:
        for key, dim in self.dimensions.items():
            suggest(trial, key, dim)
        return None


def suggest(trial: Any, name: str, dim: Dimension) -> Any:
    """Draw one value of ``dim`` from an Optuna trial."""
    if dim.kind == "uniform":
        return trial.suggest_float(name, dim.low, dim.high)
    if dim.kind == "loguniform":
        return trial.suggest_float(name, dim.low, dim.high, log=True)
    if dim.kind == "int":
        return trial.suggest_int(name, dim.low, dim.high)
    if dim.kind == "choice":
        return trial.suggest_categorical(name, list(dim.values))
    raise ValueError(f"dimension kind {dim.kind!r} cannot be drawn by Optuna")


def trial_dict(
    config: SweepConfig, model: str, dataset: str, params: Mapping[str, Any], seed: int | None
) -> dict[str, Any]:
    """The flat TrialConfig dict of one trial: shared fixed keys, the family's fixed keys, the drawn
    parameters, the dataset, the model and the seed (None: ``seed`` is among the parameters)."""
    family = config.family(model)
    values: dict[str, Any] = {**config.fixed, **family.fixed, **params, "model": model, "dataset": dataset,
                              "data_seed": config.data_seed}   # one data seed for the whole sweep
    if seed is not None:
        values["seed"] = seed
    return values


def seed_is_searched(config: SweepConfig) -> bool:
    return "seed" in config.space or any("seed" in family.space for family in config.models)


def grid_points(config: SweepConfig) -> list[dict[str, Any]]:
    """Every trial of a grid sweep, in order: family, dataset, then the grid dimensions (shared first,
    the last varying fastest), then the seed."""
    points = []
    seeds = [None] if seed_is_searched(config) else list(config.seeds)
    for model, dataset in config.model_dataset_pairs:
        space = {**config.space, **config.family(model).space}
        keys = list(space)
        for combination in itertools.product(*(space[key].values for key in keys)):
            for seed in seeds:
                points.append(trial_dict(config, model, dataset, dict(zip(keys, combination)), seed))
    return points


class _PicklingSearcher(Searcher):
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__.copy(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The space, metrics and modes come from the sweep config; Tune's param_space stays empty.
        return True


class GridSearcher(_PicklingSearcher):
    """Runs every grid point once (paper reproductions), then reports FINISHED."""

    def __init__(self, config: SweepConfig):
        super().__init__(metric=config.metrics, mode=config.modes)
        self.points = grid_points(config)
        self.next_index = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next_index >= len(self.points):
            return Searcher.FINISHED
        point = self.points[self.next_index]
        self.next_index += 1
        return dict(point)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


class SweepSearcher(_PicklingSearcher):
    """One inner searcher per arm, a (model family, dataset version) pair (OptunaSearch over the
    family's :class:`FamilySpace`), asked in turn. Each proposal becomes one trial per seed; when all
    of them have ended, the arm's searcher is told the mean of every objective over the trials that
    finished (a failure if none did).

    With ``seeds=None`` (``seed`` is itself a search dimension) each proposal is one trial.
    """

    def __init__(
        self, inners: Mapping[tuple[str, str], Searcher], config: SweepConfig, seeds: tuple[int, ...] | None
    ):
        super().__init__(metric=config.metrics, mode=config.modes)
        self.inners = dict(inners)
        self.pairs = list(config.model_dataset_pairs)
        self.config = config
        self.seeds = seeds
        self.proposals = 0
        self.groups: dict[str, dict[str, Any]] = {}   # proposal id -> model, params, trial ids, results
        self.group_of: dict[str, str] = {}            # trial id -> proposal id
        self.open_group: str | None = None

    @property
    def repeats(self) -> int:
        return 1 if self.seeds is None else len(self.seeds)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        group = self.groups.get(self.open_group) if self.open_group else None
        if group is None or len(group["trials"]) >= self.repeats:
            arm = self.pairs[self.proposals % len(self.pairs)]
            params = self.inners[arm].suggest(trial_id)
            if params is None or params == Searcher.FINISHED:
                return params
            self.proposals += 1
            self.open_group = trial_id
            group = self.groups[trial_id] = {"arm": arm, "params": params, "trials": [], "results": {}}
        index = len(group["trials"])
        group["trials"].append(trial_id)
        self.group_of[trial_id] = self.open_group
        seed = None if self.seeds is None else self.seeds[index]
        model, dataset = group["arm"]
        return trial_dict(self.config, model, dataset, group["params"], seed)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass  # Optuna learns from complete trials only (its pruner is off; ASHA stops trials in Tune)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        group_id = self.group_of.get(trial_id)
        if group_id is None:
            return
        group = self.groups[group_id]
        group["results"][trial_id] = None if error else result
        if len(group["results"]) < self.repeats:
            return
        aggregate = mean_objectives([r for r in group["results"].values() if r], self.config.metrics)
        self.inners[group["arm"]].on_trial_complete(group_id, result=aggregate, error=aggregate is None)
        if self.open_group == group_id:
            self.open_group = None


def mean_objectives(results: list[Mapping[str, Any]], metrics: list[str]) -> dict[str, float] | None:
    """The mean of each objective over results that report it finitely; None when a metric has no
    finite value (Optuna then records the configuration as failed)."""
    aggregate = {}
    for metric in metrics:
        values = [float(r[metric]) for r in results if _finite(r.get(metric))]
        if not values:
            return None
        aggregate[metric] = sum(values) / len(values)
    return aggregate


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def optuna_sampler(config: SweepConfig, seed: int):
    """The Optuna sampler the config names, seeded."""
    import optuna

    settings = config.searcher
    if settings.sampler == "tpe":
        kwargs = {} if settings.n_startup_trials is None else {"n_startup_trials": settings.n_startup_trials}
        return optuna.samplers.TPESampler(seed=seed, **kwargs)
    if settings.sampler == "nsga2":
        kwargs = {} if settings.population_size is None else {"population_size": settings.population_size}
        return optuna.samplers.NSGAIISampler(seed=seed, **kwargs)
    return optuna.samplers.RandomSampler(seed=seed)


def build_searcher(config: SweepConfig, *, study_name: str = "weakdis") -> Searcher:
    """The Tune searcher of a sweep: GridSearcher, or a SweepSearcher over one OptunaSearch per arm
    (model family x dataset version; single or multi-objective, as a metric list and mode list; arm
    i's sampler is seeded with searcher.seed + i; its study is ``<study_name>-<model>[-<version>]`` in
    the optional storage)."""
    if config.searcher.kind == "grid":
        return GridSearcher(config)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(config.searcher.storage) if config.searcher.storage else None
    metric: str | list[str] = config.metrics if config.multi_objective else config.metrics[0]
    mode: str | list[str] = config.modes if config.multi_objective else config.modes[0]
    inners = {}
    for index, (model, dataset) in enumerate(config.model_dataset_pairs):
        space = FamilySpace(config, model)
        if not space.dimensions:
            raise WeakdisError(
                f"{config.source}: models.{model} has no search dimension (space is empty for it); "
                "add one, or use searcher.kind grid"
            )
        suffix = f"-{dataset.replace(':', '-')}" if len(config.datasets) > 1 else ""
        inners[(model, dataset)] = OptunaSearch(
            space=space, metric=metric, mode=mode, sampler=optuna_sampler(config, config.searcher.seed + index),
            study_name=f"{study_name}-{model}{suffix}", storage=storage,
        )
    return SweepSearcher(inners, config, seeds=None if seed_is_searched(config) else config.seeds)


def total_trials(config: SweepConfig) -> int:
    """How many Tune trials the sweep runs (num_samples configurations x seeds, or the grid)."""
    if config.searcher.kind == "grid":
        return len(grid_points(config))
    return config.num_samples * (1 if seed_is_searched(config) else len(config.seeds))
