"""The sweep config: a YAML file validated into typed dataclasses.

Every mapping in the file is checked against its allowed keys, so a misspelt key is an error that
names the key, where it is and what is allowed. Trial keys (``fixed`` and ``space``) are checked
against :class:`trainables.config.TrialConfig` by building one trial config per model family at
the corners of its search space.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from trainables.config import TrialConfig, model_extra_types
from weakdis.errors import WeakdisError
from weakdis.registry import MODEL_NAMES, OBJECTIVE_NAMES, OPTIONAL_METRIC_NAMES
from weakdis.values import coerce, field_types

DIMENSION_KINDS = ("uniform", "loguniform", "int", "choice", "grid")
SEARCHER_KINDS = ("optuna", "grid")
OPTUNA_SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULER_KINDS = ("none", "asha")
OBJECTIVE_MODES = ("max", "min")
OBJECTIVE_METRICS = OBJECTIVE_NAMES   # weakdis.registry: every metric column that may be an objective
TRIAL_KEYS = tuple(f.name for f in dataclasses.fields(TrialConfig))
# Keys that the sweep sets itself: the dataset comes from the top-level `dataset`, the model from the
# family, the data seed from the top-level `data_seed`, the seed from `seeds` (unless `seed` is a
# search dimension).
SWEEP_OWNED_TRIAL_KEYS = ("model", "dataset", "data_seed")


@dataclass(frozen=True)
class Dimension:
    """One search dimension. ``low``/``high`` bound uniform, loguniform and int (both inclusive);
    ``values`` lists the options of choice and grid."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    values: tuple[Any, ...] = ()

    def corners(self) -> tuple[Any, ...]:
        """The values that span the dimension: its bounds or all its options."""
        if self.kind in ("choice", "grid"):
            return self.values
        return (self.low, self.high)


@dataclass(frozen=True)
class ModelFamily:
    """A model family: its fixed trial keys and its own search space (on top of the shared ones)."""

    model: str
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Dimension] = field(default_factory=dict)


@dataclass(frozen=True)
class SearcherConfig:
    kind: str = "optuna"
    sampler: str = "tpe"
    seed: int = 0
    storage: str | None = None          # an Optuna storage URL (e.g. sqlite:///optuna.db) for a persistent study
    n_startup_trials: int | None = None  # tpe: random trials before the model kicks in (Optuna's default 10)
    population_size: int | None = None   # nsga2: generation size (Optuna's default 50)


@dataclass(frozen=True)
class SchedulerConfig:
    kind: str = "none"
    grace_period: int = 1               # asha: evaluations before a trial can be stopped
    reduction_factor: int = 3


@dataclass(frozen=True)
class BudgetConfig:
    max_concurrent_trials: int | None = None   # None: as many as the resources allow
    time_budget_s: float | None = None         # stop starting/continuing trials after this long


@dataclass(frozen=True)
class ResourcesConfig:
    """Per trial: CPUs, GPUs (a fraction packs several trials on one GPU; with workers > 1, GPUs per
    worker) and Ray Train workers (data-parallel processes of one trial)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1


@dataclass(frozen=True)
class FailureSettings:
    max_failures: int = 1               # retries of a trial from its last checkpoint


@dataclass(frozen=True)
class CheckpointSettings:
    num_to_keep: int | None = 2


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep config. ``source`` names the file (for messages); ``name`` is the default
    stem of run names."""

    datasets: tuple[str, ...]
    models: tuple[ModelFamily, ...]
    objectives: dict[str, str]
    fixed: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Dimension] = field(default_factory=dict)
    searcher: SearcherConfig = SearcherConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    num_samples: int | None = 8
    seeds: tuple[int, ...] = (0,)
    budget: BudgetConfig = BudgetConfig()
    resources: ResourcesConfig = ResourcesConfig()
    storage: str = "./runs"
    failure: FailureSettings = FailureSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    name: str = "sweep"
    source: str = "sweep config"
    data_seed: int = 0                  # which images every trial and seed trains on (one per sweep)
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)   # Ray Tune logger callbacks

    @property
    def model_dataset_pairs(self) -> list[tuple[str, str]]:
        """(model, dataset) pairs: each has its own Optuna study; grids loop over them in this order."""
        return [(family.model, dataset) for family in self.models for dataset in self.datasets]

    @property
    def metrics(self) -> list[str]:
        return list(self.objectives)

    @property
    def modes(self) -> list[str]:
        return list(self.objectives.values())

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def family(self, model: str) -> ModelFamily:
        for family in self.models:
            if family.model == model:
                return family
        raise KeyError(model)

    def with_overrides(self, **changes: Any) -> "SweepConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML-able plain data, readable again by :func:`parse_sweep_config`."""
        return {
            "name": self.name,
            "dataset": self.datasets[0] if len(self.datasets) == 1 else list(self.datasets),
            "fixed": dict(self.fixed),
            "models": {f.model: {"fixed": dict(f.fixed), "space": _space_to_dict(f.space)} for f in self.models},
            "space": _space_to_dict(self.space),
            "objectives": dict(self.objectives),
            "searcher": dataclasses.asdict(self.searcher),
            "scheduler": dataclasses.asdict(self.scheduler),
            "num_samples": self.num_samples,
            "seeds": list(self.seeds),
            "budget": dataclasses.asdict(self.budget),
            "resources": dataclasses.asdict(self.resources),
            "storage": self.storage,
            "data_seed": self.data_seed,
            "failure": dataclasses.asdict(self.failure),
            "checkpoint": dataclasses.asdict(self.checkpoint),
            **({"callbacks": {k: dict(v) for k, v in self.callbacks.items()}} if self.callbacks else {}),
        }


