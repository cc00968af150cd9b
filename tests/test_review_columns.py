"""The review's metrics as optional result columns: off by default, selected by a trial's or a
sweep's ``metrics``, and clear errors for names that are not optional columns."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.metrics.columns import EvaluationInputs
from search.schema import parse_sweep_config
from trainables.config import TrialConfig
from trainables.evaluation import compute_columns
from weakdis.errors import WeakdisError
from weakdis.registry import OPTIONAL_METRIC_NAMES

SWEEP = {"dataset": "dsprites:v2", "models": {"betavae": {}}, "searcher": {"kind": "grid"}}


def _inputs():
    rng = np.random.RandomState(0)
    factors = rng.randint(3, size=(300, 2))
    codes = factors + 0.05 * rng.randn(300, 2)
    return EvaluationInputs(representation=codes, factors=factors, codes=codes, seed=0)


def test_optional_columns_are_nan_unless_selected_and_then_match_the_functions():
    from analysis.metrics import review

    inputs = _inputs()
    plain = compute_columns(inputs, "betavae")
    assert all(math.isnan(plain[name]) for name in OPTIONAL_METRIC_NAMES)
    assert math.isfinite(plain["mig"])
    chosen = compute_columns(inputs, "betavae", ("irs", "review_mig", "dci_lasso"))
    assert chosen["irs"] == review.irs(inputs.representation, inputs.factors)
    assert chosen["review_mig"] == review.mig(inputs.representation, inputs.factors)
    lasso = review.dci_lasso(inputs.representation, inputs.factors)
    assert chosen["dci_lasso"] == pytest.approx(np.mean(list(lasso.values())))
    assert math.isnan(chosen["jemmig"]) and chosen["mig"] == plain["mig"]


def test_trial_config_metrics_are_checked():
    assert TrialConfig.from_dict({"model": "betavae", "metrics": "irs, jemmig"}).selected_metrics == ("irs", "jemmig")
    with pytest.raises(WeakdisError, match="metrics='irs,dci' names 'dci'"):
        TrialConfig.from_dict({"model": "betavae", "metrics": "irs,dci"})


def test_sweep_metrics_key_selects_columns_for_every_trial_and_optional_objectives_add_themselves():
    config = parse_sweep_config({**SWEEP, "metrics": ["irs", "mig_sup"], "objectives": {"jemmig": "max"}})
    assert config.fixed["metrics"] == "irs,mig_sup,jemmig"
    assert parse_sweep_config(config.to_dict()).fixed["metrics"] == "irs,mig_sup,jemmig"
    assert "metrics" not in parse_sweep_config(SWEEP).fixed
    with pytest.raises(WeakdisError, match="'mig', which is not an optional metric column"):
        parse_sweep_config({**SWEEP, "metrics": ["mig"]})
    with pytest.raises(WeakdisError, match="expected a list"):
        parse_sweep_config({**SWEEP, "metrics": "irs"})
