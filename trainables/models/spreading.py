"""Label spreading over codes: what ``pseudo_labels`` (AbsAE / M-AE, not in the papers) gives the
linear label classifier, and what ``benchmarks/label_spreading.py`` measures.

Label spreading (Zhou et al. 2004, scikit-learn's ``LabelSpreading``) on a k-nearest-neighbour graph
carries the tau labels along paths that the unlabelled codes trace; docs/reproduction.md ("What
1,000 labelled images reach through the code") measures how far on dsprites:v3.
"""
from __future__ import annotations

import warnings

import numpy as np

SPREADING_ALPHA = 0.2      # clamping factor: each iteration keeps 80% of a labelled point's own label


def fit_label_spreading(points: np.ndarray, targets: np.ndarray, neighbours: int = 10,
                        alpha: float = SPREADING_ALPHA):
    """scikit-learn's ``LabelSpreading`` (k-NN kernel, clamping factor ``alpha``, iterated until it
    changes by less than 1e-3, at most 1,000 times) fitted on ``points`` ``[n, D]`` with ``targets``
    ``[n]`` (-1 = unlabelled). Deterministic for given arrays. With alpha 0.2 a label's weight falls
    fivefold with every step along the graph, so the iteration stops within a few steps of the labels:
    a point further away has an all-zero distribution (or 0 / 0, NaN), which the caller must handle."""
    from sklearn.semi_supervised import LabelSpreading

    spreading = LabelSpreading(kernel="knn", n_neighbors=min(neighbours, len(points) - 1), alpha=alpha,
                               max_iter=1000)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
        return spreading.fit(points, targets)


def spread_labels(labelled: np.ndarray, labels: np.ndarray, unlabelled: np.ndarray, neighbours: int = 10,
                  alpha: float = SPREADING_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Each ``unlabelled`` code's spread label and its probability: ``(int64 [n], float64 [n])``, -1 and 0
    where no label reached it. ``labelled`` ``[t, D]`` with class ``labels`` ``[t]`` (>= 0) and
    ``unlabelled`` ``[n, D]`` are standardised together (per dimension) before the graph is built."""
    points = np.concatenate([labelled, unlabelled]).astype(np.float64)
    points = (points - points.mean(0)) / np.maximum(points.std(0), 1e-12)
    targets = np.concatenate([np.asarray(labels, dtype=np.int64), -np.ones(len(unlabelled), dtype=np.int64)])
    spreading = fit_label_spreading(points, targets, neighbours, alpha)
    distributions = spreading.label_distributions_[len(labelled):]
    reached = np.isfinite(distributions).all(1) & (np.nan_to_num(distributions).sum(1) > 0)
    distributions = np.where(reached[:, None], distributions, 0.0)
    best = np.argmax(distributions, 1)
    spread = np.where(reached, spreading.classes_[best], -1).astype(np.int64)
    return spread, distributions[np.arange(len(best)), best]
