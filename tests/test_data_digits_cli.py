"""`weakdis data generate rotdigits / colordigits` writes the MNIST IDX files the digit versions use;
`weakdis data info` validates and summarises such a folder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from search.cli import main as weakdis
from trainables.data.digits import DIGIT_VERSIONS, load_digits_dataset, mnist_digits, read_idx, sklearn_digits, write_idx


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "mnist"
    assert weakdis(["data", "generate", "rotdigits", "--out", str(out), "-q"]) == 0
    return out


def test_write_idx_round_trips_plain_and_gzipped(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name, 3), array)
    assert (tmp_path / "a-idx3-ubyte").read_bytes()[:8] == bytes([0, 0, 8, 3, 0, 0, 0, 5])


def test_generated_folder_is_what_the_versions_use_without_a_path(generated):
    names = sorted(p.name for p in generated.iterdir())
    assert names == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                     "train-labels-idx1-ubyte"]
    assert read_idx(generated / "train-images-idx3-ubyte", 3).shape == (1500, 28, 28)
    assert read_idx(generated / "t10k-labels-idx1-ubyte", 1).shape == (297,)
    images, labels = mnist_digits(generated)
    reference, reference_labels = sklearn_digits()
    np.testing.assert_array_equal(images, reference)
    np.testing.assert_array_equal(labels, reference_labels)
    for spec in DIGIT_VERSIONS.values():
        from_files = load_digits_dataset(spec, generated, seed=3)
        built = load_digits_dataset(spec, None, seed=3)
        assert torch.equal(from_files.images, built.images) and torch.equal(from_files.factors, built.factors)
        assert torch.equal(from_files.splits["test"], built.splits["test"])


def test_info_summarises_a_digits_folder(generated, tmp_path, capsys):
    assert weakdis(["data", "info", str(generated)]) == 0
    out = capsys.readouterr().out
    assert "1797 x (28, 28) uint8, values 0..255" in out and "1500 x 28 x 28" in out
    assert "digits:   0: 178, 1: 182" in out and "scikit-learn's digits" in out
    assert "rotdigits:v1" in out and "colordigits:v1" in out and "train 1257, val 179, test 361" in out
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(1)
    for stem, n in (("train", 20), ("t10k", 10)):
        write_idx(other / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(other / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    assert weakdis(["data", "info", str(other)]) == 0
    out = capsys.readouterr().out
    assert "30 x (28, 28)" in out and "not scikit-learn's digits" in out and "train-images-idx3-ubyte.gz" in out


def _error(argv, capsys) -> str:
    assert weakdis(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weakdis: error:") and "Traceback" not in captured.err
    return lines[0]


def test_generate_and_info_errors_name_the_file_and_what_was_expected(generated, tmp_path, capsys):
    assert "exists and is not an empty directory" in _error(
        ["data", "generate", "colordigits", "--out", str(generated)], capsys)
    assert "do not apply to colordigits" in _error(
        ["data", "generate", "colordigits", "--out", str(tmp_path / "x"), "--max-images", "10"], capsys)
    assert "--gzip applies to rotdigits / colordigits only" in _error(
        ["data", "generate", "dsprites", "--out", str(tmp_path / "d.npz"), "--gzip"], capsys)
    assert "--gzip applies to rotdigits / colordigits only, not hwf" in _error(
        ["data", "generate", "hwf", "--out", str(tmp_path / "h"), "--gzip"], capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in generated.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    images = broken / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    message = _error(["data", "info", str(broken)], capsys)
    assert "train-images-idx3-ubyte: 1000 bytes for shape (1500, 28, 28)" in message and "truncated" in message
    images.unlink()
    assert "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz" in _error(["data", "info", str(broken)], capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "neither an HWF folder" in _error(["data", "info", str(empty)], capsys)
    assert not (tmp_path / "x").exists()
