"""``environment.json``: where a trial ran, one entry per start or resume.

The same seed gives the same numbers only on the same device type, torch version, thread count and,
on a CPU, instruction set (MKL and oneDNN pick their kernels by it); an unstable objective can turn
the last-digit differences between machines into a different result (docs/training.md). So a trial
directory records what it ran on, so that two runs can be compared before their numbers are.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from weakdis.environment import ENVIRONMENT_FILE, read_environment
from weakdis.files import write_text_atomically

log = logging.getLogger(__name__)

# Variables that change which kernels run, or how many threads they use.
NUMERIC_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
                    "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                    "CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES")


def describe_environment(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """Versions, device, CPU and the numerics-relevant environment variables of this process."""
    cpu = _cpu_description()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "world_size": int(world_size),
        "cpu": cpu.get("model name", platform.processor() or platform.machine()),
        "cpu_id": cpu.get("id"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "env": {name: os.environ[name] for name in NUMERIC_ENV_VARS if name in os.environ},
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def record_environment(out_dir: Path, step: int, device: torch.device, world_size: int = 1,
                       *, fresh: bool) -> None:
    """Append this start (at ``step``) to ``out_dir/environment.json``; ``fresh`` starts a new list."""
    path = Path(out_dir) / ENVIRONMENT_FILE
    entries: list[Any] = []
    if not fresh:
        try:
            entries = read_environment(out_dir)
        except (OSError, ValueError) as error:
            # A damaged record is not worth failing a trial for: say so and start a new one.
            log.warning("%s; starting it again", error)
    entries.append({"from_step": int(step), **describe_environment(device, world_size)})
    write_text_atomically(path, json.dumps(entries, indent=2))


def _cpu_description() -> dict[str, str]:
    """The first processor's ``model name`` and family / model / stepping from /proc/cpuinfo (Linux)."""
    if not sys.platform.startswith("linux"):
        return {}
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break                                   # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return {}
    parts = [f"{name} {fields[key]}" for key, name in (("cpu family", "family"), ("model", "model"),
                                                        ("stepping", "stepping")) if key in fields]
    out = {"id": " ".join(parts)} if parts else {}
    if "model name" in fields:
        out["model name"] = fields["model name"]
    return out
