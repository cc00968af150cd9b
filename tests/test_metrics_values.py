"""Values of DCI, MIG, SAP and modularity/explicitness: hand-computed cases, the scores that
disentangled / entangled / noisy / duplicated codes must get, invariances and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import (
    completeness_score,
    dci,
    discrete_entropy,
    discrete_mutual_information,
    disentanglement_score,
    histogram_discretize,
    mig,
    modularity_explicitness,
    sap,
)


def factor_grid(sizes, num_points, seed):
    rng = np.random.RandomState(seed)
    return np.stack([rng.randint(size, size=num_points) for size in sizes], axis=1)


def disentangled_codes(factors, sizes, seed, noise=0.01):
    rng = np.random.RandomState(seed)
    return (factors + 0.5) / np.array(sizes) + noise * rng.randn(*factors.shape)


def rotate_pairs(codes):
    """45-degree rotations of dimensions (0, 1), (2, 3), ...: each output mixes two factors equally."""
    rotated = codes.copy()
    for first in range(0, codes.shape[1] - 1, 2):
        a, b = codes[:, first], codes[:, first + 1]
        rotated[:, first], rotated[:, first + 1] = (a + b) / np.sqrt(2), (a - b) / np.sqrt(2)
    return rotated


SIZES = (4, 5, 3, 6)


@pytest.fixture(scope="module")
def data():
    factors = factor_grid(SIZES, 3000, seed=0)
    codes = disentangled_codes(factors, SIZES, seed=1)
    return codes, factors


# --- hand-computed pieces -----------------------------------------------------------------------


def test_histogram_discretisation_by_hand():
    codes = np.array([[0.0, 7.0], [0.5, 7.0], [1.0, 7.0], [0.25, 7.0], [0.75, 7.0]])
    # Two bins over [0, 1]: left edges 0 and 0.5; a value on an inner edge goes right, the maximum
    # to the last bin. A constant dimension gets the range [7 - 0.5, 7 + 0.5], so its value sits on
    # the inner edge 7 and falls in bin 2.
    np.testing.assert_array_equal(histogram_discretize(codes, 2), [[1, 2], [2, 2], [2, 2], [1, 2], [2, 2]])
    np.testing.assert_array_equal(histogram_discretize(codes, 4)[:, 0], [1, 3, 4, 2, 4])


def test_entropy_and_mutual_information_by_hand():
    factors = np.array([[0, 0], [0, 1], [1, 2], [1, 3]])
    np.testing.assert_allclose(discrete_entropy(factors), [np.log(2), np.log(4)])
    codes = np.array([[1, 1], [1, 2], [2, 1], [2, 2]])
    mutual_information = discrete_mutual_information(codes, factors)
    # code 0 copies factor 0 (MI = H = log 2) and is half of factor 1 (MI = log 2);
    # code 1 is independent of factor 0 (MI = 0) and the other half of factor 1 (MI = log 2).
    np.testing.assert_allclose(mutual_information, [[np.log(2), np.log(2)], [0.0, np.log(2)]], atol=1e-12)
    # A 3-point case: p(code, factor) = {(1,0): 1/3, (1,1): 1/3, (2,1): 1/3}.
    expected = (1 / 3) * np.log((1 / 3) / (2 / 3 * 1 / 3)) + (1 / 3) * np.log((1 / 3) / (2 / 3 * 2 / 3)) + (
        1 / 3
    ) * np.log((1 / 3) / (1 / 3 * 2 / 3))
    assert discrete_mutual_information(np.array([[1], [1], [2]]), np.array([[0], [1], [1]]))[0, 0] == pytest.approx(
        expected
    )


def test_dci_entropy_weighting_by_hand():
    importance = np.array([[0.5, 0.25], [0.0, 0.25]])
    # code 0: p = (2/3, 1/3), 1 - H_2 = 0.0817042; code 1: p = (0, 1) -> 1; weights 0.75 / 0.25.
    one_minus_entropy = 1 + (2 / 3) * np.log2(2 / 3) + (1 / 3) * np.log2(1 / 3)
    assert disentanglement_score(importance) == pytest.approx(0.75 * one_minus_entropy + 0.25, abs=1e-8)
    # factor 0: (0.5, 0) -> 1; factor 1: (0.25, 0.25) -> 0; weights 0.5 / 0.5.
    assert completeness_score(importance) == pytest.approx(0.5, abs=1e-8)
    assert disentanglement_score(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert completeness_score(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement_score(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-12)
    assert completeness_score(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-12)
    # Nothing important at all: the all-zero fallback weighs uniformly and scores 0.
    assert disentanglement_score(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-12)
    assert completeness_score(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-12)
    # Two codes both for factor 0: each code is disentangled, the factor is not complete.
    assert disentanglement_score(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(1.0, abs=1e-8)
    assert completeness_score(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.0, abs=1e-8)


# --- MIG ---------------------------------------------------------------------------------------


def test_mig_disentangled_rotated_noise_duplicated(data):
    codes, factors = data
    assert mig(codes, factors, random_state=0)["mig"] > 0.97
    assert mig(rotate_pairs(codes), factors, random_state=0)["mig"] < 0.25
    noise = np.random.RandomState(2).randn(*codes.shape)
    assert mig(noise, factors, random_state=0)["mig"] == pytest.approx(0.0, abs=0.02)
    # Duplicating factor 0's code leaves it no gap: MIG loses that factor's share (1/K).
    duplicated = np.concatenate([codes, codes[:, :1]], axis=1)
    assert mig(duplicated, factors, random_state=0)["mig"] == pytest.approx(
        mig(codes, factors, random_state=0)["mig"] * 3 / 4, abs=0.01
    )
    # Extra noise dimensions barely matter.
    extra = np.concatenate([codes, noise[:, :3]], axis=1)
    assert mig(extra, factors, random_state=0)["mig"] == pytest.approx(mig(codes, factors, random_state=0)["mig"], abs=0.02)


def test_mig_invariant_to_scaling_shift_and_permutation(data):
    codes, factors = data
    reference = mig(codes, factors, random_state=0)["mig"]
    scaled = codes * np.array([2.0, 0.25, 8.0, 0.5]) + np.array([1.0, -3.0, 0.0, 64.0])
    assert mig(scaled, factors, random_state=0)["mig"] == pytest.approx(reference, abs=1e-12)
    assert mig(codes[:, [2, 0, 3, 1]], factors, random_state=0)["mig"] == pytest.approx(reference, abs=1e-12)


def test_mig_num_bins_changes_the_discretisation(data):
    codes, factors = data
    # With 2 bins a 6-valued factor cannot be recovered from one dimension.
    assert mig(codes, factors, num_bins=2, random_state=0)["mig"] < mig(codes, factors, random_state=0)["mig"] - 0.2


# --- DCI ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    sizes = (3, 4, 3)
    factors = factor_grid(sizes, 400, seed=3)
    codes = disentangled_codes(factors, sizes, seed=4, noise=0.02)
    return codes[:300], factors[:300], codes[300:], factors[300:]


@pytest.fixture(scope="module")
def small_scores(small):
    return dci(*small, random_state=0)


def test_dci_disentangled_entangled_noise(small, small_scores):
    codes_train, factors_train, codes_test, factors_test = small
    scores = small_scores
    assert scores["disentanglement"] > 0.9 and scores["completeness"] > 0.9
    assert scores["informativeness_train"] == pytest.approx(1.0)
    assert scores["informativeness_test"] > 0.97
    rotation, _ = np.linalg.qr(np.random.RandomState(5).randn(3, 3))
    rotated = dci(codes_train @ rotation, factors_train, codes_test @ rotation, factors_test, random_state=0)
    assert rotated["disentanglement"] < 0.5 and rotated["completeness"] < 0.5
    assert rotated["informativeness_test"] > 0.8  # still informative, just not disentangled
    rng = np.random.RandomState(6)
    noise = dci(rng.randn(300, 3), factors_train, rng.randn(100, 3), factors_test, random_state=0)
    assert noise["informativeness_test"] < 0.5  # chance is about 1/3
    assert noise["informativeness_train"] > noise["informativeness_test"] + 0.3  # trees overfit noise


def test_dci_duplicated_dimension_splits_completeness(small, small_scores):
    codes_train, factors_train, codes_test, factors_test = small
    base = small_scores
    duplicated = dci(
        np.concatenate([codes_train, codes_train[:, :1]], axis=1),
        factors_train,
        np.concatenate([codes_test, codes_test[:, :1]], axis=1),
        factors_test,
        random_state=0,
    )
    assert duplicated["disentanglement"] > 0.9  # each copy still informs one factor
    assert duplicated["completeness"] < base["completeness"] - 0.1  # factor 0 spread over two codes


def test_dci_invariant_to_scaling_and_permutation(small, small_scores):
    codes_train, factors_train, codes_test, factors_test = small
    base = small_scores
    scale = np.array([4.0, 0.5, 2.0])
    scaled = dci(codes_train * scale, factors_train, codes_test * scale, factors_test, random_state=0)
    for key in base:
        assert scaled[key] == pytest.approx(base[key], abs=1e-9), key
    order = [2, 0, 1]
    permuted = dci(codes_train[:, order], factors_train, codes_test[:, order], factors_test, random_state=0)
    for key in base:
        assert permuted[key] == pytest.approx(base[key], abs=1e-6), key


def test_dci_same_seed_same_numbers_and_parallel_equals_serial(small, small_scores):
    again = dci(*small, random_state=np.random.RandomState(0), n_jobs=2)
    assert again == small_scores


# --- SAP ---------------------------------------------------------------------------------------


def test_sap_discrete_and_continuous():
    factors = factor_grid((2, 2, 2), 2000, seed=7)
    codes = disentangled_codes(factors, (2, 2, 2), seed=8, noise=0.05)
    train, test = slice(0, 1500), slice(1500, None)
    # Binary factors: the factor's own dimension predicts it perfectly, the others at chance.
    scores = sap(codes[train], factors[train], codes[test], factors[test], random_state=0)
    assert scores["sap"] == pytest.approx(0.5, abs=0.06)
    continuous = sap(codes[train], factors[train], codes[test], factors[test], continuous_factors=True, random_state=0)
    assert continuous["sap"] > 0.95  # squared correlation ~1 against ~0
    duplicated = np.concatenate([codes, codes[:, :1]], axis=1)
    dup = sap(duplicated[train], factors[train], duplicated[test], factors[test], continuous_factors=True, random_state=0)
    assert dup["sap"] == pytest.approx(continuous["sap"] * 2 / 3, abs=0.01)  # factor 0 has no gap
    noise = np.random.RandomState(9).randn(2000, 3)
    assert sap(noise[train], factors[train], noise[test], factors[test], random_state=0)["sap"] < 0.05
    rotated = rotate_pairs(codes)
    assert sap(rotated[train], factors[train], rotated[test], factors[test], continuous_factors=True, random_state=0)["sap"] < 0.5


def test_sap_permutation_invariant():
    factors = factor_grid((3, 4), 600, seed=10)
    codes = disentangled_codes(factors, (3, 4), seed=11, noise=0.1)
    codes = np.concatenate([codes, np.random.RandomState(12).randn(600, 1)], axis=1)
    base = sap(codes[:400], factors[:400], codes[400:], factors[400:], random_state=0)["sap"]
    permuted = codes[:, [2, 1, 0]]
    assert sap(permuted[:400], factors[:400], permuted[400:], factors[400:], random_state=0)["sap"] == pytest.approx(base)


@pytest.mark.parametrize("sizes, low, high", [((3, 3, 3), 0.60, 0.70), ((10, 4), 0.30, 0.40), ((10, 4, 3), 0.41, 0.48)],
                         ids=["dsprites-v2", "shapes3d-v2", "shapes3d-v3"])
def test_sap_of_the_factors_themselves_is_bounded_by_one_dimension_linear_classifiers(sizes, low, high):
    # The ceilings docs/reproduction.md quotes against the papers' SAP: a weak model's representation is
    # its predicted factor indices, and a single-feature linear SVM cannot isolate a middle value of a
    # many-valued factor, so even the true factors score far from 1 (Shapes3D's ten hues most of all).
    factors = factor_grid(sizes, 2000, seed=0)
    train, test = slice(0, 1333), slice(1333, None)
    perfect = factors.astype(np.float64)
    assert low < sap(perfect[train], factors[train], perfect[test], factors[test], random_state=0)["sap"] < high


# --- modularity / explicitness -----------------------------------------------------------------


def test_modularity_explicitness_values(data):
    codes, factors = data
    train, test = slice(0, 2000), slice(2000, None)
    scores = modularity_explicitness(codes[train], factors[train], codes[test], factors[test], random_state=0)
    assert scores["modularity"] > 0.98
    assert scores["explicitness_test"] > 0.95
    rotated = rotate_pairs(codes)
    mixed = modularity_explicitness(rotated[train], factors[train], rotated[test], factors[test], random_state=0)
    assert mixed["modularity"] < scores["modularity"] - 0.1
    noise = np.random.RandomState(13).randn(*codes.shape)
    chance = modularity_explicitness(noise[train], factors[train], noise[test], factors[test], random_state=0)
    assert chance["explicitness_test"] == pytest.approx(0.5, abs=0.05)  # ROC-AUC of a useless classifier


def test_modularity_constant_code_dimension_is_defined(data):
    codes, factors = data
    with_constant = np.concatenate([codes, np.full((codes.shape[0], 1), 3.0)], axis=1)
    scores = modularity_explicitness(with_constant, factors, with_constant, factors, random_state=0)
    # The constant dimension has no information: it scores 0 and dilutes the mean over 5 dims.
    plain = modularity_explicitness(codes, factors, codes, factors, random_state=0)
    assert scores["modularity"] == pytest.approx(plain["modularity"] * 4 / 5, abs=1e-9)
    assert np.isfinite(scores["explicitness_test"])


# --- bad input ---------------------------------------------------------------------------------


def test_nan_codes_name_the_row(data):
    codes, factors = data
    codes = codes.copy()
    codes[3, 1] = np.nan
    with pytest.raises(ValueError, match="codes contain NaN at row 3"):
        mig(codes, factors, random_state=0)
    with pytest.raises(ValueError, match="codes_train contain NaN at row 3"):
        dci(codes, factors, codes, factors, random_state=0)


def test_mismatched_lengths_and_shapes(data):
    codes, factors = data
    with pytest.raises(ValueError, match="codes has 3000 rows but factors has 2999"):
        mig(codes, factors[:-1], random_state=0)
    with pytest.raises(ValueError, match="codes_train has 4 dimensions but codes_test has 3"):
        sap(codes, factors, codes[:, :3], factors, random_state=0)
    with pytest.raises(ValueError, match="2-D"):
        mig(codes[:, 0], factors, random_state=0)
    with pytest.raises(ValueError, match="integer class indices"):
        mig(codes, factors + 0.5, random_state=0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        mig(codes[:, :1], factors, random_state=0)
    with pytest.raises(ValueError, match="random_state"):
        mig(codes, factors, random_state="seed")
    with pytest.raises(ValueError, match="method"):
        dci(codes, factors, codes, factors, random_state=0, method="approximate")


def test_constant_factor_is_skipped_with_a_warning(data):
    codes, factors = data
    with_constant = np.concatenate([factors, np.zeros((factors.shape[0], 1), dtype=int)], axis=1)
    with pytest.warns(RuntimeWarning, match=r"factor\(s\) \[4\] take a single value"):
        skipped = mig(codes, with_constant, random_state=0)
    assert skipped == mig(codes, factors, random_state=0)
    with pytest.warns(RuntimeWarning):
        scores = sap(codes[:500], with_constant[:500], codes[500:800], with_constant[500:800], random_state=0)
    assert scores == sap(codes[:500], factors[:500], codes[500:800], factors[500:800], random_state=0)
    with pytest.raises(ValueError, match="every factor is constant"):
        mig(codes, np.zeros((codes.shape[0], 2), dtype=int), random_state=0)


def test_metrics_import_neither_trainables_search_ray_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys, analysis.metrics; "
        "print(sorted(m for m in ('trainables', 'search', 'ray', 'torch') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
