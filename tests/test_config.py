"""TrialConfig: the typed trial configuration and its validation messages."""
from __future__ import annotations

import pytest

from trainables.config import MODEL_NAMES, TrialConfig
from trainables.errors import WeakdisError


def test_strings_from_the_command_line_are_coerced_to_field_types():
    config = TrialConfig.from_dict(
        {"steps": "300", "beta": "2.5", "compile": "true", "data_path": "none", "model": "betavae"}
    )
    assert config.steps == 300 and isinstance(config.steps, int)
    assert config.beta == 2.5
    assert config.compile is True
    assert config.data_path is None
    assert config.model == "betavae"


def test_round_trip_through_dict():
    config = TrialConfig(model="mae", tau=30, alpha=0.7, extra={"partition_dim": 8})
    assert TrialConfig.from_dict(config.to_dict()) == config
    assert config.replace(seed=3).seed == 3


@pytest.mark.parametrize(
    "values, message",
    [
        ({"stepz": 10}, "unknown key 'stepz'"),
        ({"model": "vae"}, "model='vae' is invalid; expected one of " + ", ".join(MODEL_NAMES)),
        ({"alpha": 1.5}, "alpha=1.5 is invalid; expected a number in [0, 1]"),
        ({"steps": 0}, "steps=0 is invalid; expected an integer >= 1"),
        ({"steps": 2.5}, "steps=2.5 is not a valid int"),
        ({"lr": 0}, "lr=0.0 is invalid; expected a finite number > 0"),
        ({"beta": float("nan")}, "beta=nan is invalid"),
        ({"precision": "fp16"}, "precision='fp16' is invalid; expected one of fp32, bf16"),
        ({"dataset": "dsprites"}, "expected 'dataset:version'"),
        ({"compile": "maybe"}, "compile='maybe' is not a valid bool"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(values, message):
    with pytest.raises(WeakdisError) as error:
        TrialConfig.from_dict(values, source="my.yaml")
    assert str(error.value).startswith("my.yaml: ")
    assert message in str(error.value)
