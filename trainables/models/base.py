"""What every model shares: the config mapping from TrialConfig, optimisers, RNG, precision, state.

A model owns its networks, its Adam optimisers and a ``torch.Generator`` on its device (prior samples,
reparameterisation noise, permutations), seeded from ``config.seed``; networks are initialised under
that seed too, so the same seed gives the same numbers. ``state_dict()`` holds all of it so a reloaded
model continues bit-identically on the same device type.
"""
from __future__ import annotations

import contextlib
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import torch
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.parallel import average_gradients, broadcast_module, world_size
from weakdis.seeds import derive_seed
from weakdis.values import coerce

STATE_FORMAT = "weakdis-model/1"
PRECISIONS = ("fp32", "bf16")


@dataclass
class ModelConfig:
    """Fields every model reads from the trial config (the contract keys it needs)."""

    latent_dim: int = 8
    beta: float = 1.0
    lr: float = 1e-4
    precision: str = "fp32"
    compile: bool = False
    seed: int = 0

    # TrialConfig attributes copied into the dataclass; every other field is a model extra that a
    # trial sets through ``TrialConfig.extra``.
    TRIAL_KEYS: ClassVar[tuple[str, ...]] = ("latent_dim", "beta", "lr", "precision", "compile", "seed")

    @classmethod
    def extra_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls.TRIAL_KEYS)

    @classmethod
    def from_trial_config(cls, trial_config: Any, dataset: Any = None, *, model_name: str = "model") -> "ModelConfig":
        """Map a :class:`trainables.config.TrialConfig` (and its ``extra`` dict) to this config."""
        values = {key: getattr(trial_config, key) for key in cls.TRIAL_KEYS}
        extras: Mapping[str, Any] = getattr(trial_config, "extra", None) or {}
        allowed = cls.extra_keys()
        hints = typing.get_type_hints(cls)
        for key, value in extras.items():
            if key not in allowed:
                raise WeakdisError(
                    f"trial config extra: unknown key {key!r} for model {model_name!r}; expected one of "
                    f"{', '.join(allowed) if allowed else '(none)'}"
                )
            values[key] = coerce(value, hints[key], key=key, source=f"trial config extra for model {model_name!r}")
        values.update(cls.defaults_from_dataset(dataset, values, extras))
        config = cls(**values)
        config.validate(model_name)
        return config

    @classmethod
    def defaults_from_dataset(cls, dataset: Any, values: dict[str, Any], extras: Mapping[str, Any]) -> dict[str, Any]:
        """Values a model derives from the dataset when the trial does not set them (override)."""
        return {}

    def validate(self, model_name: str = "model") -> None:
        def fail(key: str, expected: str) -> None:
            raise WeakdisError(f"{model_name} config: {key}={getattr(self, key)!r} is invalid; expected {expected}")

        if self.latent_dim < 1:
            fail("latent_dim", "an integer >= 1")
        if not self.lr > 0:
            fail("lr", "a number > 0")
        if not self.beta >= 0:
            fail("beta", "a number >= 0")
        if self.precision not in PRECISIONS:
            fail("precision", "one of " + ", ".join(PRECISIONS))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_lr") and value is not None and not value > 0:
                fail(f.name, "a number > 0 or null (= lr)")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (network initialisation) under ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def make_adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam, fused where the parameters' device has a fused kernel, else the foreach variant."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


