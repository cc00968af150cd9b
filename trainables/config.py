"""The typed configuration of one trial: what a sweep samples and `weakdis train` reads."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from weakdis.errors import WeakdisError
from weakdis.registry import MODEL_NAMES, OPTIONAL_METRIC_NAMES
from weakdis.values import coerce, field_types, parse_bool

PRECISIONS = ("fp32", "bf16")
TAU_SAMPLINGS = ("uniform", "stratified")


@dataclass
class TrialConfig:
    """One trial. The first block is the contract (design notes, section 3); the rest are extras.

    ``latent_dim`` is the whole code size; for ``mae`` it is the size of each factor's partition
    (the modular paper's 8), so the code has ``latent_dim * K`` dimensions.
    ``tau`` is a number of labelled training samples, drawn as ``tau_sampling`` says; ``alpha`` the
    acceptance threshold of the ``clustering_*`` / ``relation_*`` columns (every evaluation also
    reports the papers' alpha grid); ``beta`` weighs the prior / KL / TC term and ``gamma`` the ReL.

    A model's own hyperparameters (the fields of its config class that are not TrialConfig keys) go
    in ``extra``; ``from_dict`` also takes them at the top level, as sweeps and ``--set`` give them.
    """

    model: str = "absae"
    dataset: str = "dsprites:v2"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-4
    latent_dim: int = 8
    beta: float = 1.0
    gamma: float = 1.0
    tau: int = 1000
    alpha: float = 0.0
    warmup_steps: int = 200               # AbsAE / M-AE: steps before the mixture prior is fitted
    eval_every: int = 1000
    eval_points: int = 2000
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"

    # extras
    data_path: str | None = None          # an official-format file; None = generated into the cache
    data_images: int | None = 50000       # rows to generate when no file is given (None = full size)
    data_seed: int | None = None          # seeds which rows are generated / kept (None = seed); a sweep
                                          # sets one for all its trials so every seed sees the same images
    noise: str = "none"                   # "none" | "bernoulli" | "gaussian" | "mixed" augmentation
    noise_level: float = 0.1              # dropout probability or Gaussian std
    rel_batch_size: int = 128
    rel_lr: float | None = None           # None = lr
    disc_lr: float | None = None          # None = lr
    prior_refit_every: int = 50           # refit the mixture every N steps after warm-up (0 = fit once)
    dci_method: str = "fast"              # "fast" | "exact"
    relation_depth: int = 1               # depth of the relation_accuracy column
    compile: bool = False
    checkpoint_every: int = 0             # 0 = checkpoint at every evaluation
    log_every: int = 100                  # steps between divergence checks (a host sync each)
    tau_sampling: str = "uniform"         # "uniform" | "stratified" (one labelled sample per component first)
    metrics: str = ""                     # comma-separated optional metric columns to compute too (e.g. "irs,jemmig")
    extra: dict[str, Any] = field(default_factory=dict)   # a model's own extras

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "trial config") -> "TrialConfig":
        """A validated TrialConfig from YAML values or ``--set`` strings.

        Keys that are not TrialConfig fields but hyperparameters of the chosen model's config class
        are moved into ``extra``; ``extra`` is checked against that class too.
        """
        types = field_types(cls)
        model = values.get("model", cls.model)
        # A model's config class is read (importing the model code) only when its keys are used.
        uses_model_keys = bool(set(values) - set(types)) or bool(values.get("extra"))
        model_keys = model_extra_types(model) if uses_model_keys and model in MODEL_NAMES else {}
        unknown = sorted(set(values) - set(types) - set(model_keys))
        if unknown:
            raise WeakdisError(
                f"{source}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(types))}"
                + (f" or one of {model}'s hyperparameters: {', '.join(sorted(model_keys))}" if model_keys
                   else f" (model {model!r} has no hyperparameters of its own)" if model in MODEL_NAMES else "")
            )
        kwargs = {key: coerce(value, types[key], key=key, source=source)
                  for key, value in values.items() if key in types}
        extra = {**kwargs.get("extra", {}), **{key: value for key, value in values.items() if key not in types}}
        kwargs["extra"] = _coerce_model_extras(model, extra, model_keys, source)
        config = cls(**kwargs)
        config.validate(source=source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrialConfig":
        return TrialConfig.from_dict({**self.to_dict(), **changes})

    def validate(self, *, source: str = "trial config") -> None:
        def fail(key: str, expected: str) -> None:
            raise WeakdisError(f"{source}: {key}={getattr(self, key)!r} is invalid; expected {expected}")

        if self.model not in MODEL_NAMES:
            fail("model", "one of " + ", ".join(MODEL_NAMES))
        if ":" not in self.dataset:
            fail("dataset", "'dataset:version', e.g. 'dsprites:v2'")
        for key in ("steps", "batch_size", "latent_dim", "eval_points", "rel_batch_size", "relation_depth",
                    "log_every"):
            if getattr(self, key) < 1:
                fail(key, "an integer >= 1")
        for key in ("tau", "warmup_steps", "eval_every", "prior_refit_every", "checkpoint_every", "seed"):
            if getattr(self, key) < 0:
                fail(key, "an integer >= 0")
        for key in ("lr", "beta", "gamma", "noise_level"):
            value = getattr(self, key)
            if not math.isfinite(value) or value < 0 or (key == "lr" and value == 0):
                fail(key, "a finite number > 0" if key == "lr" else "a finite number >= 0")
        for key in ("rel_lr", "disc_lr"):
            value = getattr(self, key)
            if value is not None and (not math.isfinite(value) or value <= 0):
                fail(key, "a finite number > 0 or null")
        if not 0.0 <= self.alpha <= 1.0:
            fail("alpha", "a number in [0, 1]")
        if self.precision not in PRECISIONS:
            fail("precision", "one of " + ", ".join(PRECISIONS))
        if self.noise not in ("none", "bernoulli", "gaussian", "mixed"):
            fail("noise", "one of none, bernoulli, gaussian, mixed")
        if self.dci_method not in ("fast", "exact"):
            fail("dci_method", "one of fast, exact")
        if self.data_images is not None and self.data_images < 1:
            fail("data_images", "an integer >= 1 or null")
        if self.data_seed is not None and self.data_seed < 0:
            fail("data_seed", "an integer >= 0 or null")
        if self.tau_sampling not in TAU_SAMPLINGS:
            fail("tau_sampling", "one of " + ", ".join(TAU_SAMPLINGS))
        unknown = [name for name in self.selected_metrics if name not in OPTIONAL_METRIC_NAMES]
        if unknown:
            raise WeakdisError(f"{source}: metrics={self.metrics!r} names {unknown[0]!r}, which is not an optional "
                               f"metric column; expected a comma-separated list of {', '.join(OPTIONAL_METRIC_NAMES)}")

    @property
    def selected_metrics(self) -> tuple[str, ...]:
        """The optional metric columns ``metrics`` lists (computed besides the default ones)."""
        return tuple(name.strip() for name in self.metrics.split(",") if name.strip())


def model_extra_types(model: str) -> dict[str, Any]:
    """The hyperparameters of ``model`` that a trial sets through ``extra``: the fields of its
    config class that are not TrialConfig keys, with their types."""
    from trainables.models import model_class   # imports torch: only when a model is named

    config_cls = model_class(model).config_cls
    return {key: hint for key, hint in field_types(config_cls).items() if key in config_cls.extra_keys()}


def _coerce_model_extras(model: Any, extra: Mapping[str, Any], model_keys: Mapping[str, Any],
                         source: str) -> dict[str, Any]:
    if not extra or model not in MODEL_NAMES:
        return dict(extra)
    out = {}
    for key, value in extra.items():
        if key not in model_keys:
            raise WeakdisError(
                f"{source}: {key!r} is not a hyperparameter of model {model!r}; expected one of "
                f"{', '.join(sorted(model_keys)) or '(none)'}"
            )
        out[key] = coerce(value, model_keys[key], key=key, source=source)
    return out


__all__ = ["MODEL_NAMES", "PRECISIONS", "TAU_SAMPLINGS", "TrialConfig", "model_extra_types", "parse_bool"]
