"""The one way ``analysis`` reads a trained trial: its image grids, decoded from a checkpoint.

Everything else in ``analysis`` reads the files a sweep writes (``analysis.results``); only the image
grids need the model itself. ``read_trial_images`` is the single place where ``analysis`` imports the
training package (and so torch), and only when it is called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrialImages:
    """The image grids of one trained trial (uint8 arrays as ``trainables.images`` tiles them).

    ``prior_means`` is None for a model without a mixture prior; ``relations`` (and
    ``relation_names``) are empty for a model without a relational learner. ``relation_arity`` 2 (HWF)
    means each row of ``relations`` starts with two operands, not an input and its reconstruction.
    """

    model: str
    dataset: str
    reconstructions: np.ndarray
    prior_means: np.ndarray | None
    relations: np.ndarray | None
    relation_names: tuple[str, ...]
    relation_arity: int = 1


def read_trial_images(trial: str | os.PathLike | tuple[Any, Any, Any], *, reconstructions: int = 8,
                      relation_images: int = 4, max_prior_means: int = 64, seed: int = 0,
                      device: str = "cpu") -> TrialImages:
    """Decode the image grids of a trial.

    ``trial``: a checkpoint directory written by ``trainables.train`` (or a ``weakdis train`` output
    directory), or the ``(config, model, dataset)`` that ``trainables.load_trial`` returns. Raises
    ``WeakdisError`` for a checkpoint that cannot be read.
    """
    from trainables.images import prior_means_grid, reconstruction_grid, relation_grid
    from trainables.models.capabilities import HasMixturePrior, HasRelationalLearner

    if isinstance(trial, (str, bytes, os.PathLike)):
        from trainables.loop import load_trial

        trial = load_trial(trial, device=device)
    config, model, dataset = trial
    has_prior = isinstance(model, HasMixturePrior) and model.prior is not None
    has_relations = isinstance(model, HasRelationalLearner) and bool(model.relations)
    return TrialImages(
        model=str(config.model),
        dataset=str(config.dataset),
        reconstructions=reconstruction_grid(model, dataset, n=reconstructions, seed=seed),
        prior_means=prior_means_grid(model, max_images=max_prior_means) if has_prior else None,
        relations=relation_grid(model, dataset, n=relation_images, seed=seed) if has_relations else None,
        relation_names=tuple(getattr(r, "name", str(r)) for r in model.relations) if has_relations else (),
        relation_arity=int(getattr(model, "relation_arity", 1)),
    )


def read_trial_codes(checkpoints: list[str | os.PathLike], *, num_points: int = 1000, seed: int = 0,
                     device: str = "cpu") -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(posterior means or codes [n, D], log-variances [n, D] or None) of each trial on the same
    ``num_points`` test images: those of the first trial's dataset, chosen with ``seed``."""
    import torch

    from trainables.loop import load_trial

    images = None
    out = []
    for path in checkpoints:
        _, model, dataset = load_trial(path, device=device)
        if images is None:
            test = dataset.splits["test"].cpu()
            generator = torch.Generator().manual_seed(int(seed))
            chosen = test[torch.randperm(len(test), generator=generator)[: min(num_points, len(test))]]
            images = dataset.batch(chosen.to(dataset.images.device))
        with torch.no_grad():
            if hasattr(model, "posterior"):
                mean, logvar = model.posterior(images.to(next(model.parameters()).device))
                out.append((mean.float().cpu().numpy(), logvar.float().cpu().numpy()))
            else:
                out.append((model.encode(images).float().cpu().numpy(), None))
    return out