class WeakdisModel(nn.Module):
    """Base of every model: see the "Models" section of docs/architecture.md for the interface."""

    name: ClassVar[str] = "model"
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig, spec: Any, num_channels: int) -> None:
        super().__init__()
        if num_channels not in (1, 3):
            raise WeakdisError(f"{self.name}: num_channels={num_channels!r}; expected 1 or 3")
        self.config = config
        self.spec = spec
        self.num_channels = int(num_channels)
        self._generator: torch.Generator | None = None
        self._pending_rng_state: Tensor | None = None
        self._synced = False
        self._networks_compiled = False
        self._channels_last = False

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_trial_config(cls, trial_config: Any, dataset: Any) -> "WeakdisModel":
        config = cls.config_cls.from_trial_config(trial_config, dataset, model_name=cls.name)
        return cls(config, dataset.spec, dataset.num_channels)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Name -> optimiser; subclasses fill ``self._optimizers``."""
        return self._optimizers

    def compile_networks(self) -> None:
        """``Module.compile`` every sub-network in place (state_dict keys unchanged); idempotent."""
        if self._networks_compiled:
            return
        for child in self.children():
            if any(True for _ in child.parameters()):
                child.compile()
        self._networks_compiled = True

    # ---- device, RNG, precision --------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def generator(self) -> torch.Generator:
        """The model's own random stream, on the model's device (recreated if the model moved)."""
        device = self.device
        g = self._generator
        if g is None or g.device.type != device.type or (device.index is not None and g.device.index != device.index):
            g = torch.Generator(device=device)
            g.manual_seed(derive_seed(self.config.seed, "model"))
            if self._pending_rng_state is not None:
                g.set_state(self._pending_rng_state)
                self._pending_rng_state = None
            self._generator = g
        return g

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for the networks when ``precision == "bf16"``."""
        if self.config.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def full_precision(self) -> contextlib.AbstractContextManager:
        """Autocast off: priors, log-densities and losses are computed in float32."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    def prepare_images(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            raise WeakdisError(f"{self.name}: got uint8 images; expected float images in [0, 1]")
        if x.is_cuda:
            # Channels-last conv weights and inputs give the fast BatchNorm / conv kernels on GPUs
            # (benchmarks/RESULTS.md); on CPUs they cost ~2.7x, so CPU tensors stay contiguous.
            # Converting parameters in place keeps the optimisers' references valid.
            if not self._channels_last:
                self.to(memory_format=torch.channels_last)
                self._channels_last = True
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    # ---- optimisation ------------------------------------------------------------------------
    def _sync_start(self) -> None:
        """On the first step under torch.distributed, start every rank from rank 0's weights."""
        if not self._synced:
            if world_size() > 1:
                broadcast_module(self)
            self._synced = True

    def _optimise(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(optimizer_params(optimizer))
        optimizer.step()

    # ---- the common interface ----------------------------------------------------------------
    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:   # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:   # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        with self.autocast():
            return self.decoder(z).float()

    def reconstruct(self, x: Tensor) -> Tensor:
        """Probabilities ``[B, C, 64, 64]`` of the decoded codes of ``x``."""
        return torch.sigmoid(self.decode(self.encode(x)))

    def representation(self, x: Tensor) -> dict[str, Tensor | None]:
        codes = self.encode(x)
        return {"factors": None, "codes": codes}

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """Networks and prior buffers, optimisers and the RNG state (plain module state when called
        with arguments, i.e. from a parent module)."""
        if args or kwargs:
            return super().state_dict(*args, **kwargs)
        return {
            "format": STATE_FORMAT,
            "model": self.name,
            "modules": super().state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
            "rng": self.generator().get_state(),
            "rng_device": self.device.type,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        if state.get("format") != STATE_FORMAT:
            return super().load_state_dict(state, strict=strict, assign=assign)
        if state.get("model") != self.name:
            raise WeakdisError(f"state of model {state.get('model')!r} cannot be loaded into model {self.name!r}")
        result = super().load_state_dict(state["modules"], strict=strict, assign=assign)
        optimizers = self.optimizers()
        if set(state["optimizers"]) != set(optimizers):
            raise WeakdisError(
                f"{self.name}: saved optimisers {sorted(state['optimizers'])}; expected {sorted(optimizers)}")
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        rng = state["rng"].cpu() if isinstance(state["rng"], Tensor) else torch.as_tensor(state["rng"])
        if state.get("rng_device") == self.device.type:
            self._generator = None
            self._pending_rng_state = rng
        self.load_extra_state(state.get("extra", {}))
        return result

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass
