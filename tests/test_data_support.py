"""Shared helpers for the data tests: small generated files, made once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from trainables.data import generate_file


@pytest.fixture(scope="session")
def small_dsprites(tmp_path_factory) -> Path:
    """1500 random rows of dSprites (seed 1) in the official npz layout."""
    path = tmp_path_factory.mktemp("data") / "dsprites_small.npz"
    return generate_file("dsprites", path, max_images=1500, seed=1)


@pytest.fixture(scope="session")
def small_shapes3d(tmp_path_factory) -> Path:
    """1200 random rows of Shapes3D (seed 2) in the official h5 layout."""
    path = tmp_path_factory.mktemp("data") / "shapes3d_small.h5"
    return generate_file("shapes3d", path, max_images=1200, seed=2)
