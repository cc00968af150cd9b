"""How far a trial's tau labelled images reach through its code: each factor of test codes read by
10 nearest neighbours among the labelled codes alone, and after scikit-learn's label spreading
(k-nearest-neighbour graph) has carried the labels over unlabelled training codes; with, as a
ceiling, 10 nearest neighbours among the same training codes all labelled. Works on any trial,
mixture prior or not, e.g. an M-AE checkpoint at the end of its warm-up.
docs/reproduction.md quotes it for dsprites:v3 ("What 1,000 labelled images reach through the code").

    python benchmarks/label_spreading.py TRIAL_DIR [TRIAL_DIR ...] [--unlabelled 10000] [--test 2000]

The labelled images are the trial's own (its tau, seed and tau_sampling); the unlabelled ones are
other training images and the test codes come from test images, both drawn with seed 0. Codes are
the model's representation (the mean code), standardised on the training codes. A trial trained with
``pseudo_labels`` also gets how many of its own spread labels it kept and how many are right.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def spread_accuracy(labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray, test: np.ndarray,
                    test_labels: np.ndarray, neighbours: int = 10) -> tuple[float, float, float]:
    """(10-NN accuracy on ``test`` from the labelled codes alone, label spreading's accuracy on ``test``
    after spreading ``labels`` over ``unlabelled``, the share of ``test`` codes no label reached).
    Label spreading (Zhou et al. 2004) with a k-NN kernel, clamping factor alpha 0.2, iterated to
    convergence (at most 1,000 times). A code whose graph neighbours no label reached gets no class
    (scikit-learn divides 0 by 0 and reads it as the first class, right only by chance); those are
    counted. Deterministic for given arrays."""
    import warnings

    from sklearn.neighbors import KNeighborsClassifier

    from trainables.models.spreading import fit_label_spreading

    k = min(neighbours, len(labelled))
    alone = KNeighborsClassifier(k).fit(labelled, labels).score(test, test_labels)
    points = np.concatenate([labelled, unlabelled])
    targets = np.concatenate([labels, -np.ones(len(unlabelled), dtype=np.int64)])
    spreading = fit_label_spreading(points, targets, neighbours)
    with warnings.catch_warnings():
        # the unreached test codes' 0 / 0, counted and returned instead
        warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
        probabilities = spreading.predict_proba(test)
    reached = np.isfinite(probabilities).all(1)
    predicted = spreading.classes_[np.argmax(np.where(reached[:, None], probabilities, 0), 1)]
    return float(alone), float(np.mean(predicted == test_labels)), float(np.mean(~reached))


def report(path: str, unlabelled: int = 10000, test: int = 2000, neighbours: int = 10) -> list[str]:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    from trainables.evaluation import encode_representation
    from trainables.loop import labelled_indices, load_trial

    cfg, model, dataset = load_trial(path)
    device = dataset.device
    generator = torch.Generator().manual_seed(0)
    labelled = labelled_indices(dataset, cfg).cpu()
    train = dataset.splits["train"].cpu()
    train = train[~torch.isin(train, labelled)]
    others = train[torch.randperm(len(train), generator=generator)[:unlabelled]]
    split = dataset.splits["test"].cpu()
    tests = split[torch.randperm(len(split), generator=generator)[:test]]

    def codes(rows: torch.Tensor) -> np.ndarray:
        return np.asarray(encode_representation(model, dataset, rows.to(device))[1], dtype=np.float64)

    def factors(rows: torch.Tensor) -> np.ndarray:
        return dataset.factors[rows.to(device)].cpu().numpy().astype(np.int64)

    z_labelled, z_others, z_test = (codes(rows) for rows in (labelled, others, tests))
    scaler = StandardScaler().fit(np.concatenate([z_labelled, z_others]))
    z_labelled, z_others, z_test = (scaler.transform(z) for z in (z_labelled, z_others, z_test))
    f_labelled, f_others, f_test = factors(labelled), factors(others), factors(tests)
    lines = [f"{path}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}; {len(labelled)} labelled, "
             f"{len(others)} unlabelled training and {len(tests)} test images, {neighbours} neighbours"]
    for k, name in enumerate(model.spec.factor_names):
        alone, spread, unreached = spread_accuracy(z_labelled, f_labelled[:, k], z_others, z_test, f_test[:, k],
                                                   neighbours)
        everything = KNeighborsClassifier(neighbours).fit(
            np.concatenate([z_labelled, z_others]), np.concatenate([f_labelled[:, k], f_others[:, k]])).score(z_test, f_test[:, k])
        lines.append(f"  {name:<12} labelled alone {alone:.3f}, spread over the unlabelled {spread:.3f} "
                     f"({unreached:.3f} of the test codes unreached), every training code labelled {everything:.3f}")
    return lines + pseudo_label_lines(cfg, model, dataset)


def pseudo_label_lines(cfg, model, dataset) -> list[str]:
    """For a trial with ``pseudo_labels``: per spread factor, the share of its unlabelled images whose
    spread label was kept, and the share of those that are right."""
    from trainables.loop import unlabelled_indices

    pseudo = model.pseudo_labels() if hasattr(model, "pseudo_labels") else None
    if pseudo is None:
        return []
    rows = unlabelled_indices(dataset, cfg, model.unlabelled_wanted)
    truth = dataset.factors[rows.to(dataset.factors.device)].cpu()
    pseudo = pseudo.cpu()
    lines = [f"  the trial's own spread labels (pseudo_labels={model.config.pseudo_labels!r}, "
             f"{len(rows)} unlabelled training images):"]
    for k in model.pseudo_label_factors:
        kept = pseudo[:, k] >= 0
        right = float((pseudo[kept, k] == truth[kept, k]).float().mean()) if kept.any() else float("nan")
        lines.append(f"  {model.spec.factor_names[k]:<12} kept {float(kept.float().mean()):.3f}, right {right:.3f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", nargs="+", help="trial output or checkpoint directories")
    parser.add_argument("--unlabelled", type=int, default=10000, help="unlabelled training images (default 10000)")
    parser.add_argument("--test", type=int, default=2000, help="test images (default 2000)")
    parser.add_argument("--neighbours", type=int, default=10, help="neighbours of the k-NN graph and reader (default 10)")
    args = parser.parse_args(argv)
    for path in args.trials:
        print("\n".join(report(path, args.unlabelled, args.test, args.neighbours)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
