"""Does predvae's adversary work? One trial of an explicit model on a digits version, then linear probes
on the z part of the code: the digit (the Table 1 column) and the factor the predictor hides.

    python benchmarks/explicit_predictor.py model=predvae dataset=rotdigits:v1 [key=value ...]

Keys are `weakdis train --set` keys (defaults: configs/explicit-table1.yaml's: 2000 steps, batch 64,
lr 1e-3, z of 10). Prints one JSON line: `digit_z` (linear_probe_accuracy), `digit_full` (z and y),
the factor probes on the test split's z by 3-fold cross-validation (rotdigits: `rotbin_z`, 12
rotation bins, chance ~0.08, and `leftright_z`, chance 0.5; colordigits: `colour_z`, the mean over
channels of the 4-level probe, majority ~0.31), `g_acc` (the trained predictor's own accuracy on the
test split) and `train_s`. docs/reproduction.md records the measurements.
"""
from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import torch


def main(argv: list[str]) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from trainables import TrialConfig, train
    from trainables.loop import load_trial

    keys = {"steps": 2000, "batch_size": 64, "lr": 1e-3, "latent_dim": 10, "tau": 0, "eval_every": 2000,
            "eval_points": 600, "device": "cpu"}
    keys.update(arg.split("=", 1) for arg in argv)
    cfg = TrialConfig.from_dict(keys)
    with tempfile.TemporaryDirectory() as out:
        result = train(cfg, out_dir=out)
        _, model, dataset = load_trial(result.checkpoint_dir)
    test = dataset.splits["test"]
    with torch.no_grad():
        z = model.representation(dataset.batch(test))["content"].numpy()
    labels = dataset.predictor_labels(test).cpu().numpy()

    def probe(y: np.ndarray) -> float:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return float(cross_val_score(classifier, z, y, cv=3).mean())

    out = {**{k: v for k, v in keys.items() if k in argv_keys(argv)},
           "train_s": round(result.metrics["train_seconds"], 1),
           "digit_z": result.metrics["linear_probe_accuracy"],
           "digit_full": result.metrics["linear_probe_accuracy_full"]}
    if dataset.spec.dataset == "rotdigits":
        out["rotbin_z"] = probe(dataset.factors[test][:, 1].cpu().numpy())
        out["leftright_z"] = probe(labels[:, 0])
    else:
        out["colour_z"] = float(np.mean([probe(labels[:, c]) for c in range(labels.shape[1])]))
    if hasattr(model, "predictor"):
        with torch.no_grad():
            heads = torch.split(model.predictor(torch.from_numpy(z)), list(model.classes), 1)
        out["g_acc"] = float(np.mean([(h.argmax(1).numpy() == labels[:, i]).mean() for i, h in enumerate(heads)]))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def argv_keys(argv: list[str]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in argv}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
