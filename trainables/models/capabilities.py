"""What a model can do beyond the common interface, as protocols.

``weakdis.registry.MODELS`` declares the capabilities of each model; code that needs one checks the
declaration (``model_entry(name).has(MIXTURE_PRIOR)``) and reads the model through the protocol
below. A test checks that every model declaring a capability has these members.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from weakdis.registry import MIXTURE_PRIOR, RELATIONAL_LEARNER, WEAK_SUPERVISION, model_entry


@runtime_checkable
class HasMixturePrior(Protocol):
    """A Gaussian-mixture prior fitted from labelled samples.

    ``prior`` is a ``GaussianMixturePrior`` (``means`` [C, D], ``covariances`` [C, D, D],
    ``component_factors`` [C, K]) or a ``ModularPrior`` (``priors``, ``slices``), as
    ``analysis.metrics.weak`` reads them; once it is fitted, ``representation(x)["factors"]`` holds
    the factor values of the most likely component (None before).
    """

    prior: Any


@runtime_checkable
class HasRelationalLearner(Protocol):
    """A relational learner that maps codes of one prior component to the target component of a
    relation: ``relational_model(z [B, D], relation [B]) -> z_out [B, D]``; ``relations`` is the
    dataset's relation table and ``relation_targets()`` int [R, C] the target of each component."""

    relations: Any

    def relational_model(self, z: Tensor, relation: Tensor) -> Tensor: ...

    def relation_targets(self) -> Any: ...


@runtime_checkable
class TakesWeakSupervision(Protocol):
    """Takes the tau labelled samples (uint8 images on the device and their factor values); a model
    whose ``unlabelled_wanted`` attribute is > 0 also takes that many unlabelled training images
    through ``set_unlabelled(images)``."""

    def set_supervision(self, images: Tensor, factors: Tensor) -> None: ...


PROTOCOLS: dict[str, type] = {
    MIXTURE_PRIOR: HasMixturePrior,
    RELATIONAL_LEARNER: HasRelationalLearner,
    WEAK_SUPERVISION: TakesWeakSupervision,
}


def declares(model: Any, capability: str) -> bool:
    """Whether the registry declares ``capability`` for ``model`` (by its ``name``)."""
    return model_entry(model.name).has(capability)


def relational_model_numpy(model: Any, device: torch.device):
    """``model.relational_model`` as a function of numpy arrays, as ``analysis.metrics`` calls it."""

    @torch.no_grad()
    def apply(codes: np.ndarray, relation: np.ndarray, second: np.ndarray | None = None) -> np.ndarray:
        z = torch.as_tensor(codes, dtype=torch.float32, device=device)
        r = torch.as_tensor(relation, dtype=torch.int64, device=device)
        if second is None:
            return model.relational_model(z, r).float().cpu().numpy()
        z2 = torch.as_tensor(second, dtype=torch.float32, device=device)
        return model.relational_model(z, r, z2).float().cpu().numpy()

    return apply


def relational_outputs_numpy(model: Any, device: torch.device):
    """A binary ReL's ``relational_outputs`` as a function of numpy arrays: ``(codes [n, O, D], sign
    logits [n] or None)``."""

    @torch.no_grad()
    def apply(codes: np.ndarray, relation: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        z, z2 = (torch.as_tensor(values, dtype=torch.float32, device=device) for values in (codes, second))
        out, sign = model.relational_outputs(z, z2, torch.as_tensor(relation, dtype=torch.int64, device=device))
        return out.float().cpu().numpy(), None if sign is None else sign.float().cpu().numpy()

    return apply
