"""Shared test set-up: keep every test's caches and outputs out of the home directory."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_cache(tmp_path_factory, monkeypatch):
    """Point $WEAKDIS_DATA at a per-session temporary cache unless a test sets its own."""
    cache = tmp_path_factory.getbasetemp() / "weakdis-data-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("WEAKDIS_DATA", str(cache))
    yield
