"""Shared test set-up: keep every test's caches and outputs out of the home directory."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_data_cache(tmp_path_factory, monkeypatch):
    """Point $WEAKDIS_DATA at a per-session temporary cache unless a test sets its own."""
    cache = tmp_path_factory.getbasetemp() / "weakdis-data-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("WEAKDIS_DATA", str(cache))
    yield


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a busy 2-core machine two spinning threads per process slow small
    networks down several-fold (measured: ~0.2 s vs 1-6 s per AbsAE step under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
