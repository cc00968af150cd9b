"""The fast DCI: its replayed importances are the exact method's definition applied to the fitted
histogram-boosting trees, and its scores stay close to the exact DCI on representative codes."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from analysis.metrics import dci
from analysis.metrics.dci import FAST_BOOSTING_PARAMS, replayed_importances
from analysis.metrics.synthetic import synthetic_codes


def brute_force_importances(model, codes, labels):
    """Per tree and per split, the squared-error decrease of the residuals y - p the tree was fitted
    to, with p from the model's own staged probabilities (one point and one node at a time)."""
    classes = model.classes_
    binary = len(classes) == 2
    baseline = np.asarray(model._baseline_prediction, dtype=float).reshape(1, -1)
    raw = np.repeat(baseline, len(codes), axis=0)
    importances = np.zeros(codes.shape[1])
    for trees in model._predictors:
        if binary:
            residual_columns = [(labels == classes[1]) - 1 / (1 + np.exp(-raw[:, 0]))]
        else:
            p = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
            residual_columns = [(labels == c) - p[:, k] for k, c in enumerate(classes)]
        for k, (tree, residuals) in enumerate(zip(trees, residual_columns)):
            nodes = tree.nodes
            members = {0: np.arange(len(codes))}
            for index in range(nodes.size):  # parents come before children
                if nodes["is_leaf"][index]:
                    raw[members[index], k] += nodes["value"][index]
                    continue
                inside = members[index]
                left = codes[inside, nodes["feature_idx"][index]] <= nodes["num_threshold"][index]
                members[nodes["left"][index]], members[nodes["right"][index]] = inside[left], inside[~left]
                sse = lambda r: np.sum((r - r.mean()) ** 2) if r.size else 0.0  # noqa: E731
                decrease = sse(residuals[inside]) - sse(residuals[inside[left]]) - sse(residuals[inside[~left]])
                importances[nodes["feature_idx"][index]] += decrease
    return importances / importances.sum()


@pytest.mark.parametrize("num_classes", [2, 5])
def test_replayed_importances_match_a_brute_force_replay(num_classes):
    codes, factors = synthetic_codes("mixed", (num_classes, 3), 200, random_state=0)
    labels = factors[:, 0]
    params = dict(FAST_BOOSTING_PARAMS, max_iter=15)
    model = HistGradientBoostingClassifier(random_state=0, **params).fit(codes, labels)
    importances, predicted = replayed_importances(model, codes, labels)
    np.testing.assert_allclose(importances, brute_force_importances(model, codes, labels), atol=1e-10)
    np.testing.assert_array_equal(predicted, model.predict(codes))


# Measured agreement (docs/metrics.md); the bound leaves room for the sampling noise of 600 points.
AGREEMENT_TOLERANCE = 0.04


@pytest.mark.parametrize("kind", ["disentangled", "mixed", "factor_values"])
def test_fast_dci_agrees_with_exact_on_representative_codes(kind):
    codes, factors = synthetic_codes(kind, (3, 4, 6), 900, random_state=1)
    split = (codes[:600], factors[:600], codes[600:], factors[600:])
    exact = dci(*split, random_state=0)
    fast = dci(*split, random_state=0, method="fast")
    for key in exact:
        assert fast[key] == pytest.approx(exact[key], abs=AGREEMENT_TOLERANCE), key


def test_fast_dci_values_and_determinism():
    codes, factors = synthetic_codes("disentangled", (3, 4, 6), 900, random_state=2)
    split = (codes[:600], factors[:600], codes[600:], factors[600:])
    fast = dci(*split, random_state=5, method="fast")
    assert fast["disentanglement"] > 0.9 and fast["completeness"] > 0.9 and fast["informativeness_test"] > 0.95
    assert dci(*split, random_state=5, method="fast", n_jobs=2) == fast
    noise = np.random.RandomState(3).randn(*codes.shape)
    chance = dci(noise[:600], factors[:600], noise[600:], factors[600:], random_state=5, method="fast")
    assert chance["informativeness_test"] < 0.45
