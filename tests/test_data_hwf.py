"""HWF: a folder laid out like the release loads; the generated stand-in looks like handwritten symbols."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from search.cli import main
from trainables.data import get_version, load_dataset
from trainables.data.hwf import OPERATOR_IMAGES, RENDERINGS, SYMBOLS, generate_hwf, generate_images, read_hwf
from trainables.errors import WeakdisError


def _stroke_image(symbol: str, shift: int) -> np.ndarray:
    """Dark ink on white, like the release: a vertical bar for '1', a cross for '+', a ring for '0'."""
    image = np.full((45, 45), 255, np.uint8)
    c = 22 + shift
    if symbol in ("1", "+"):
        image[8:37, c - 2:c + 2] = 0
    if symbol == "+":
        image[c - 2:c + 2, 8:37] = 0
    if symbol == "0":
        yy, xx = np.mgrid[:45, :45]
        image[np.abs(np.hypot(yy - c, xx - 22) - 12) < 2.5] = 0
    return image


@pytest.fixture
def release(tmp_path):
    """A hand-made folder with the release's layout: 3 symbols x 4 images, expression files."""
    root = tmp_path / "HWF"
    for symbol in ("0", "1", "+"):
        folder = root / "Handwritten_Math_Symbols" / symbol
        folder.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(_stroke_image(symbol, i - 2)).save(folder / f"{symbol}_{i}.jpg")
    (root / "Handwritten_Math_Symbols" / "div").mkdir()     # in the release, used by no version
    entry = {"img_paths": ["1/1_0.jpg", "+/+_0.jpg", "0/0_0.jpg"], "expr": "1+0", "res": 1}
    for name in ("expr_train.json", "expr_test.json"):
        (root / name).write_text(json.dumps([entry]))
    return root


def test_release_folder_loads_as_versions(release):
    images, symbols = read_hwf(release)
    assert images.shape == (12, 45, 45) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(symbols, minlength=13)[[0, 1, 10]], [4, 4, 4])
    one = images[symbols == 1][2]
    assert one[20, 22] > 200 and one[20, 5] < 30           # ink read as bright, background as dark
    data = load_dataset("hwf:v1", release, seed=0)
    assert tuple(data.images.shape) == (12, 1, 45, 45) and data.spec.num_combinations == 13
    assert sorted(set(data.factors[:, 0].tolist())) == [0, 1, 10]
    batch = data.batch(data.splits["train"][:3])
    assert batch.shape == (3, 1, 45, 45) and 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
    digits = load_dataset("hwf:digits", release, seed=0)
    assert len(digits) == 8 and set(digits.factors[:, 0].tolist()) == {0, 1}


def test_release_folder_errors_name_the_problem(release, tmp_path):
    with pytest.raises(WeakdisError, match="no such HWF folder"):
        load_dataset("hwf:v1", tmp_path / "nowhere")
    (release / "expr_test.json").unlink()
    with pytest.raises(WeakdisError, match=r"expr_test.json missing; expected expr_train.json, expr_test.json"):
        read_hwf(release)
    (release / "expr_test.json").write_text("[]")
    (release / "Handwritten_Math_Symbols" / "sqrt").mkdir()
    with pytest.raises(WeakdisError, match=r"unknown symbol 'sqrt'; expected one of 0, 1, .*times, div"):
        read_hwf(release)
    (release / "Handwritten_Math_Symbols" / "sqrt").rmdir()
    (release / "Handwritten_Math_Symbols" / "1" / "1_9.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(WeakdisError, match=r"1_9.jpg: unreadable image"):
        read_hwf(release)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeakdisError, match="has no Handwritten_Math_Symbols/ folder"):
        read_hwf(empty)


def test_info_on_a_folder(release, capsys):
    assert main(["data", "info", str(release)]) == 0
    out = capsys.readouterr().out
    assert "12 x (45, 45)" in out and "0: 4, 1: 4" in out and "+: 4" in out
    assert "hwf:digits" in out and "8 images, 2/10 combinations" in out


@pytest.fixture(scope="module")
def generated():
    return generate_images(seed=0, operators=60, renderings=1)


def test_each_digit_is_rendered_in_several_writer_styles():
    from sklearn.datasets import load_digits

    images, labels = generate_images(seed=3, operators=2, renderings=2)
    target = load_digits().target
    assert len(images) == 2 * 1797 + 3 * 2
    np.testing.assert_array_equal(labels[:2 * 1797], np.tile(target, 2))
    # the second rendering of a digit is the same digit in another style: close, not equal
    first, second = images[:1797].astype(float), images[1797:2 * 1797].astype(float)
    assert not np.array_equal(first, second)
    same = np.abs(first[:200] - second[:200]).mean()
    other = np.abs(first[:200] - np.roll(second[:200], 1, axis=0)).mean()
    assert same < other
    with pytest.raises(WeakdisError, match="renderings=0"):
        generate_images(renderings=0)


