"""Shared test set-up: keep every test's caches and outputs out of the home directory."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_cache(tmp_path_factory, monkeypatch):
    """Point $WEAKDIS_DATA at a per-session temporary cache unless a test sets its own."""
    cache = tmp_path_factory.getbasetemp() / "weakdis-data-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("WEAKDIS_DATA", str(cache))
    yield


def pytest_configure(config):
    # Two cores: keep torch from oversubscribing them when Ray or joblib also run workers.
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
