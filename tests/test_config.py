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
    config = TrialConfig(model="mae", tau=30, alpha=0.7, extra={"covariance_floor": 1e-3})
    assert TrialConfig.from_dict(config.to_dict()) == config
    assert config.replace(seed=3).seed == 3


@pytest.mark.parametrize(
    "values, message",
    [
        ({"stepz": 10}, "unknown key 'stepz'"),
        ({"model": "vae"}, "model='vae' is invalid; expected one of " + ", ".join(MODEL_NAMES)),
        ({"alpha": 1.5}, "alpha=1.5 is invalid; expected a number in [0, 1]"),
        ({"steps": 0}, "steps=0 is invalid; expected an integer >= 1"),
        ({"steps": 2.5}, "steps=2.5 is invalid; expected an integer"),
        ({"lr": 0}, "lr=0.0 is invalid; expected a finite number > 0"),
        ({"beta": float("nan")}, "beta=nan is invalid"),
        ({"precision": "fp16"}, "precision='fp16' is invalid; expected one of fp32, bf16"),
        ({"dataset": "dsprites"}, "expected 'dataset:version'"),
        ({"compile": "maybe"}, "compile='maybe' is invalid; expected a boolean (true/false)"),
        ({"tau_sampling": "balanced"}, "tau_sampling='balanced' is invalid; expected one of uniform, stratified"),
        ({"model": "absae", "covariance_floor": "small"}, "covariance_floor='small' is invalid; expected a number"),
        ({"model": "betavae", "covariance_floor": 0.1},
         "unknown key 'covariance_floor'; expected one of alpha,"),
        ({"model": "absae", "extra": {"partition_dim": 8}},
         "'partition_dim' is not a hyperparameter of model 'absae'; expected one of beta_ramp_steps, covariance_floor,"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(values, message):
    with pytest.raises(WeakdisError) as error:
        TrialConfig.from_dict(values, source="my.yaml")
    assert str(error.value).startswith("my.yaml: ")
    assert message in str(error.value)


def test_a_models_own_hyperparameters_are_set_at_the_top_level_and_typed_by_its_config_class():
    config = TrialConfig.from_dict({"model": "absae", "covariance_floor": "1e-3", "min_component_samples": "null"})
    assert config.extra == {"covariance_floor": 0.001, "min_component_samples": None}
    from trainables.models import AbsAEConfig

    model_config = AbsAEConfig.from_trial_config(config, None, model_name="absae")
    assert model_config.covariance_floor == 0.001


def test_a_field_added_to_a_model_config_is_settable_without_touching_trial_config(monkeypatch):
    import dataclasses

    from trainables.models import AbsAE

    @dataclasses.dataclass
    class WithKnob(AbsAE.config_cls):
        knob: int = 3

    monkeypatch.setattr(AbsAE, "config_cls", WithKnob)
    assert TrialConfig.from_dict({"model": "absae", "knob": "7"}).extra == {"knob": 7}
    with pytest.raises(WeakdisError, match="knob=2.5 is invalid; expected an integer"):
        TrialConfig.from_dict({"model": "absae", "knob": 2.5})
