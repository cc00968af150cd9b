"""How many sprites a trained dSprites model's decoded images hold: its reconstructions, its ReL's
outputs (each relation applied once to test codes) and its decoded prior means. Each should hold
exactly one; M-AE's ReL outputs and prior means often hold a second one where a factor moved
(docs/reproduction.md, "`dsprites-fig5-cpu-r1` as packaged"). For M-AE it also prints how well a
logistic regression on each partition's codes predicts each factor (5-fold; the partition's own
factor should be near 1, the others near chance).

    python benchmarks/decoded_sprites.py TRIAL_DIR [TRIAL_DIR ...] [--images 500]

TRIAL_DIR: a ``weakdis train`` output directory or a sweep trial's checkpoint directory. A sprite is
a connected region of at least ``MIN_PIXELS`` pixels above ``THRESHOLD`` in the decoded image.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from scipy import ndimage

THRESHOLD = 0.5
MIN_PIXELS = 4


def count_sprites(images: np.ndarray, threshold: float = THRESHOLD, min_pixels: int = MIN_PIXELS) -> np.ndarray:
    """int [N]: connected regions (4-connectivity) of at least ``min_pixels`` pixels above
    ``threshold`` in each single-channel image of ``images [N, 1, H, W]`` or ``[N, H, W]``."""
    images = np.asarray(images)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"count_sprites: expected single-channel images, got shape {images.shape}")
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"count_sprites: expected images [N, 1, H, W] or [N, H, W], got shape {images.shape}")
    counts = np.zeros(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        labels, n = ndimage.label(image > threshold)
        if n:
            counts[i] = int((np.bincount(labels.ravel())[1:] >= min_pixels).sum())
    return counts


def _line(name: str, counts: np.ndarray) -> str:
    return (f"  {name:<14} {len(counts):>5}  none {np.mean(counts == 0):.3f}  one {np.mean(counts == 1):.3f}  "
            f"two or more {np.mean(counts >= 2):.3f}")


@torch.no_grad()
def report(path: str, images: int) -> list[str]:
    from trainables.images import _prior_codes, _test_images
    from trainables.loop import load_trial
    from trainables.models.capabilities import HasMixturePrior

    cfg, model, dataset = load_trial(path)
    if dataset.num_channels != 1:
        raise SystemExit(f"{path}: {cfg.dataset} has {dataset.num_channels} channels; sprites are counted in "
                         "single-channel (dSprites) images")
    x = _test_images(dataset, images, 0)
    z = model.encode(x)

    def decoded(codes: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(model.decode(codes).float()).cpu().numpy()

    lines = [f"{path}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}, {len(x)} test images",
             "  decoded        count  sprites per image (shares)", _line("reconstruction", count_sprites(decoded(z)))]
    for index, relation in enumerate(getattr(model, "relations", ())):
        chosen = torch.full((len(x),), index, dtype=torch.int64, device=z.device)
        lines.append(_line(getattr(relation, "name", str(index)), count_sprites(decoded(model.relational_model(z, chosen)))))
    if isinstance(model, HasMixturePrior) and model.prior.fitted:
        codes, _ = _prior_codes(model.prior, 64)
        lines.append(_line("prior means", count_sprites(decoded(codes.to(z.device)))))
    if cfg.model == "mae":
        lines += _partition_probe(model, dataset, cfg.latent_dim)
    return lines


def _partition_probe(model, dataset, width: int, n: int = 2000) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    test = dataset.splits["test"].cpu()
    pick = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n]]
    codes = model.encode(dataset.batch(pick.to(dataset.images.device))).cpu().numpy()
    factors = dataset.factors[pick.to(dataset.device)].cpu().numpy()
    names = list(model.spec.factor_names)
    lines = ["  partition -> factor accuracy (logistic regression, 5-fold): " + ", ".join(names)]
    for p, name in enumerate(names):
        part = codes[:, p * width:(p + 1) * width]
        scores = [cross_val_score(LogisticRegression(max_iter=2000), part, factors[:, k], cv=5).mean()
                  for k in range(len(names))]
        lines.append(f"  {name:<14} " + " ".join(f"{s:.3f}" for s in scores))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", nargs="+", help="trial output or checkpoint directories")
    parser.add_argument("--images", type=int, default=500, help="test images (default 500)")
    args = parser.parse_args(argv)
    for path in args.trials:
        print("\n".join(report(path, args.images)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
