"""Training throughput (images/s) of a full loop iteration, per model, on dsprites:v2.

An iteration is what ``trainables.loop.train`` does per step: sample batch indices on the device,
gather the batch, ``model.train_step`` (for AbsAE / M-AE with the mixture prior fitted and the ReL
training, i.e. past warm-up), and the on-device loss bookkeeping (no host sync). Timing brackets
``--iters`` iterations with ``torch.cuda.synchronize`` after ``--warmup`` untimed ones (compilation
and cuDNN autotuning happen there).

    python benchmarks/train_throughput.py                          # CPU, small batch, all models
    python benchmarks/train_throughput.py --device cuda --batch-size 1024 --precision bf16 --compile

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
from trainables.loop import LossTracker, give_supervision, load_trial_dataset, resolve_device  # noqa: E402
from trainables.models import build_model  # noqa: E402
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
                        help="rows of the generated dataset file (it is cached in $WEAKDIS_DATA)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations")
    parser.add_argument("--tau", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object per model instead")
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model_name: str, args: argparse.Namespace, dataset, device: torch.device) -> dict:
    cfg = TrialConfig(model=model_name, dataset=args.dataset, batch_size=args.batch_size, tau=args.tau,
                      warmup_steps=0, precision=args.precision, compile=args.compile, seed=args.seed,
                      device=str(device), data_images=args.data_images)
    cfg.validate()
    model = build_model(cfg, dataset).to(device)
    if model_entry(cfg.model).has(WEAK_SUPERVISION):
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
    return {
        "model": model_name + ("+ReL" if model_name in ("absae", "mae") else ""),
        "images_per_s": args.iters * args.batch_size / seconds,
        "ms_per_iter": 1000 * seconds / args.iters,
        "losses": losses,
        "diverged": diverged is not None,
    }


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
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    probe = TrialConfig(dataset=args.dataset, seed=args.seed, data_images=args.data_images, device=str(device))
    dataset = load_trial_dataset(probe, device)
    header = (f"# {_device_name(device)}, torch {torch.__version__}, {args.dataset} ({len(dataset.splits['train'])} "
              f"train images), batch {args.batch_size}, {args.precision}{', compiled' if args.compile else ''}, "
              f"{args.warmup} warm-up + {args.iters} timed iterations, commit {_commit()}, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if not args.json:
        print(header)
        print(f"{'model':<14}{'images/s':>12}{'ms/iter':>10}  losses")
    for name in args.models:
        row = measure(name, args, dataset, device)
        if args.json:
            print(json.dumps({**row, "device": _device_name(device), "batch_size": args.batch_size,
                              "precision": args.precision, "compile": args.compile}))
        else:
            print(f"{row['model']:<14}{row['images_per_s']:>12,.0f}{row['ms_per_iter']:>10.1f}  "
                  f"{', '.join(row['losses'])}{'  (DIVERGED)' if row['diverged'] else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
