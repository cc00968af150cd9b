"""Linear-probe accuracy (explicit-disentanglement paper, Table 1): a linear classifier trained on
frozen codes predicts a class label (the digit); the accuracy on held-out codes."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.metrics._checks import as_random_state, check_codes

PROBE_MAX_ITER = 1000


def linear_probe_accuracy(codes_train: Any, labels_train: Any, codes_test: Any, labels_test: Any,
                          random_state: Any = 0) -> float:
    """Accuracy on ``codes_test`` of a multinomial logistic regression fitted on standardised
    ``codes_train`` [n, D] and their integer labels [n]; ValueError for mismatched or one-class inputs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = check_codes(codes_train, "codes_train"), check_codes(codes_test, "codes_test")
    y_train, y_test = np.asarray(labels_train).reshape(-1), np.asarray(labels_test).reshape(-1)
    if len(y_train) != len(x_train) or len(y_test) != len(x_test):
        raise ValueError(f"labels_train has {len(y_train)} rows for {len(x_train)} codes and labels_test "
                         f"{len(y_test)} for {len(x_test)}; expected one label per code")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"codes_train has {x_train.shape[1]} dimensions, codes_test {x_test.shape[1]}; expected the same")
    if len(np.unique(y_train)) < 2:
        raise ValueError("labels_train holds a single class; expected at least two")
    seed = int(as_random_state(random_state).randint(2**31 - 1))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER, random_state=seed))
    probe.fit(x_train, y_train)
    return float(np.mean(probe.predict(x_test) == y_test))


def linear_probe_columns(inputs: Any) -> dict[str, float]:
    """``linear_probe_accuracy`` (on the content part z of a factored code, else the whole code) and
    ``linear_probe_accuracy_full`` (the whole code); NaN on datasets without a class label."""
    probe = getattr(inputs, "probe", None)
    if probe is None:
        return {"linear_probe_accuracy": math.nan, "linear_probe_accuracy_full": math.nan}
    return {
        "linear_probe_accuracy": linear_probe_accuracy(probe["content_train"], probe["labels_train"],
                                                       probe["content_test"], probe["labels_test"], inputs.seed),
        "linear_probe_accuracy_full": linear_probe_accuracy(probe["codes_train"], probe["labels_train"],
                                                            probe["codes_test"], probe["labels_test"], inputs.seed),
    }