def _space_to_dict(space: Mapping[str, Dimension]) -> dict[str, Any]:
    out = {}
    for key, dim in space.items():
        if dim.kind in ("choice", "grid"):
            out[key] = {dim.kind: list(dim.values)}
        else:
            out[key] = {dim.kind: [dim.low, dim.high]}
    return out


TOP_LEVEL_KEYS = (
    "name", "dataset", "fixed", "models", "space", "objectives", "searcher", "scheduler", "num_samples",
    "seeds", "budget", "resources", "storage", "failure", "checkpoint", "data_seed", "callbacks", "metrics",
)

# `callbacks:` in a sweep config: Ray Tune's logger callbacks, name -> keyword arguments. The keys
# each accepts are those of Ray's MLflowLoggerCallback / WandbLoggerCallback (W&B also passes any
# other key to wandb.init); the package each needs is checked before Ray starts.
CALLBACKS = {
    "mlflow": {
        "package": "mlflow", "extra": "tracking",
        "keys": ("tracking_uri", "registry_uri", "experiment_name", "tags", "tracking_token", "save_artifact",
                 "log_params_on_trial_end"),
    },
    "wandb": {
        "package": "wandb", "extra": "wandb",
        "keys": None,    # any: Ray passes unknown keys on to wandb.init
    },
}


def load_sweep_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """Read and validate a sweep config file, with ``--set`` overrides (:func:`apply_overrides`)."""
    path = Path(path)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise WeakdisError(f"sweep config {str(path)!r} {problem} (expected a YAML file)")
    return sweep_config_from_text(path.read_text(), source=str(path), default_name=path.stem, overrides=overrides)


