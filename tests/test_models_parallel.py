"""Data parallelism: two CPU processes (gloo) start from rank 0's weights, average gradients, end
with identical parameters, and with identical per-rank batches match single-process training."""
from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from test_models_helpers import DSPRITES_V2, draw_sprites, random_factors, stand_in_dataset, trial_config
from trainables.models import build_model

STEPS = 4


PSEUDO = {"label_weight": 1.0, "label_classifier": "linear", "label_batch_size": 4, "pseudo_labels": "shape",
          "pseudo_label_images": 40, "pseudo_label_confidence": 0.0, "pseudo_label_neighbours": 5}


def _config(seed: int, pseudo: bool = False):
    return trial_config("absae", seed=seed, lr=1e-3, warmup_steps=2, rel_batch_size=8, extra=PSEUDO if pseudo else {})


def _supervision():
    g = torch.Generator().manual_seed(100)
    factors = torch.cat([torch.as_tensor(DSPRITES_V2.combination_factors()), random_factors(13, DSPRITES_V2, g)])
    return (draw_sprites(factors, g) * 1).to(torch.uint8), factors


def _batches(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [draw_sprites(random_factors(6, DSPRITES_V2, g), g) for _ in range(STEPS)]


def _train(seed: int, batch_seed: int, pseudo: bool = False) -> dict[str, torch.Tensor]:
    model = build_model(_config(seed, pseudo), stand_in_dataset())
    model.set_supervision(*_supervision())
    if pseudo:
        g = torch.Generator().manual_seed(200)
        model.set_unlabelled((draw_sprites(random_factors(40, DSPRITES_V2, g), g) * 1).to(torch.uint8))
    for step, batch in enumerate(_batches(batch_seed)):
        model.train_step(batch, step)
    state = {f"param.{k}": v.detach().clone() for k, v in model.named_parameters()}
    state.update({f"prior.{k}": v.clone() for k, v in model.prior.state_dict().items()})
    if pseudo:
        state["pseudo_labels"] = model.pseudo_labels().clone()
    return state


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        # different seeds (so different initial weights) and different data on each rank
        different = _train(seed=rank, batch_seed=10 + rank)
        # the same seed and the same batches on each rank
        same = _train(seed=0, batch_seed=10)
        # spread labels: every rank takes rank 0's (its BatchNorm statistics, so its codes, differ)
        pseudo = _train(seed=rank, batch_seed=10 + rank, pseudo=True)
        torch.save({"different": different, "same": same, "pseudo": pseudo}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_stay_in_sync_and_match_single_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for run in ("different", "pseudo"):
        for key, value in rank0[run].items():
            assert torch.equal(value, rank1[run][key]), (run, key)
    assert (rank0["pseudo"]["pseudo_labels"][:, 0] >= 0).all()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _train(seed=0, batch_seed=10)
        alone_rank1 = _train(seed=1, batch_seed=11)
    finally:
        torch.set_num_threads(threads)
    for key, value in single.items():
        torch.testing.assert_close(rank0["same"][key], value, rtol=1e-5, atol=1e-6, msg=key)
        torch.testing.assert_close(rank1["same"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    # without the sync, rank 1 would have ended elsewhere
    assert not torch.equal(alone_rank1["param.encoder.head.3.weight"], rank1["different"]["param.encoder.head.3.weight"])
