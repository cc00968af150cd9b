"""The registries and the import directions: what every layer relies on."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from weakdis.registry import (ALPHA_GRID, CAPABILITIES, DEPTH_GRID, METRIC_NAMES, METRICS, OPTIONAL_METRIC_NAMES, MODEL_NAMES, MODELS,
                              clustering_column, relation_column)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["analysis.metrics", "analysis.results", "analysis.metrics.columns",
                                    "trainables.config", "trainables.errors", "weakdis.registry"])
def test_these_modules_import_neither_torch_nor_ray(module):
    loaded = _modules_after(f"import {module}")
    assert not {m for m in loaded if m in ("torch", "ray") or m.startswith(("torch.", "ray."))}


def test_reading_results_imports_neither_torch_nor_ray(tmp_path):
    loaded = _modules_after(
        "import analysis.results as r; r._trial_config_defaults(); "
        "from trainables.config import TrialConfig; TrialConfig.from_dict({'steps': 3})")
    assert "torch" not in loaded and "ray" not in loaded


def test_the_leaf_package_imports_only_the_standard_library():
    loaded = _modules_after("import weakdis.registry, weakdis.errors, weakdis.seeds, weakdis.values, weakdis.files")
    assert not {m for m in loaded if m.split(".")[0] in ("numpy", "pandas", "torch", "ray", "analysis",
                                                          "trainables", "search")}


def test_analysis_metrics_never_import_trainables_or_search():
    loaded = _modules_after("import analysis.metrics, analysis.metrics.columns")
    assert not {m for m in loaded if m.split(".")[0] in ("trainables", "search")}


def test_weakdis_error_is_one_class_under_both_names():
    from trainables.errors import WeakdisError as old
    from weakdis.errors import WeakdisError as new

    assert old is new


# ------------------------------------------------------------------------------------------ metrics

def test_no_existing_result_column_moved():
    from analysis.results import HISTORY_COLUMNS, RESULT_COLUMNS

    before = ("trial_id", "status", "error", "model", "dataset", "seed", "beta", "latent_dim", "tau", "alpha",
              "steps", "recon_error", "dci", "dci_disentanglement", "dci_completeness", "dci_informativeness",
              "mig", "sap", "clustering_accuracy", "accepted_ratio", "relation_accuracy", "train_seconds",
              "raw_dci", "raw_mig", "raw_sap", "relation_accepted_ratio", "step", "trial_dir", "checkpoint")
    assert RESULT_COLUMNS[: len(before)] == before
    history_before = ("trial_id", "step", "train_seconds", "recon_error", "dci", "dci_disentanglement",
                      "dci_completeness", "dci_informativeness", "mig", "sap", "clustering_accuracy",
                      "accepted_ratio", "relation_accuracy", "raw_dci", "raw_mig", "raw_sap",
                      "relation_accepted_ratio", "training_iteration", "time_total_s")
    assert HISTORY_COLUMNS[: len(history_before)] == history_before


def test_grid_columns_are_named_as_documented():
    assert clustering_column(0.0) == "clustering_accuracy_a0"
    assert clustering_column(0.1, "ratio") == "accepted_ratio_a0.1"
    assert relation_column(5, 0.9) == "relation_accuracy_d5_a0.9"
    assert relation_column(10, 0.0, "ratio") == "relation_accepted_ratio_d10_a0"
    assert ALPHA_GRID == (0.0, 0.1, 0.3, 0.5, 0.7, 0.9) and DEPTH_GRID == (1, 5, 10)
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES) == 14 + 2 * len(ALPHA_GRID) * (1 + len(DEPTH_GRID)) + 13 + 2 + 1 + 1
    # + the review's 13, the linear-probe pair, the binary relations' result accuracy, the moved factors' one


def _inputs_with_prior_and_relations():
    """Codes drawn from a 4-component mixture, a relational model that moves them exactly."""
    from analysis.metrics import MixturePrior
    from analysis.metrics.columns import EvaluationInputs

    rng = np.random.RandomState(0)
    factors_of = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    prior = MixturePrior(factors_of * 4.0, np.tile(np.eye(2) * 0.05, (4, 1, 1)), factors_of)   # peak density 3.2
    components = rng.randint(4, size=150)
    codes = prior.means[components] + 0.1 * rng.randn(150, 2)
    targets = np.array([[1, 0, 3, 2], [2, 3, 0, 1]])   # flip the second / the first factor

    def relational_model(z, relation):
        source = np.argmin(((z[:, None] - prior.means[None]) ** 2).sum(-1), axis=1)
        return prior.means[targets[relation, source]] + (z - prior.means[source])

    return EvaluationInputs(representation=factors_of[components].astype(float), factors=factors_of[components],
                            codes=codes, seed=0, prior=prior, relational_model=relational_model,
                            relation_targets=targets, alpha=0.1, relation_depth=5, relation_samples=100,
                            probe={"codes_train": codes[:100], "content_train": codes[:100, :1],
                                   "labels_train": components[:100], "codes_test": codes[100:],
                                   "content_test": codes[100:, :1], "labels_test": components[100:]})


def test_every_registered_metric_is_computed_stored_selectable_and_labelled():
    from analysis.plots import METRIC_NAMES as AXIS_LABELS
    from analysis.results import HISTORY_COLUMNS, RESULT_COLUMNS
    from search.schema import OBJECTIVE_METRICS
    from trainables.evaluation import METRIC_KEYS, compute_columns

    values = compute_columns(_inputs_with_prior_and_relations(), "absae", OPTIONAL_METRIC_NAMES)
    assert set(values) == set(METRIC_KEYS) == set(METRIC_NAMES)
    for column in METRICS:
        # recon_error needs a model (test_loop_evaluation); relation_result_accuracy binary relations
        # (test_models_binary_relations)
        if column.name not in ("recon_error", "relation_result_accuracy"):
            assert math.isfinite(values[column.name]), column.name
        assert column.name in RESULT_COLUMNS and column.name in HISTORY_COLUMNS
        assert column.objective == (column.name in OBJECTIVE_METRICS)
        assert AXIS_LABELS[column.name] == column.label and column.label != column.name
    # the plain columns are the grid's at the config's alpha and depth
    assert values["relation_accuracy"] == values["relation_accuracy_d5_a0.1"]
    assert values["accepted_ratio"] == values["accepted_ratio_a0.1"]
    assert values["accepted_ratio_a0"] == 1.0 and values["relation_accuracy_d10_a0"] == 1.0


def test_each_computation_returns_exactly_its_registered_columns():
    from weakdis.registry import computations, resolve

    inputs = _inputs_with_prior_and_relations()
    for path in computations():
        if path.startswith("trainables.evaluation"):
            continue
        returned = set(resolve(path)(inputs))
        registered = {column.name for column in METRICS if column.computed_by == path}
        assert returned == registered, path
        assert len({column.requires for column in METRICS if column.computed_by == path}) == 1, path


def test_a_model_without_the_capability_reports_nan_for_its_columns():
    from trainables.evaluation import compute_columns

    values = compute_columns(_inputs_with_prior_and_relations(), "betavae")
    for column in METRICS:
        assert math.isnan(values[column.name]) == (column.requires is not None or column.name == "recon_error"
                                                   or not column.default)   # optional: not asked for here


def test_result_dtypes_follow_the_registry(tmp_path):
    import pandas as pd

    from analysis.results import RESULT_COLUMNS, _with_schema

    frame = _with_schema(pd.DataFrame([{"trial_id": "a", "relation_accuracy_d5_a0.1": "0.5"}]), RESULT_COLUMNS)
    for column in METRICS:
        assert str(frame[column.name].dtype) == column.dtype


# ------------------------------------------------------------------------------------------- models

def test_every_registered_model_resolves_and_has_a_label_and_style():
    from analysis.plots import MODEL_STYLES
    from analysis.tables import MODEL_LABELS
    from trainables.config import TrialConfig
    from trainables.models import model_class

    for entry in MODELS:
        cls = model_class(entry.name)
        assert cls.name == entry.name and MODEL_LABELS[entry.name] == entry.label
        assert MODEL_STYLES[entry.name] == (entry.colour, entry.marker)
        assert set(entry.capabilities) <= set(CAPABILITIES)
        TrialConfig(model=entry.name).validate()
    assert len({(entry.colour, entry.marker) for entry in MODELS}) == len(MODELS)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_declared_capabilities_match_the_protocols(name):
    from trainables.config import TrialConfig
    from trainables.models import build_model, relations_for
    from trainables.models.capabilities import PROTOCOLS
    from trainables.data import get_version
    from types import SimpleNamespace

    spec = get_version("dsprites:v2")
    dataset = SimpleNamespace(spec=spec, num_channels=1)
    model = build_model(TrialConfig(model=name, latent_dim=4), dataset)
    entry = next(entry for entry in MODELS if entry.name == name)
    for capability, protocol in PROTOCOLS.items():
        assert isinstance(model, protocol) == entry.has(capability), (name, capability)
    assert relations_for(spec)


# -------------------------------------------------------------------------------------------- seeds

def test_derive_seed_is_stable_and_separates_streams():
    from weakdis.seeds import derive_seed

    assert derive_seed(0, "batch/rank0") == derive_seed(0, "batch/rank0")
    seeds = {derive_seed(seed, stream) for seed in range(20) for stream in ("batch/rank0", "noise/rank0", "labelled")}
    assert len(seeds) == 60 and all(0 <= s < 2**63 for s in seeds)
    # the same on every machine: a fixed value, not Python's salted hash()
    assert derive_seed(3, "labelled/uniform") == int.from_bytes(
        __import__("hashlib").blake2b(b"3/labelled/uniform", digest_size=8).digest(), "little") & (2**63 - 1)
    with pytest.raises(TypeError):
        derive_seed(1.5, "batch")


def test_models_with_a_mixture_prior_say_what_its_components_stand_for():
    for entry in MODELS:
        assert (entry.prior_components is not None) == entry.has("mixture_prior"), entry.name
        assert entry.prior_components in (None, "combinations", "values")
