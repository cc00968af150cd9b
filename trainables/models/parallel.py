"""Data parallelism without DDP wrappers: each model syncs itself when torch.distributed is up.

With world size > 1, every rank starts from rank 0's parameters and buffers (:func:`broadcast_module`,
called on the first training step) and, before every optimiser step, gradients are averaged across
ranks with one all_reduce of a single flattened buffer (:func:`average_gradients`). Models use the same
seed on every rank, so their own random draws (prior samples, reparameterisation noise) agree; the data
each rank sees is what differs.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def world_size() -> int:
    """Number of ranks, 1 when torch.distributed is unavailable or not initialised."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 1
    return torch.distributed.get_world_size()


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every rank (no-op on a single process)."""
    if world_size() == 1:
        return
    tensors = [t for t in list(module.parameters()) + list(module.buffers())]
    for t in tensors:
        torch.distributed.broadcast(t.data, src)


@torch.no_grad()
def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Average the gradients of ``params`` across ranks in one flattened all_reduce.

    A parameter without a gradient on this rank contributes zeros, so every rank reduces a buffer of
    the same size.
    """
    size = world_size()
    if size == 1:
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat.div_(size)
    offset = 0
    for p in params:
        n = p.numel()
        piece = flat[offset:offset + n].view_as(p)
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.copy_(piece)
        offset += n
