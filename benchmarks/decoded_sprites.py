"""How many sprites a trained dSprites model's decoded images hold, and which factors they show: its
reconstructions, its ReL's outputs (each relation applied once to test codes), its decoded prior
means and samples of its prior's components. Each should hold exactly one sprite, showing the
input's factors (reconstructions), the moved factors (ReL outputs) or the component's factors
(prior means and samples); M-AE's ReL outputs and prior means often hold a second sprite where a
factor moved (docs/reproduction.md, "`dsprites-fig5-cpu-r1` as packaged"). On a colour dataset
(Shapes3D) sprites are not counted (shown as "-") and only the factors are read; the test images'
row says how well this reader tells the factors apart at all (on Shapes3D it confuses cubes and
cylinders in real images too). For M-AE it also prints how well a
logistic regression on each partition's codes predicts each factor (5-fold; the partition's own
factor should be near 1, the others near chance).

    python benchmarks/decoded_sprites.py TRIAL_DIR [TRIAL_DIR ...] [--images 500] [--reference 20000]

TRIAL_DIR: a ``weakdis train`` output directory or a sweep trial's checkpoint directory. A sprite is
a connected region of at least ``MIN_PIXELS`` pixels above ``THRESHOLD`` in the decoded image. The
factors a decoded image shows are those of its nearest training image in pixel space (Euclidean, over
at most ``--reference`` training images drawn with seed 0); the test images themselves are read the
same way, as a check of that reader. The prior samples are ``--images`` draws, the component uniform,
with seed 0.
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


def read_factors(images: np.ndarray, reference_images: np.ndarray, reference_factors: np.ndarray,
                 chunk: int = 512) -> np.ndarray:
    """int [N, K]: the factors ``reference_factors [M, K]`` of each image's nearest (Euclidean) image in
    ``reference_images [M, ...]``; ``images [N, ...]`` has the reference's image shape."""
    reference = torch.as_tensor(np.asarray(reference_images, dtype=np.float32)).flatten(1)
    queries = torch.as_tensor(np.asarray(images, dtype=np.float32)).flatten(1)
    if queries.shape[1] != reference.shape[1] or len(reference) != len(reference_factors):
        raise ValueError(f"read_factors: images {tuple(np.shape(images))}, reference images "
                         f"{tuple(np.shape(reference_images))} and factors {tuple(np.shape(reference_factors))} "
                         "do not match")
    squared = (reference * reference).sum(1)
    nearest = torch.cat([(squared - 2 * block @ reference.T).argmin(1) for block in queries.split(chunk)])
    return np.asarray(reference_factors)[nearest.numpy()]


def _line(name: str, counts: np.ndarray | None, shown: np.ndarray, expected: np.ndarray) -> str:
    """``counts`` None: sprites not counted (a colour dataset)."""
    per_factor = " ".join(f"{share:.3f}" for share in (shown == expected).mean(0))
    shares = ("-", "-", "-") if counts is None else \
        tuple(f"{np.mean(c):.3f}" for c in (counts == 0, counts == 1, counts >= 2))
    return (f"  {name:<14} {len(shown):>5}  none {shares[0]}  one {shares[1]}  two or more {shares[2]}  "
            f"factors {np.mean((shown == expected).all(1)):.3f} ({per_factor})")


def _sample(split: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    split = split.cpu()
    return split[torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]]


@torch.no_grad()
def report(path: str, images: int, reference: int = 20000) -> list[str]:
    from trainables.loop import load_trial
    from trainables.models.capabilities import HasMixturePrior

    cfg, model, dataset = load_trial(path)
    counted = dataset.num_channels == 1
    device = dataset.images.device
    known = _sample(dataset.splits["train"], reference, 0).to(device)
    known_images, known_factors = dataset.batch(known).cpu().numpy(), dataset.factors[known].cpu().numpy()
    test = _sample(dataset.splits["test"], images, 0).to(device)
    x, factors = dataset.batch(test), dataset.factors[test].cpu().numpy()
    z = model.encode(x)

    def row(name: str, images: np.ndarray, expected: np.ndarray) -> str:
        return _line(name, count_sprites(images) if counted else None,
                     read_factors(images, known_images, known_factors), expected)

    def decoded(codes: torch.Tensor, chunk: int = 500) -> np.ndarray:
        # in chunks: the decoder's activations for shapes3d:v5's 12,000 prior means at once take ~10 GB
        return np.concatenate([torch.sigmoid(model.decode(block).float()).cpu().numpy()
                               for block in codes.split(chunk)])

    names = ", ".join(model.spec.factor_names)
    lines = [f"{path}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}, {len(x)} test images, factors read from "
             f"the nearest of {len(known)} training images" + ("" if counted else "; sprites not counted "
                                                                 f"({dataset.num_channels} channels)"),
             f"  decoded        count  sprites per image (shares)  factors shown as expected: all ({names})",
             row("test images", x.float().cpu().numpy(), factors),
             row("reconstruction", decoded(z), factors)]
    sizes = tuple(model.spec.factor_sizes)
    combination = np.ravel_multi_index(tuple(factors.T), sizes)
    targets = model.relation_targets() if getattr(model, "relations", ()) else None
    for index, relation in enumerate(getattr(model, "relations", ())):
        chosen = torch.full((len(x),), index, dtype=torch.int64, device=z.device)
        moved = np.stack(np.unravel_index(targets[index, combination], sizes), axis=1)
        lines.append(row(getattr(relation, "name", str(index)), decoded(model.relational_model(z, chosen)), moved))
    if isinstance(model, HasMixturePrior) and model.prior.fitted:
        means = torch.as_tensor(model.prior.means).float().to(z.device)
        component_factors = model.prior.component_factors.cpu().numpy()
        lines.append(row("prior means", decoded(means), component_factors))
        generator = torch.Generator(device=means.device).manual_seed(0)
        components = torch.randint(len(component_factors), (len(x),), generator=generator, device=means.device)
        samples = model.prior.sample(len(x), components, generator).float()
        lines.append(row("prior samples", decoded(samples), component_factors[components.cpu().numpy()]))
    if cfg.model == "mae":
        lines += _partition_probe(model, dataset, cfg.latent_dim)
    return lines


def _partition_probe(model, dataset, width: int, n: int = 2000) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    pick = _sample(dataset.splits["test"], n, 0)
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
    parser.add_argument("--reference", type=int, default=20000,
                        help="training images the shown factors are read from (default 20000)")
    args = parser.parse_args(argv)
    for path in args.trials:
        print("\n".join(report(path, args.images, args.reference)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