def sweep_config_from_text(text: str, *, source: str, default_name: str,
                           overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """Parse a sweep config's YAML text, apply ``--set`` overrides and validate it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise WeakdisError(f"{source}: not valid YAML: {' '.join(str(error).split())}") from None
    if overrides:
        data = apply_overrides(data, list(overrides), source)
        source += " with --set " + " ".join(overrides)
    return parse_sweep_config(data, source=source, default_name=default_name)


def apply_overrides(data: Any, pairs: list[str], source: str) -> dict[str, Any]:
    """A copy of a parsed sweep config with ``KEY=VALUE`` overrides applied (``weakdis sweep --set``).
    KEY is a dotted path through the file's mappings (``seeds``, ``fixed.steps``,
    ``models.absae.fixed.beta``; missing mappings on the way are created); VALUE is read as YAML, so
    ``seeds=[1,2]`` is a list and ``models.absae.space.beta={grid: [0.2]}`` a mapping. The result is
    validated as any config is, so a misspelt key is an error naming it."""
    import copy

    root = copy.deepcopy(_mapping(data, source, "the top level"))
    for pair in pairs:
        key, sep, text = pair.partition("=")
        path = [part.strip() for part in key.split(".")]
        if not sep or not all(path):
            raise WeakdisError(f"--set {pair!r}: expected KEY=VALUE with KEY a dotted path, e.g. --set seeds=[1,2] "
                               "or --set models.absae.fixed.steps=4000")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise WeakdisError(f"--set {pair!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None
        if isinstance(value, str):
            try:   # YAML 1.1 reads 1e-3 (no dot) as a string; on a command line it means the number
                value = float(value)
            except ValueError:
                pass
        node = root
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[:depth + 1])
                raise WeakdisError(f"--set {pair!r}: {source} has {where}={child!r}, not a mapping, so it has no "
                                   f"key {path[depth + 1]!r}")
            node = child
        node[path[-1]] = value
    return root


# The papers' trade-off (Figure 5): disentanglement up, reconstruction error down.
DEFAULT_OBJECTIVES = {"dci": "max", "recon_error": "min"}


def parse_sweep_config(data: Any, *, source: str = "sweep config", default_name: str = "sweep") -> SweepConfig:
    """Validate plain data (a parsed YAML mapping) into a :class:`SweepConfig`."""
    root = _mapping(data, source, "the top level")
    _check_keys(root, TOP_LEVEL_KEYS, source, "the top level")
    for required in ("dataset", "models"):
        if required not in root:
            raise WeakdisError(f"{source}: missing key {required!r} at the top level")

    name = _string(root.get("name", default_name), source, "name")
    datasets = _datasets(root["dataset"], source)
    fixed = _trial_keys(root.get("fixed") or {}, source, "fixed")
    space = _space(root.get("space") or {}, source, "space")
    models = _models(root["models"], source)
    objectives = _objectives(root.get("objectives", DEFAULT_OBJECTIVES), source)
    fixed = _with_optional_metrics(fixed, root.get("metrics"), objectives, source)
    searcher = _section(root.get("searcher"), SearcherConfig, source, "searcher")
    scheduler = _section(root.get("scheduler"), SchedulerConfig, source, "scheduler")
    budget = _section(root.get("budget"), BudgetConfig, source, "budget")
    resources = _section(root.get("resources"), ResourcesConfig, source, "resources")
    failure = _section(root.get("failure"), FailureSettings, source, "failure")
    checkpoint = _section(root.get("checkpoint"), CheckpointSettings, source, "checkpoint")
    storage = _string(root.get("storage", "./runs"), source, "storage")
    seeds = _seeds(root.get("seeds", [0]), source)
    data_seed = root.get("data_seed", 0)
    if not _is_int(data_seed) or data_seed < 0:
        raise WeakdisError(f"{source}: data_seed={data_seed!r} is invalid; expected an integer >= 0 "
                           "(the seed of the images every trial trains on)")
    callbacks = _callbacks(root.get("callbacks"), source)
    num_samples = root.get("num_samples", None if searcher.kind == "grid" else 8)
    if num_samples is not None and (not _is_int(num_samples) or num_samples < 1):
        raise WeakdisError(f"{source}: num_samples={num_samples!r} is invalid; expected an integer >= 1")

    config = SweepConfig(
        datasets=datasets, models=models, objectives=objectives, fixed=fixed, space=space, searcher=searcher,
        scheduler=scheduler, num_samples=num_samples, seeds=seeds, budget=budget, resources=resources,
        storage=storage, failure=failure, checkpoint=checkpoint, name=name, source=source, data_seed=data_seed,
        **({"callbacks": callbacks} if callbacks else {}),
    )
    validate_sweep_config(config)
    return config


def validate_sweep_config(config: SweepConfig) -> None:
    """Cross-checks between sections, and every family's trial keys through TrialConfig."""
    source = config.source
    searcher, scheduler, resources = config.searcher, config.scheduler, config.resources

    def fail(key: str, value: Any, expected: str) -> None:
        raise WeakdisError(f"{source}: {key}={value!r} is invalid; expected {expected}")

    if searcher.kind not in SEARCHER_KINDS:
        fail("searcher.kind", searcher.kind, "one of " + ", ".join(SEARCHER_KINDS))
    if searcher.sampler not in OPTUNA_SAMPLERS:
        fail("searcher.sampler", searcher.sampler, "one of " + ", ".join(OPTUNA_SAMPLERS))
    if searcher.kind == "grid" and searcher.storage is not None:
        fail("searcher.storage", searcher.storage, "null for searcher.kind grid (only Optuna studies are stored)")
    if searcher.storage is not None and "://" not in searcher.storage:
        fail("searcher.storage", searcher.storage, "an Optuna storage URL such as 'sqlite:///optuna.db'")
    for key in ("n_startup_trials", "population_size"):
        value = getattr(searcher, key)
        if value is not None and value < (0 if key == "n_startup_trials" else 2):
            fail(f"searcher.{key}", value, "an integer >= " + ("0" if key == "n_startup_trials" else "2"))
    if scheduler.kind not in SCHEDULER_KINDS:
        fail("scheduler.kind", scheduler.kind, "one of " + ", ".join(SCHEDULER_KINDS))
    if scheduler.kind == "asha" and config.multi_objective:
        raise WeakdisError(
            f"{source}: scheduler.kind='asha' needs a single objective, but objectives has "
            f"{', '.join(config.objectives)}; ASHA ranks trials on one metric, so list one objective "
            "or use scheduler.kind 'none'"
        )
    if scheduler.grace_period < 1:
        fail("scheduler.grace_period", scheduler.grace_period, "an integer >= 1")
    if scheduler.reduction_factor < 2:
        fail("scheduler.reduction_factor", scheduler.reduction_factor, "an integer >= 2")
    if resources.cpus < 0 or resources.gpus < 0 or (resources.cpus == 0 and resources.gpus == 0):
        fail("resources", {"cpus": resources.cpus, "gpus": resources.gpus}, "cpus >= 0 and gpus >= 0, not both 0")
    if resources.workers < 1:
        fail("resources.workers", resources.workers, "an integer >= 1")
    if resources.gpus > 1 and not float(resources.gpus).is_integer():
        fail("resources.gpus", resources.gpus, "a fraction <= 1 or a whole number of GPUs")
    if config.budget.max_concurrent_trials is not None and config.budget.max_concurrent_trials < 1:
        fail("budget.max_concurrent_trials", config.budget.max_concurrent_trials, "an integer >= 1 or null")
    if config.budget.time_budget_s is not None and config.budget.time_budget_s <= 0:
        fail("budget.time_budget_s", config.budget.time_budget_s, "a number of seconds > 0 or null")
    if config.failure.max_failures < -1:
        fail("failure.max_failures", config.failure.max_failures, "an integer >= 0 (or -1: retry forever)")
    if config.checkpoint.num_to_keep is not None and config.checkpoint.num_to_keep < 1:
        fail("checkpoint.num_to_keep", config.checkpoint.num_to_keep, "an integer >= 1 or null (keep all)")
    if searcher.kind == "grid" and config.num_samples is not None:
        fail("num_samples", config.num_samples, "null (absent) with searcher.kind grid, which runs every grid point")
    if searcher.kind == "optuna" and config.num_samples is None:
        fail("num_samples", None, "an integer >= 1 with searcher.kind optuna")

    seed_searched = "seed" in config.space or any("seed" in f.space for f in config.models)
    if seed_searched and config.seeds != (0,):
        raise WeakdisError(f"{source}: 'seed' is a search dimension and 'seeds' is set; use one of the two")
    seed_fixed = "seed" in config.fixed or any("seed" in f.fixed for f in config.models)
    if seed_fixed:
        raise WeakdisError(f"{source}: 'seed' must not be a fixed key; list the seeds under 'seeds'")

    all_spaces = [("space", config.space)] + [(f"models.{f.model}.space", f.space) for f in config.models]
    for where, space in all_spaces:
        for key, dim in space.items():
            if searcher.kind == "grid" and dim.kind != "grid":
                raise WeakdisError(
                    f"{source}: {where}.{key} is a {dim.kind} dimension, but searcher.kind 'grid' takes only "
                    "grid dimensions ({grid: [...]}); use searcher.kind optuna or list the grid values"
                )
            if searcher.kind == "optuna" and dim.kind == "grid":
                raise WeakdisError(
                    f"{source}: {where}.{key} is a grid dimension, which needs searcher.kind 'grid'; "
                    "with optuna use {choice: [...]}"
                )
    for family in config.models:
        shared = set(config.space) & set(family.space)
        if shared:
            raise WeakdisError(
                f"{source}: models.{family.model}.space.{sorted(shared)[0]} is also in the shared 'space'; "
                "define it in one place"
            )
        _check_family_trials(config, family)
    check_search_space_not_empty(config)


