"""Where a trained AbsAE's or M-AE's mixture prior reads each factor, and where it does not: the
per-factor accuracy of the prior's prediction on test codes (and by each nuisance factor); how far
those codes sit from their component against its width, and how wide it is (the papers' density rule
for acceptance reads both); the prediction on the codes of the tau labelled images it was fitted
from (far above the test codes where the encoder has memorised them); how often prior samples are
classified back to their own component; how far apart the components of neighbouring values of each
factor lie against their width; and each relation's output read factor by factor (and by its input's
class of the factor with fewest classes: a symmetric shape's orientations share their codes, so
``change_shape`` from it has several targets), with the mean over relations read on every factor and
on the moved factor alone (``relation_accuracy`` and ``relation_accuracy_moved`` at depth 1, on these
samples).
docs/reproduction.md quotes it for ``dsprites:v3`` (M-AE's shape and orientation components lie on
top of each other; AbsAE's shape is read at ~0.7) and for Shapes3D.

    python benchmarks/prior_diagnostics.py TRIAL_DIR [TRIAL_DIR ...] [--codes 4000] [--samples 20000] [--probe 0]

``--probe N`` also trains a small MLP per factor on N training codes and reads the test codes with it:
what the code holds of each factor, whatever the mixture reads (dsprites:v3's orientation, for one);
with it, a trial still in its warm-up (no mixture yet) is read by the probe alone.

TRIAL_DIR: a ``weakdis train`` output directory or a sweep trial's checkpoint directory. Codes come
from test images drawn with seed 0; prior samples and relations use seed 0 too.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

NUISANCE_GROUPS = 6


def factor_separation(means: np.ndarray, covariances: np.ndarray, component_factors: np.ndarray) -> np.ndarray:
    """float [K]: for each factor, the median Mahalanobis distance between the means of components that
    differ in that factor alone (by one value), under the pair's average covariance. Around 2 or less
    the components of neighbouring values overlap; samples of components 4 apart are told apart ~98% of
    the time."""
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    factors = np.asarray(component_factors, dtype=np.int64)
    index = {tuple(row): c for c, row in enumerate(factors)}
    distances: list[list[float]] = [[] for _ in range(factors.shape[1])]
    for c, row in enumerate(factors):
        for k in range(factors.shape[1]):
            neighbour = index.get((*row[:k], row[k] + 1, *row[k + 1:]))
            if neighbour is not None:
                gap = means[c] - means[neighbour]
                pooled = 0.5 * (covariances[c] + covariances[neighbour])
                distances[k].append(float(np.sqrt(gap @ np.linalg.solve(pooled, gap))))
    return np.array([np.median(d) if d else np.nan for d in distances])


def code_fit(codes: np.ndarray, means: np.ndarray, covariances: np.ndarray, component: np.ndarray) -> dict[str, float]:
    """Where ``codes [N, D]`` sit in their ``component [N]``'s Gaussian, as medians over the codes:
    ``mahalanobis2`` (squared distance; a sample of the Gaussian itself has about ``gaussian``, the
    chi-square median with D degrees of freedom, Wilson-Hilferty), ``log_det`` of the covariance and
    ``log_density``. The papers' acceptance rule compares the density with alpha, so it falls when the
    code space widens (log_det rises) even where the codes fit their components as a Gaussian's own
    samples do."""
    codes = np.asarray(codes, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64)[component]
    cov = np.asarray(covariances, dtype=np.float64)[component]
    gap = codes - mu
    mahalanobis2 = np.einsum("ni,ni->n", gap, np.linalg.solve(cov, gap[..., None])[..., 0])
    log_det = np.linalg.slogdet(cov)[1]
    dim = codes.shape[1]
    log_density = -0.5 * (mahalanobis2 + log_det + dim * np.log(2 * np.pi))
    return {"mahalanobis2": float(np.median(mahalanobis2)), "gaussian": dim * (1 - 2 / (9 * dim)) ** 3,
            "log_det": float(np.median(log_det)), "log_density": float(np.median(log_density))}


def per_factor_accuracy(predicted: np.ndarray, expected: np.ndarray) -> tuple[float, np.ndarray]:
    """(share of rows with every factor right, share right per factor [K])."""
    right = np.asarray(predicted) == np.asarray(expected)
    return float(right.all(axis=1).mean()), right.mean(axis=0)


def accuracy_by_class(predicted: np.ndarray, expected: np.ndarray, classes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """[(class, share right per factor [K])] for each class present in ``classes [N]``, each row's class
    of one factor (the expected one's, or a relation's input's where the relation moves that factor)."""
    right = np.asarray(predicted) == np.asarray(expected)
    classes = np.asarray(classes)
    return [(int(c), right[classes == c].mean(axis=0)) for c in np.unique(classes)]


def probe_predictions(train_codes: np.ndarray, train_factors: np.ndarray, test_codes: np.ndarray,
                      random_state: int) -> np.ndarray:
    """int [N, K]: each test code's factors as predicted by one small MLP per factor (standardised
    codes, two hidden layers of 256, early stopping) trained on the training codes: what the code
    holds of each factor, linearly or not, where the mixture may read less."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = []
    for k in range(train_factors.shape[1]):
        probe = make_pipeline(StandardScaler(), MLPClassifier((256, 256), max_iter=300, early_stopping=True,
                                                              random_state=random_state))
        columns.append(probe.fit(train_codes, train_factors[:, k]).predict(test_codes))
    return np.stack(columns, axis=1)


def _fmt(names, values) -> str:
    return ", ".join(f"{n} {v:.3f}" for n, v in zip(names, values))


@torch.no_grad()
def report(path: str, codes: int = 4000, samples: int = 20000, probe: int = 0) -> list[str]:
    from analysis.metrics.weak import moved_factors
    from trainables.evaluation import encode_representation
    from trainables.loop import labelled_indices, load_trial
    from trainables.models.capabilities import HasMixturePrior

    cfg, model, dataset = load_trial(path)
    fitted = isinstance(model, HasMixturePrior) and model.prior.fitted
    warming_up = isinstance(model, HasMixturePrior) and not fitted
    if not fitted and not (warming_up and probe > 0):
        hint = " (still in its warm-up: --probe N reads its codes)" if warming_up else ""
        raise SystemExit(f"{path}: {cfg.model} has no fitted mixture prior to diagnose{hint}")
    names = list(model.spec.factor_names)
    split = dataset.splits["test"].cpu()
    test = split[torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:codes]]
    predicted, test_codes = encode_representation(model, dataset, test.to(dataset.device))
    expected = dataset.factors[test.to(dataset.device)].cpu().numpy()
    # the factor with the fewest classes (dSprites' and Shapes3D's shape): symmetric shapes bound orientation
    split_by = int(np.argmin(dataset.factor_sizes))

    def read_by_class(read: np.ndarray, truth: np.ndarray = expected,
                      classes: np.ndarray = expected[:, split_by]) -> str:
        return "; ".join(f"{c}: {_fmt(names, values)}" for c, values in accuracy_by_class(read, truth, classes))

    def probe_lines() -> list[str]:
        rows = dataset.splits["train"].cpu()
        train = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(1))[:probe]].to(dataset.device)
        probed = probe_predictions(encode_representation(model, dataset, train)[1],
                                   dataset.factors[train].cpu().numpy(), test_codes, random_state=0)
        every, by_factor = per_factor_accuracy(probed, expected)
        return [f"  test codes read by an MLP probe ({len(train)} training codes): all {every:.3f}; "
                f"{_fmt(names, by_factor)}", f"    by {names[split_by]} class: {read_by_class(probed)}"]

    if not fitted:
        return [f"{path}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}, no mixture prior yet (warm-up); "
                f"{len(test)} test codes"] + probe_lines()
    prior = model.prior
    component_factors = prior.component_factors.cpu().numpy()
    lines = [f"{path}: {cfg.model} on {cfg.dataset}, seed {cfg.seed}, {prior.num_components} components"]
    predicted = predicted.astype(np.int64)
    every, by_factor = per_factor_accuracy(predicted, expected)
    lines.append(f"  test codes ({len(test)}) read by the prior: all {every:.3f}; {_fmt(names, by_factor)}")
    # an M-AE's combination covariances are built (block-diagonal) on each read: read them once
    means, covariances = prior.means.cpu().numpy(), prior.covariances.cpu().numpy()
    component = prior.predict(torch.as_tensor(test_codes, device=prior.component_factors.device)).cpu().numpy()
    fit = code_fit(test_codes, means, covariances, component)
    lines.append(f"  test codes in their most likely component (medians): squared Mahalanobis distance {fit['mahalanobis2']:.1f} "
                 f"(the Gaussian's own samples: {fit['gaussian']:.1f}), log det {fit['log_det']:.1f}, "
                 f"log density {fit['log_density']:.1f} (accepted at alpha 0.9 from {np.log(0.9):.3f})")
    layout = dataset.spec.layout
    nuisance = dataset.all_factors[test.to(dataset.device)].cpu().numpy()
    relevant_columns = {f.column for f in dataset.spec.relevant}
    for column, factor in enumerate(layout.factors):
        if column in relevant_columns or factor.size < 2:
            continue
        groups = np.array_split(np.arange(factor.size), min(NUISANCE_GROUPS, factor.size))
        cells = []
        for group in groups:
            rows = np.isin(nuisance[:, column], group)
            if rows.any():
                label = str(group[0]) if len(group) == 1 else f"{group[0]}-{group[-1]}"
                cells.append(f"{label} {per_factor_accuracy(predicted[rows], expected[rows])[0]:.2f}")
        lines.append(f"    all right by {factor.name} class: " + ", ".join(cells))
    lines.append(f"    by {names[split_by]} class: {read_by_class(predicted)}")
    if probe > 0:
        lines += probe_lines()
    labelled = labelled_indices(dataset, cfg).to(dataset.device)
    every, by_factor = per_factor_accuracy(encode_representation(model, dataset, labelled)[0].astype(np.int64),
                                           dataset.factors[labelled].cpu().numpy())
    lines.append(f"  labelled codes ({len(labelled)}, the fit's) read by the prior: all {every:.3f}; "
                 f"{_fmt(names, by_factor)}")

    g = torch.Generator(device=prior.component_factors.device).manual_seed(0)
    drawn = torch.arange(prior.num_components, device=prior.component_factors.device).repeat_interleave(
        max(1, samples // prior.num_components))
    sampled = prior.sample(len(drawn), drawn, generator=g)
    back = component_factors[prior.predict(sampled).cpu().numpy()]
    every, by_factor = per_factor_accuracy(back, component_factors[drawn.cpu().numpy()])
    lines.append(f"  prior samples ({len(drawn)}) classified back: all {every:.3f}; {_fmt(names, by_factor)}")
    separation = factor_separation(means, covariances, component_factors)
    lines.append("  Mahalanobis distance between neighbouring values' components: " + _fmt(names, separation))

    if getattr(model, "relations", ()) and model.relation_arity == 1:
        targets = model.relation_targets()
        drawn_np = drawn.cpu().numpy()
        lines.append("  relation outputs on those samples, read per factor against the moved combination:")
        moves = moved_factors(targets, component_factors)
        input_classes = component_factors[drawn_np, split_by]
        whole, moved_only = [], []
        for index, relation in enumerate(model.relations):
            out = model.relational_model(sampled, index)
            read = component_factors[prior.predict(out).cpu().numpy()]
            expected_after = component_factors[targets[index, drawn_np]]
            every, by_factor = per_factor_accuracy(read, expected_after)
            whole.append(every)
            moved_only.append(float((read == expected_after)[:, moves[index]].all(axis=1).mean()))
            lines.append(f"    {getattr(relation, 'name', str(index)):<14} all {every:.3f}; {_fmt(names, by_factor)}")
            lines.append(f"      by input's {names[split_by]} class: "
                         f"{read_by_class(read, expected_after, input_classes)}")
        lines.append(f"  mean over relations: every factor right {np.mean(whole):.3f}, the moved factor right "
                     f"{np.mean(moved_only):.3f} (the two readings of relation accuracy at depth 1, docs/metrics.md)")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", nargs="+", help="trial output or checkpoint directories")
    parser.add_argument("--codes", type=int, default=4000, help="test images encoded (default 4000)")
    parser.add_argument("--samples", type=int, default=20000, help="prior samples, split evenly (default 20000)")
    parser.add_argument("--probe", type=int, default=0,
                        help="training codes for an MLP probe of each factor (default 0: no probe)")
    args = parser.parse_args(argv)
    for path in args.trials:
        print("\n".join(report(path, args.codes, args.samples, args.probe)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