def test_generated_symbols_are_distinct_and_vary_by_writer(generated):
    images, labels = generated
    assert images.shape == (1797 + 180, 45, 45)
    np.testing.assert_array_equal(np.bincount(labels)[10:], [60, 60, 60])
    ink = (images > 128).mean(axis=(1, 2))
    assert 0.02 < ink.min() and ink.max() < 0.5                     # strokes, not blobs or blanks
    # writer styles: stroke thickness and slant vary within a symbol
    twos = images[labels == 2].astype(float)
    assert ((twos > 128).mean(axis=(1, 2)).std() > 0.01)
    ones = images[labels == 1].astype(float)
    columns = np.arange(45)
    top_minus_bottom = [((img[:12].sum(0) * columns).sum() / img[:12].sum()
                         - (img[-12:].sum(0) * columns).sum() / img[-12:].sum()) for img in ones]
    assert np.std(top_minus_bottom) > 2.0
    # and, as in the release, every symbol is cropped to its box, scaled to fill the frame and centred
    off_centre = []
    for image in images[::7]:
        rows, cols = np.nonzero(image > 128)
        assert 33 <= max(np.ptp(rows), np.ptp(cols)) + 1 <= 43
        off_centre.append(max(abs((rows.min() + rows.max()) / 2 - 22), abs((cols.min() + cols.max()) / 2 - 22)))
    assert np.median(off_centre) <= 1.0 and max(off_centre) <= 5.0   # a faint tail may shift the box a little
    # and the 13 symbols stay recognisable: an RBF SVM on 40 principal components, held-out images
    from sklearn.decomposition import PCA
    from sklearn.svm import SVC

    order = np.random.default_rng(0).permutation(len(images))
    x = images[order].reshape(len(images), -1) / 255.0
    y = labels[order]
    pca = PCA(40, random_state=0).fit(x[:1400])
    classifier = SVC().fit(pca.transform(x[:1400]), y[:1400])
    assert classifier.score(pca.transform(x[1400:]), y[1400:]) > 0.8


def test_generate_writes_the_release_layout(tmp_path, capsys):
    out = tmp_path / "hwf"
    assert main(["data", "generate", "hwf", "--out", str(out), "--seed", "1"]) == 0
    folders = sorted(p.name for p in (out / "Handwritten_Math_Symbols").iterdir())
    assert folders == sorted(SYMBOLS)
    first = next((out / "Handwritten_Math_Symbols" / "+").glob("*.jpg"))
    with Image.open(first) as image:
        assert image.size == (45, 45) and image.format == "JPEG"
        assert np.asarray(image.convert("L")).mean() > 180       # dark ink on white, as in the release
    entries = json.loads((out / "expr_train.json").read_text()) + json.loads((out / "expr_test.json").read_text())
    assert len(entries) == RENDERINGS * 1797 + 3 * OPERATOR_IMAGES and all(len(e["img_paths"]) == 1 for e in entries)
    data = load_dataset("hwf:v1", out)
    assert len(data) == RENDERINGS * 1797 + 3 * OPERATOR_IMAGES and data.spec.factor_sizes == (13,)
    with pytest.raises(WeakdisError, match="exists and is not an empty directory"):
        generate_hwf(out)


def test_hwf_columns_of_tables_4_and_5_beside_the_paper():
    import pandas as pd

    from analysis.tables import clustering_table, relations_by_depth_table
    from weakdis.registry import clustering_column, relation_column

    row = {"trial_id": "absae-hwf", "status": "finished", "model": "absae", "dataset": "hwf:v1", "tau": 130,
           "relation_depth": 1, "alpha": 0.0, clustering_column(0.0): 0.93, clustering_column(0.0, "ratio"): 1.0,
           relation_column(5, 0.0): 0.96, relation_column(5, 0.0, "ratio"): 1.0}
    table4 = clustering_table(pd.DataFrame([row]))   # tau 130 over 13 symbols: the paper's row 10
    cell = table4[(table4["alpha"] == 0.0) & (table4["tau"] == 10)].iloc[0]
    assert cell["hwf ACC"] == 0.93 and cell["hwf ACC (paper)"] == 0.917 and cell["hwf AR (paper)"] == 1.0
    table5 = relations_by_depth_table(pd.DataFrame([row]))
    cell = table5[(table5["alpha"] == 0.0) & (table5["relation_depth"] == 5)].iloc[0]
    assert cell["hwf ACC"] == 0.96 and cell["hwf ACC (paper)"] == 0.9939
    assert table5[table5["relation_depth"] == 10]["hwf ACC (paper)"].tolist()[0] == 0.9909


@pytest.mark.parametrize("model", ["absae", pytest.param("mae", marks=pytest.mark.slow)])
def test_weak_models_train_on_hwf_and_score_binary_relations(model, tmp_path):
    """AbsAE and M-AE on generated HWF (binary ReL, Appendix-A 45x45 networks): every relation column,
    the composed depths and the result accuracy are computed after the warm-up."""
    import math

    from trainables.config import TrialConfig
    from trainables.loop import train

    extra = {"rel_output": "sign"} if model == "absae" else {}
    cfg = TrialConfig(model=model, dataset="hwf:v1", steps=8, warmup_steps=4, batch_size=16, tau=130,
                      tau_sampling="stratified", eval_every=0, eval_points=100, rel_batch_size=16, device="cpu",
                      seed=0, latent_dim=8 if model == "absae" else 4, extra=extra)
    metrics = train(cfg, out_dir=tmp_path).metrics
    for key in ("clustering_accuracy", "relation_accuracy", "relation_accuracy_d10_a0", "relation_result_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["relation_accepted_ratio_d10_a0"] == 1.0
    assert math.isnan(metrics["mig"]) and math.isnan(metrics["sap"])   # one factor: no gap between two
    # Figure 9's grid: per row the operands a and b, then each relation's decoded result
    from analysis import plots

    figure = plots.relation_figure(str(tmp_path / "checkpoint"), n=2, seed=0)
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels == ["a", "b", "sum", "difference", "product"]
