"""Training throughput (images/s) of a full loop iteration, per model, on dsprites:v2.

An iteration is what ``trainables.loop.train`` does per step: sample batch indices on the device,
gather the batch, ``model.train_step`` (for AbsAE / M-AE with the mixture prior fitted and the ReL
training, i.e. past warm-up), and the on-device loss bookkeeping (no host sync). Timing brackets
``--iters`` iterations with ``torch.cuda.synchronize`` after ``--warmup`` untimed ones (compilation
and cuDNN autotuning happen there).

For AbsAE and M-AE it then times ``--refits`` refits of the mixture prior (encoding every labelled
image, and the unlabelled ones a single-code mixture wants) and reports the rate with one refit every
``prior_refit_every`` iterations, which is what a trial past its warm-up runs at. ``--set KEY=VALUE``
sets any trial config key, as ``weakdis train --set`` does (the warm-up stays 0).

    python benchmarks/train_throughput.py                          # CPU, small batch, all models
    python benchmarks/train_throughput.py --device cuda --batch-size 1024 --precision bf16 --compile
    python benchmarks/train_throughput.py --models absae --batch-size 64 --tau 12000 --dataset shapes3d:v5 \
        --set data_images=null --set tau_sampling=stratified --set latent_dim=16   # a 12,000-component mixture

Target (benchmarks/RESULTS.md): >= 150,000 images/s for AbsAE+ReL at batch 1024 on one H100.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainables.config import MODEL_NAMES, TrialConfig  # noqa: E402
from trainables.errors import WeakdisError  # noqa: E402
from trainables.loop import LossTracker, give_supervision, load_trial_dataset, resolve_device  # noqa: E402
from trainables.models import build_model  # noqa: E402
from trainables.train_cli import parse_overrides  # noqa: E402
from weakdis.registry import WEAK_SUPERVISION, model_entry  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--dataset", default="dsprites:v2")
    parser.add_argument("--data-images", type=int, default=50000,
                        help="rows of the generated dataset file (it is cached in $WEAKDIS_DATA); "
                             "--set data_images=null for the whole version")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations")
    parser.add_argument("--tau", type=int, default=1000)
    parser.add_argument("--refits", type=int, default=2, help="timed refits of the mixture prior (AbsAE, M-AE)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a trial config key, as for weakdis train (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object per model instead")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trial_config(model_name: str, args: argparse.Namespace, device: str) -> TrialConfig:
    """The flags' trial config with ``--set`` on top; past warm-up from the first iteration."""
    values = {"model": model_name, "dataset": args.dataset, "batch_size": args.batch_size, "tau": args.tau,
              "precision": args.precision, "compile": args.compile, "seed": args.seed, "device": device,
              "data_images": args.data_images}
    overrides = parse_overrides(args.set)
    if "warmup_steps" in overrides:
        raise WeakdisError("--set warmup_steps: this benchmark times iterations past the warm-up (warmup_steps=0)")
    values.update(overrides, warmup_steps=0)
    return TrialConfig.from_dict(values, source="--set")


def measure(model_name: str, args: argparse.Namespace, dataset, device: torch.device) -> dict:
    cfg = trial_config(model_name, args, str(device))
    model = build_model(cfg, dataset).to(device)
    weak = model_entry(cfg.model).has(WEAK_SUPERVISION)
    if weak:
        give_supervision(model, dataset, cfg)
    model.train()
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    tracker = LossTracker(device)

    def iteration(step: int) -> None:
        indices = dataset.sample_indices("train", cfg.batch_size, generator)
        tracker.add(step, model.train_step(dataset.batch(indices), step))

    for step in range(args.warmup):
        iteration(step)
    _sync(device)
    started = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.iters):
        iteration(step)
    _sync(device)
    seconds = time.perf_counter() - started
    diverged = tracker.divergence()
    losses = sorted(k[5:] for k in tracker.means())
    iteration_s = seconds / args.iters
    row = {
        "model": model_name + ("+ReL" if model_name in ("absae", "mae") else ""),
        "images_per_s": cfg.batch_size / iteration_s,
        "ms_per_iter": 1000 * iteration_s,
        "losses": losses,
        "diverged": diverged is not None,
        "refit_s": None,
        "prior_refit_every": None,
        "images_per_s_with_refits": None,
    }
    if weak and args.refits > 0:
        step = args.warmup + args.iters
        started = time.perf_counter()
        for _ in range(args.refits):
            model.fit_prior(step)
        _sync(device)
        refit_s = (time.perf_counter() - started) / args.refits
        every = cfg.prior_refit_every
        period_s = every * iteration_s + refit_s if every > 0 else iteration_s
        row.update(refit_s=refit_s, prior_refit_every=every,
                   images_per_s_with_refits=(every or 1) * cfg.batch_size / period_s)
    return row


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except WeakdisError as error:
        print(f"train_throughput.py: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    probe = trial_config(args.models[0], args, str(device))
    dataset = load_trial_dataset(probe, device)
    header = (f"# {_device_name(device)}, torch {torch.__version__}, {probe.dataset} ({len(dataset.splits['train'])} "
              f"train images), batch {probe.batch_size}, {probe.precision}{', compiled' if probe.compile else ''}, "
              f"{args.warmup} warm-up + {args.iters} timed iterations, commit {_commit()}, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if not args.json:
        print(header)
        print(f"{'model':<14}{'images/s':>12}{'ms/iter':>10}{'refit s':>10}{'every':>7}{'img/s w/ refits':>17}  losses")
    for name in args.models:
        row = measure(name, args, dataset, device)
        if args.json:
            print(json.dumps({**row, "device": _device_name(device), "batch_size": probe.batch_size,
                              "precision": probe.precision, "compile": probe.compile}), flush=True)
        else:
            refit = ("", "", "") if row["refit_s"] is None else (
                f"{row['refit_s']:.2f}", str(row["prior_refit_every"]), f"{row['images_per_s_with_refits']:,.0f}")
            print(f"{row['model']:<14}{row['images_per_s']:>12,.0f}{row['ms_per_iter']:>10.1f}{refit[0]:>10}"
                  f"{refit[1]:>7}{refit[2]:>17}  {', '.join(row['losses'])}{'  (DIVERGED)' if row['diverged'] else ''}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
