"""How a trained AbsAE's or M-AE's relation accuracy falls with depth, step by step, and what more
ReL iterations on its final prior (``rel_final_iterations``) make of it.

A chain of ``--samples`` prior samples (uniform components, one relation drawn per sample per step,
torch seed ``--seed``): at each depth the accuracy (every factor of the predicted combination right),
the error at that step of the chains right so far (constant: independent errors compounding; rising:
the ReL drifting on its own outputs) and the median squared Mahalanobis distance of the outputs to
their true component; then the same chain with each step's input a fresh sample of the component the
last output was classified to (where the ReL's outputs on-manifold would leave it). Last, the
trial's own ``relation_accuracy`` columns at depths 1 / 5 / 10 (``relation_accuracy_grid`` with the
trial's seed and ``eval_points``, both readings). With ``--final-iterations N`` the model's
``finish_training`` then runs N ReL iterations on the final prior and everything is read again.
docs/reproduction.md ("Depth on shapes3d:v5") quotes it.

    python benchmarks/relation_depth.py TRIAL_DIR [--final-iterations 12000] [--samples 2000] [--depth 10]

Only the checkpoint is read: the model is rebuilt on a few generated rows of the trial's dataset
version (no images are needed), so shapes3d:v5's 480,000 images are not loaded. Nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC_ROWS = 3000   # generated rows the model is rebuilt on: it needs the version's factors, not its images


def load_model(path: str, final_iterations: int):
    """(config, model in eval mode, checkpoint step) from a trial's checkpoint, with
    ``rel_final_iterations`` set."""
    from trainables.checkpoint import has_checkpoint, load_checkpoint, load_model_state
    from trainables.loop import build_trial_model, load_trial_dataset
    from weakdis.registry import RELATIONAL_LEARNER, model_entry

    directory = Path(path)
    if not has_checkpoint(directory) and has_checkpoint(directory / "checkpoint"):
        directory = directory / "checkpoint"
    if not has_checkpoint(directory):
        raise SystemExit(f"{path}: no checkpoint (expected a weakdis train output or checkpoint directory)")
    cfg, state = load_checkpoint(directory, map_location="cpu")
    if not model_entry(cfg.model).has(RELATIONAL_LEARNER):
        raise SystemExit(f"{path}: {cfg.model} has no relational learner")
    rows = min(SPEC_ROWS, cfg.data_images) if cfg.data_images else SPEC_ROWS
    cfg = cfg.replace(device="cpu", data_path=None, data_images=rows, data_seed=0,
                      extra={**cfg.extra, "rel_final_iterations": final_iterations})
    model = build_trial_model(cfg, load_trial_dataset(cfg, torch.device("cpu")))
    load_model_state(model, state["model"], directory)
    model.eval()
    step = int(state["step"])
    if not model.prior.fitted:
        raise SystemExit(f"{path}: {cfg.model} has no fitted mixture prior (still in its warm-up at step {step})")
    if model.relation_arity != 1:
        raise SystemExit(f"{path}: the relations of {cfg.dataset} are binary; this script follows unary chains")
    return cfg, model, step


@torch.no_grad()
def chain(model, samples: int, depth: int, seed: int, resample: bool) -> list[dict[str, float]]:
    """Per depth: ``accuracy``, ``error_if_right_so_far`` and ``mahalanobis2`` (median) of one chain."""
    prior = model.prior
    targets = torch.as_tensor(np.asarray(model.relation_targets()), dtype=torch.int64)
    factors = prior.component_factors.cpu()
    means, covariances = prior.means.double(), prior.covariances.double()
    g = torch.Generator().manual_seed(seed)
    components = torch.randint(prior.num_components, (samples,), generator=g)
    codes = prior.sample(samples, components, g)
    right_so_far = torch.ones(samples, dtype=torch.bool)
    rows = []
    for _ in range(depth):
        relation = torch.randint(targets.shape[0], (samples,), generator=g)
        outputs = model.relational_model(codes, relation)
        components = targets[relation, components]
        predicted = prior.predict(outputs)
        right = (factors[predicted] == factors[components]).all(dim=1)
        gap = outputs.double() - means[components]
        mahalanobis2 = (gap * torch.linalg.solve(covariances[components], gap[..., None])[..., 0]).sum(1)
        error = 1 - right[right_so_far].float().mean() if right_so_far.any() else torch.tensor(float("nan"))
        rows.append({"accuracy": float(right.float().mean()), "error_if_right_so_far": float(error),
                     "mahalanobis2": float(mahalanobis2.median())})
        right_so_far &= right
        codes = prior.sample(samples, predicted, g) if resample else outputs
    return rows


def trial_columns(model, cfg) -> list[str]:
    """The trial's relation accuracy at depths 1 / 5 / 10, as its evaluation reads it."""
    from analysis.metrics.weak import relation_accuracy_grid
    from trainables.models.capabilities import relational_model_numpy

    lines = []
    for score in ("combination", "moved_factors"):
        rows = relation_accuracy_grid(relational_model_numpy(model, torch.device("cpu")), model.prior,
                                      np.asarray(model.relation_targets()), depths=[1, 5, 10], n=cfg.eval_points,
                                      random_state=cfg.seed, score=score)
        lines.append(f"    relation_accuracy ({score}) at depths 1 / 5 / 10: "
                     + " / ".join(f"{row['accuracy']:.3f}" for row in rows))
    return lines


def report(model, cfg, samples: int, depth: int, seed: int) -> list[str]:
    own = len(model.prior.means[0])
    gaussian = own * (1 - 2 / (9 * own)) ** 3
    lines = [f"  {'depth':>5} {'accuracy':>9} {'error if right so far':>22} {'Mahalanobis2':>13} "
             f"{'accuracy, resampled':>20} {'error if right, resampled':>26}   "
             f"(a component's own samples: Mahalanobis2 {gaussian:.1f})"]
    plain, resampled = chain(model, samples, depth, seed, False), chain(model, samples, depth, seed, True)
    for d, (a, b) in enumerate(zip(plain, resampled), start=1):
        lines.append(f"  {d:>5} {a['accuracy']:>9.3f} {a['error_if_right_so_far']:>22.3f} {a['mahalanobis2']:>13.1f} "
                     f"{b['accuracy']:>20.3f} {b['error_if_right_so_far']:>26.3f}")
    return lines + trial_columns(model, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trial", help="a weakdis train output or checkpoint directory")
    parser.add_argument("--final-iterations", type=int, default=0,
                        help="then run this many ReL iterations on the final prior and read again (default 0)")
    parser.add_argument("--samples", type=int, default=2000, help="prior samples in the chain (default 2000)")
    parser.add_argument("--depth", type=int, default=10, help="steps of the chain (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chain's samples and relations")
    args = parser.parse_args(argv)
    if args.final_iterations < 0 or args.samples < 1 or args.depth < 1:
        parser.error("--final-iterations must be >= 0, --samples and --depth >= 1")
    cfg, model, step = load_model(args.trial, args.final_iterations)
    print(f"{args.trial}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}, step {step}, "
          f"{model.prior.num_components} components; as trained", flush=True)
    print("\n".join(report(model, cfg, args.samples, args.depth, args.seed)), flush=True)
    if args.final_iterations:
        model.train()
        model.finish_training(step, say=lambda line: print(f"  {line}", flush=True))
        model.eval()
        print(f"after {args.final_iterations:,} ReL iterations on the final prior (rel_final_iterations)")
        print("\n".join(report(model, cfg, args.samples, args.depth, args.seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