def _check_family_trials(config: SweepConfig, family: ModelFamily) -> None:
    """Build a TrialConfig at each corner of the family's space so bad ranges fail before Ray starts,
    and check each against the world (:func:`check_trial_world`)."""
    space = {**config.space, **family.space}
    for dataset in config.datasets:
        base = {**config.fixed, **family.fixed, "model": family.model, "dataset": dataset,
                "data_seed": config.data_seed}
        base.setdefault("seed", config.seeds[0])
        check_trial_world(TrialConfig.from_dict(base, source=f"{config.source}: models.{family.model}"),
                          f"{config.source}: models.{family.model}")
        for key, dim in space.items():
            for value in dim.corners():
                where = f"{config.source}: models.{family.model} with {key}={value!r}"
                check_trial_world(TrialConfig.from_dict({**base, key: value}, source=where), where)


# -- checks beyond the file's own structure (issue 11: everything fails before Ray starts) ------------


def check_trial_world(trial: TrialConfig, source: str) -> None:
    """A trial config against the registries and the data: dataset version, device name, tau
    against the version's training split, a data_path file, finite numbers."""
    from trainables.validation import check_trial_inputs

    check_trial_inputs(trial, source)


def check_search_space_not_empty(config: SweepConfig) -> None:
    """An Optuna search needs something to search: every family needs at least one dimension."""
    if config.searcher.kind != "optuna":
        return
    for family in config.models:
        if not config.space and not family.space:
            raise WeakdisError(
                f"{config.source}: the search space of models.{family.model} is empty (no 'space' and no "
                f"'models.{family.model}.space'); expected at least one dimension for searcher.kind optuna, "
                "or searcher.kind grid to run fixed configurations"
            )


