"""The typed configuration of one trial: what a sweep samples and `weakdis train` reads."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from trainables.errors import WeakdisError

MODEL_NAMES = ("absae", "mae", "betavae", "factorvae", "betatcvae")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrialConfig:
    """One trial. The first block is the contract (design notes, section 3); the rest are extras.

    ``latent_dim`` is the whole code size; for ``mae`` it is the size of each factor's partition
    (the modular paper's 8), so the code has ``latent_dim * K`` dimensions.
    ``tau`` is a number of labelled training samples; ``alpha`` the acceptance threshold of the
    weak-disentanglement metrics; ``beta`` weighs the prior / KL / TC term and ``gamma`` the ReL.
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
    alpha: float = 0.5
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
    prior_refit_every: int = 0            # refit the mixture every N steps after warm-up (0 = fit once)
    dci_method: str = "fast"              # "fast" | "exact"
    relation_depth: int = 1               # depth of the relation_accuracy column
    compile: bool = False
    checkpoint_every: int = 0             # 0 = checkpoint at every evaluation
    log_every: int = 100                  # steps between divergence checks (a host sync each)
    extra: dict[str, Any] = field(default_factory=dict)   # a model's own extras

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "trial config") -> "TrialConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise WeakdisError(
                f"{source}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
            )
        kwargs = {}
        for name, value in values.items():
            kwargs[name] = _coerce(name, value, known[name], source)
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


def parse_bool(value: Any) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case) or a bool; ValueError otherwise."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)


def _coerce(name: str, value: Any, spec: dataclasses.Field, source: str) -> Any:
    """Turn strings from ``--set key=value`` and YAML numbers into the field's type."""
    annotation = str(spec.type)
    if value is None:
        if "None" in annotation:
            return None
        raise WeakdisError(f"{source}: {name} must not be null")
    try:
        if annotation.startswith("dict"):
            if not isinstance(value, Mapping):
                raise TypeError
            return dict(value)
        if annotation.startswith("bool"):
            return parse_bool(value)
        if annotation.startswith("int"):
            if isinstance(value, str) and value.strip().lower() in ("none", "null") and "None" in annotation:
                return None
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or float(number) != int(float(number)):
                raise ValueError
            return int(number)
        if annotation.startswith("float"):
            if isinstance(value, str) and value.strip().lower() in ("none", "null") and "None" in annotation:
                return None
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if annotation.startswith("str"):
            if isinstance(value, str) and value.strip().lower() in ("none", "null") and "None" in annotation:
                return None
            return str(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), e.g. --set steps=inf
        raise WeakdisError(f"{source}: {name}={value!r} is not a valid {annotation}") from None
    return value
