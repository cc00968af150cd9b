"""What tau labelled images alone teach the models' encoder: the encoder (trainables.models.networks,
the AbsAE's and M-AE's) trained as a plain classifier of every relevant factor on the tau labelled
training images of a version (one cross-entropy head per factor), scored on held-out test images.

The weak models see the same tau labels and no others; where this classifier cannot read a factor
from test images, no term on the labelled images can put that factor into a partition of its own
for test images either (docs/reproduction.md quotes it for the every-orientation dSprites versions,
where 1,000 labels teach shape at ~0.45). It is not a training-speed benchmark.

    python benchmarks/supervised_probe.py VERSION [--tau 1000] [--steps 3000] [--seed 0]
        [--data-path FILE] [--images 50000] [--test 3000] [--batch-size 64] [--noise-level 0.3]

Images come from ``--data-path`` or the generated cache file of ``--images`` rows (seed 0, as
``weakdis train --set data_images=...``); the labelled images are drawn as training draws them
(uniform, ``--seed``). Batches get the ``mixed`` augmentation at ``--noise-level`` (the authors'
clean, Gaussian and dropout copies; 0 turns it off). Adam at lr 1e-3. Prints the test accuracy of
each factor (and its chance level) four times during training.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trainables.data import load_dataset
from trainables.data.dataset import NoiseConfig
from trainables.models.factored import predictor_cross_entropy
from trainables.models.networks import image_size_of, make_encoder

LEARNING_RATE = 1e-3


def factor_accuracies(logits: torch.Tensor, factors: torch.Tensor, sizes) -> list[float]:
    """Accuracy of each factor's head: ``logits [n, sum(sizes)]`` against ``factors [n, K]``."""
    heads = torch.split(logits, list(sizes), dim=1)
    return [float((head.argmax(1) == factors[:, k]).float().mean()) for k, head in enumerate(heads)]


def main(argv: list[str] | None = None) -> list[list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="dataset version, e.g. dsprites:v3")
    parser.add_argument("--tau", type=int, default=1000, help="labelled training images (default 1000)")
    parser.add_argument("--steps", type=int, default=3000, help="classifier steps (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the labelled draw, the network and the batches")
    parser.add_argument("--data-path", default=None, help="an official-format file (default: the generated cache)")
    parser.add_argument("--images", type=int, default=50000, help="generated rows when no file is given")
    parser.add_argument("--test", type=int, default=3000, help="test images scored (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--noise-level", type=float, default=0.3, help="mixed augmentation level; 0 = none")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    data = load_dataset(args.version, args.data_path, generate_images=None if args.data_path else args.images)
    sizes = data.factor_sizes
    encoder = make_encoder(data.num_channels, sum(sizes), image_size_of(data.spec))
    optimiser = torch.optim.Adam(encoder.parameters(), lr=LEARNING_RATE)
    labelled = data.labelled_indices(args.tau, args.seed)
    test = data.splits["test"][: args.test]
    generator = torch.Generator().manual_seed(args.seed)
    noise = NoiseConfig.from_level("mixed", args.noise_level) if args.noise_level > 0 else None

    def score() -> list[float]:
        encoder.eval()
        with torch.no_grad():
            logits = torch.cat([encoder(data.batch(test[i:i + 500])) for i in range(0, len(test), 500)])
        encoder.train()
        return factor_accuracies(logits, data.factors[test], sizes)

    chance = ", ".join(f"{name} {1 / size:.2f}" for name, size in zip(data.spec.factor_names, sizes))
    print(f"{data.spec.name}: tau {args.tau}, {len(test)} test images; chance: {chance}")
    reports, start = [], time.perf_counter()
    every = max(args.steps // 4, 1)
    for step in range(1, args.steps + 1):
        picks = labelled[torch.randint(len(labelled), (args.batch_size,), generator=generator)]
        logits = encoder(data.batch(picks, noise=noise, generator=generator))
        loss = predictor_cross_entropy(logits, data.factors[picks], sizes)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % every == 0 or step == args.steps:
            accuracies = score()
            reports.append(accuracies)
            read = ", ".join(f"{name} {a:.3f}" for name, a in zip(data.spec.factor_names, accuracies))
            print(f"  step {step}: test accuracy {read}  ({time.perf_counter() - start:.0f} s)", flush=True)
    return reports


if __name__ == "__main__":
    main()