def check_optuna_storage(url: str | None, source: str = "sweep config") -> None:
    """Open the Optuna storage once, so a bad URL, a missing driver or an unreachable database fails
    here with one line instead of inside Ray. Opening an SQLite URL creates its file."""
    if url is None:
        return
    try:
        import optuna

        storage = optuna.storages.RDBStorage(url)
        storage.get_all_studies()
        storage.remove_session()
    except Exception as error:  # sqlalchemy OperationalError / ArgumentError, ImportError of a driver, ...
        detail = " ".join(str(error).split("\n")[0].split())[:200]
        raise WeakdisError(
            f"{source}: searcher.storage={url!r} cannot be opened ({type(error).__name__}: {detail}); "
            "expected a reachable Optuna storage URL such as 'sqlite:///path/optuna.db'"
        ) from None


def yaml_number_hint(value: Any) -> str:
    """Why a number arrived as a string: PyYAML follows YAML 1.1, where 1e-1 (no dot) is a string."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return (f"; {value!r} was read as a string: YAML 1.1 needs a dot in a number with an exponent, "
                f"write e.g. 1.0e-1 instead of 1e-1")
    if isinstance(value, list):
        return next((hint for hint in map(yaml_number_hint, value) if hint), "")
    return ""


# -- parsing helpers ----------------------------------------------------------------------------------


def _mapping(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WeakdisError(f"{source}: {where} must be a mapping of keys to values, got {type(value).__name__}")
    return value


def _callbacks(values: Any, source: str) -> dict[str, dict[str, Any]]:
    """``callbacks: {mlflow: {tracking_uri: ..., experiment_name: ...}, wandb: {project: ...}}``."""
    if values is None:
        return {}
    values = _mapping(values, source, "callbacks")
    _check_keys(values, tuple(CALLBACKS), source, "callbacks")
    result: dict[str, dict[str, Any]] = {}
    for name, options in values.items():
        options = {} if options is None else dict(_mapping(options, source, f"callbacks.{name}"))
        allowed = CALLBACKS[name]["keys"]
        if allowed is not None:
            _check_keys(options, allowed, source, f"callbacks.{name}")
        if importlib.util.find_spec(CALLBACKS[name]["package"]) is None:
            raise WeakdisError(
                f"{source}: callbacks.{name} needs the {CALLBACKS[name]['package']} package, which is not "
                f"installed; pip install 'weakdis[{CALLBACKS[name]['extra']}]'"
            )
        result[str(name)] = options
    return result


def _check_keys(values: Mapping[str, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    for key in values:
        if key not in allowed:
            hint = _close_match(str(key), allowed)
            raise WeakdisError(
                f"{source}: unknown key {key!r} in {where}{hint}; allowed keys: {', '.join(allowed)}"
            )


def _close_match(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    matches = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _string(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise WeakdisError(f"{source}: {key}={value!r} is invalid; expected a non-empty string")
    return value


def _datasets(value: Any, source: str) -> tuple[str, ...]:
    """One dataset version, or a list of them (each model family is then run on each)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise WeakdisError(f"{source}: dataset=[] is invalid; expected 'dataset:version' or a list of them")
    for item in values:
        if not isinstance(item, str) or ":" not in item:
            raise WeakdisError(
                f"{source}: dataset={item!r} is invalid; expected 'dataset:version', e.g. 'dsprites:v2'"
            )
    if len(set(values)) != len(values):
        raise WeakdisError(f"{source}: dataset={values!r} repeats a version; expected distinct versions")
    return tuple(values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _model_keys(model: str | None) -> tuple[str, ...]:
    """The hyperparameters of ``model`` (of any model when None: the shared ``fixed`` and ``space``
    apply to every family, and each family's trial configs check them against its own model)."""
    models = (model,) if model is not None else MODEL_NAMES
    return tuple(dict.fromkeys(key for name in models for key in model_extra_types(name)))


def _trial_keys(values: Any, source: str, where: str, model: str | None = None) -> dict[str, Any]:
    values = _mapping(values, source, where)
    allowed = tuple(k for k in TRIAL_KEYS if k not in SWEEP_OWNED_TRIAL_KEYS) + _model_keys(model)
    for key in values:
        if key in SWEEP_OWNED_TRIAL_KEYS:
            raise WeakdisError(
                f"{source}: {where}.{key} is set by the sweep itself (top-level 'dataset', the family name "
                "under 'models', top-level 'data_seed'); remove it"
            )
    _check_keys(values, allowed, source, where)
    return dict(values)


def _space(values: Any, source: str, where: str, model: str | None = None) -> dict[str, Dimension]:
    values = _mapping(values, source, where)
    allowed = tuple(k for k in TRIAL_KEYS if k not in SWEEP_OWNED_TRIAL_KEYS + ("extra",)) + _model_keys(model)
    _check_keys(values, allowed, source, where)
    return {key: _dimension(spec, source, f"{where}.{key}") for key, spec in values.items()}


def _dimension(spec: Any, source: str, where: str) -> Dimension:
    expected = (
        "one of {uniform: [low, high]}, {loguniform: [low, high]}, {int: [low, high]}, "
        "{choice: [a, b, ...]}, {grid: [a, b, ...]}"
    )
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise WeakdisError(f"{source}: {where}={spec!r} is invalid; expected {expected}")
    (kind, args), = spec.items()
    if kind not in DIMENSION_KINDS:
        hint = _close_match(str(kind), DIMENSION_KINDS)
        raise WeakdisError(f"{source}: {where}: unknown dimension kind {kind!r}{hint}; expected {expected}")
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise WeakdisError(f"{source}: {where}.{kind}={args!r} is invalid; expected a non-empty list of values")
        return Dimension(kind, values=tuple(args))
    if not isinstance(args, list) or len(args) != 2 or not all(_is_number(a) for a in args):
        raise WeakdisError(f"{source}: {where}.{kind}={args!r} is invalid; expected [low, high] (two numbers, "
                           f"finite){yaml_number_hint(args)}")
    low, high = args
    if not low < high:
        raise WeakdisError(f"{source}: {where}.{kind}={args!r} is invalid; expected low < high")
    if kind == "loguniform" and low <= 0:
        raise WeakdisError(f"{source}: {where}.loguniform={args!r} is invalid; expected 0 < low < high")
    if kind == "int":
        if not (_is_int(low) and _is_int(high)):
            raise WeakdisError(f"{source}: {where}.int={args!r} is invalid; expected two integers [low, high]")
        return Dimension(kind, low=int(low), high=int(high))
    return Dimension(kind, low=float(low), high=float(high))


def _models(values: Any, source: str) -> tuple[ModelFamily, ...]:
    if isinstance(values, list):  # a plain list of families without their own keys
        values = {name: None for name in values}
    values = _mapping(values, source, "models")
    if not values:
        raise WeakdisError(f"{source}: models is empty; expected at least one of {', '.join(MODEL_NAMES)}")
    families = []
    for model, body in values.items():
        if model not in MODEL_NAMES:
            hint = _close_match(str(model), MODEL_NAMES)
            raise WeakdisError(
                f"{source}: unknown model family {model!r} under models{hint}; expected one of {', '.join(MODEL_NAMES)}"
            )
        body = _mapping(body or {}, source, f"models.{model}")
        _check_keys(body, ("fixed", "space"), source, f"models.{model}")
        families.append(
            ModelFamily(
                model=model,
                fixed=_trial_keys(body.get("fixed") or {}, source, f"models.{model}.fixed", model),
                space=_space(body.get("space") or {}, source, f"models.{model}.space", model),
            )
        )
    return tuple(families)


def _with_optional_metrics(fixed: dict[str, Any], metrics: Any, objectives: Mapping[str, str],
                           source: str) -> dict[str, Any]:
    """``fixed`` with ``metrics`` set to the optional metric columns every trial computes: those the
    top-level ``metrics:`` list names, those ``fixed.metrics`` names and the optional objectives."""
    if metrics is None:
        metrics = []
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise WeakdisError(f"{source}: metrics={metrics!r} is invalid; expected a list of optional metric "
                           f"columns, e.g. [irs, jemmig]; one of {', '.join(OPTIONAL_METRIC_NAMES)}")
    chosen = [name.strip() for name in str(fixed.get("metrics", "")).split(",") if name.strip()]
    for name in metrics:
        if name not in OPTIONAL_METRIC_NAMES:
            raise WeakdisError(f"{source}: metrics lists {name!r}, which is not an optional metric column; "
                               f"expected some of {', '.join(OPTIONAL_METRIC_NAMES)} (the others are always computed)")
        chosen.append(name)
    chosen += [name for name in objectives if name in OPTIONAL_METRIC_NAMES]
    chosen = list(dict.fromkeys(chosen))
    return {**fixed, "metrics": ",".join(chosen)} if chosen else fixed


def _objectives(values: Any, source: str) -> dict[str, str]:
    values = _mapping(values, source, "objectives")
    if not values:
        raise WeakdisError(f"{source}: objectives is empty; expected e.g. {{dci: max, recon_error: min}}")
    for metric, mode in values.items():
        if metric not in OBJECTIVE_METRICS:
            hint = _close_match(str(metric), OBJECTIVE_METRICS)
            raise WeakdisError(
                f"{source}: unknown objective {metric!r}{hint}; expected one of {', '.join(OBJECTIVE_METRICS)}"
            )
        if mode not in OBJECTIVE_MODES:
            raise WeakdisError(f"{source}: objectives.{metric}={mode!r} is invalid; expected max or min")
    return dict(values)


def _seeds(values: Any, source: str) -> tuple[int, ...]:
    if _is_int(values):
        values = [values]
    if not isinstance(values, list) or not values or not all(_is_int(v) and v >= 0 for v in values):
        raise WeakdisError(f"{source}: seeds={values!r} is invalid; expected a non-empty list of integers >= 0")
    if len(set(values)) != len(values):
        raise WeakdisError(f"{source}: seeds={values!r} repeats a seed; expected distinct seeds")
    return tuple(values)


def _section(values: Any, cls: type, source: str, where: str):
    """Fill a flat settings dataclass from a mapping, checking keys and value types."""
    values = _mapping(values or {}, source, where)
    types = field_types(cls)
    _check_keys(values, tuple(types), source, where)
    kwargs = {}
    for key, value in values.items():
        kwargs[key] = _typed(value, types[key], source, f"{where}.{key}")
    return cls(**kwargs)


def _typed(value: Any, annotation: Any, source: str, key: str) -> Any:
    try:
        return coerce(value, annotation, key=key, source=source, strict=True)
    except WeakdisError as error:
        raise WeakdisError(f"{error}{yaml_number_hint(value)}") from None
