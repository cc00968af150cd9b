"""The Gaussian-mixture priors: fitting, shrinkage, coverage errors, scoring and seeded sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import trainables.models.priors as priors_module
from trainables.errors import WeakdisError
from trainables.models import GaussianMixturePrior, ModularPrior, check_coverage


def _random_spd(rng: np.random.RandomState, d: int) -> np.ndarray:
    a = rng.randn(d, d)
    return a @ a.T / d + 0.2 * np.eye(d)


def _numpy_log_pdf(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    diff = z - mean
    solved = np.linalg.solve(cov, diff.T).T
    return -0.5 * (len(mean) * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + (diff * solved).sum(1))


def test_fit_recovers_known_means_and_covariances():
    rng = np.random.RandomState(0)
    d, per = 3, 4000
    means = rng.randn(3, d) * 5
    covs = np.stack([_random_spd(rng, d) for _ in range(3)])
    codes = np.concatenate([rng.multivariate_normal(means[c], covs[c], per) for c in range(3)])
    labels = np.repeat(np.arange(3), per)
    prior = GaussianMixturePrior(np.arange(3)[:, None], d, ("f",), covariance_floor=1e-4)
    prior.fit(torch.as_tensor(codes, dtype=torch.float32), torch.as_tensor(labels))
    assert prior.fitted
    # exactly the sample statistics (plus the floor, scaled by the codes' mean variance, > 1 here) ...
    floor = 1e-4 * codes.var(0, ddof=1).mean()
    assert floor > 1e-3
    for c in range(3):
        block = codes[labels == c]
        np.testing.assert_allclose(prior.means.numpy()[c], block.mean(0), atol=1e-5)
        np.testing.assert_allclose(prior.covariances.numpy()[c], np.cov(block.T) + floor * np.eye(d), atol=1e-4)
    # ... which are close to the true parameters
    np.testing.assert_allclose(prior.means.numpy(), means, atol=0.1)
    np.testing.assert_allclose(prior.covariances.numpy(), covs, atol=0.1)
    np.testing.assert_array_equal(prior.component_factors.numpy(), np.arange(3)[:, None])


def test_few_samples_shrink_towards_pooled_diagonal():
    d = 3
    codes = torch.tensor([
        [0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [2.0, 2.0, 0.0], [1.0, 1.0, 4.0],  # comp 0: 5
        [10.0, 0.0, 0.0], [11.0, 1.0, -1.0],                                                   # comp 1: 2
        [-5.0, 3.0, 3.0],                                                                       # comp 2: 1
    ], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    floor = 1e-3
    prior = GaussianMixturePrior(np.arange(3)[:, None], d, min_samples=4, covariance_floor=floor)
    prior.fit(codes, labels)
    x = codes.numpy()
    means = np.stack([x[:5].mean(0), x[5:7].mean(0), x[7]])
    centred = x - means[labels.numpy()]
    pooled = (centred ** 2).sum(0) / (8 - 3)
    full = np.cov(x[:5].T)                                  # n = 5 >= 4: plain sample covariance
    w = (2 - 1) / (4 - 1)                                   # n = 2: shrunk
    shrunk = w * np.cov(x[5:7].T) + (1 - w) * np.diag(pooled)
    single = np.diag(pooled)                                # n = 1: the pooled diagonal
    spread = max(1.0, x.var(0, ddof=1).mean())             # the floor grows with codes wider than 1
    expected = np.stack([full, shrunk, single]) + floor * spread * np.eye(d)
    np.testing.assert_allclose(prior.means.numpy(), means, atol=1e-6)
    np.testing.assert_allclose(prior.covariances.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(prior.covariances.numpy()) > 0)


def _one_code_a_component(seed: int, components: int = 300, d: int = 4, within: float = 0.1):
    """Labelled codes, one a component, and unlabelled codes of the same components."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(components, d, generator=g, dtype=torch.float64)
    labelled = centres + within * torch.randn(components, d, generator=g, dtype=torch.float64)
    drawn = torch.randint(components, (3000,), generator=g)
    unlabelled = centres[drawn] + within * torch.randn(3000, d, generator=g, dtype=torch.float64)
    return labelled, unlabelled


def test_one_code_a_component_takes_its_spread_from_unlabelled_codes_not_from_all_codes():
    labelled, unlabelled = _one_code_a_component(seed=3)
    components = torch.arange(len(labelled))
    prior = GaussianMixturePrior(np.arange(len(labelled))[:, None], 4, covariance_floor=0.0)
    prior.fit(labelled, components)
    # without unlabelled codes: the labelled codes' overall variance, so samples of the mixture
    # spread twice as wide as the codes (the means are the codes themselves)
    np.testing.assert_allclose(np.diag(prior.covariances[0].numpy()), labelled.var(0).numpy(), rtol=1e-5)
    widened = prior.sample(20000, generator=torch.Generator().manual_seed(0)).var(0) / labelled.var(0)
    assert (widened > 1.8).all() and (widened < 2.2).all()
    prior.fit(labelled, components, unlabelled)
    variance = np.diag(prior.covariances[0].numpy())
    assert (variance > 0.5 * 0.1 ** 2).all() and (variance < 1.5 * 0.1 ** 2).all()   # the within spread
    assert torch.equal(prior.covariances[0], prior.covariances[-1])
    kept = prior.sample(20000, generator=torch.Generator().manual_seed(0)).var(0) / labelled.var(0)
    assert (kept < 1.05).all()
    # with a second code in some component the pooled within-component variance is used, as before
    twice = torch.cat([labelled, labelled[:1] + 0.1])
    prior.fit(twice, torch.cat([components, components[:1]]), unlabelled)
    np.testing.assert_allclose(np.diag(prior.covariances[5].numpy()), [0.1 ** 2 / 2] * 4, rtol=1e-5)


def test_codes_that_ran_away_still_give_covariances_positive_definite_in_float32():
    # 27 components, 7 codes each in 6 dimensions, spread over thousands of units (as in a run whose
    # codes ran away): the sample covariances are nearly singular. Under the absolute floor their
    # float32 copies had negative eigenvalues and the clustering metrics could not be computed.
    rng = np.random.RandomState(0)
    d, c, per = 6, 27, 7
    centres = rng.randn(c, d) * 1000
    directions = rng.randn(c, 2, d)                                  # each component near a plane
    codes = np.concatenate([centres[k] + rng.randn(per, 2) @ directions[k] * 300 + rng.randn(per, d) * 1e-3
                            for k in range(c)])
    labels = np.repeat(np.arange(c), per)
    prior = GaussianMixturePrior(np.arange(c)[:, None], d, ("f",), covariance_scale=0.1)
    prior.fit(torch.as_tensor(codes, dtype=torch.float32), torch.as_tensor(labels))
    covariances = prior.covariances.numpy()
    assert covariances.dtype == np.float32
    assert np.linalg.eigvalsh(covariances.astype(np.float64)).min() > 0
    np.linalg.cholesky(covariances)                                  # what analysis.metrics.weak does
    # codes of unit scale keep the absolute floor
    x = codes / 1e4
    assert x.var(0, ddof=1).mean() < 1
    small = GaussianMixturePrior(np.arange(c)[:, None], d, ("f",))
    small.fit(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(labels))
    block = x[labels == 0]
    np.testing.assert_allclose(small.covariances.numpy()[0], np.cov(block.T) + 1e-4 * np.eye(d), rtol=1e-4, atol=1e-9)


def test_empty_component_error_names_its_factor_values_and_tau():
    factors = np.array([[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]])   # component (2, 0) missing... sizes 3x2
    combos = np.array([[a, b] for a in range(3) for b in range(2)])
    components = factors[:, 0] * 2 + factors[:, 1]
    with pytest.raises(WeakdisError, match=r"\(shape=2, posX=0\).*tau=5.*2 of 6.*stratified.*more images"):
        check_coverage(components, combos, ("shape", "posX"))
    check_coverage(np.arange(6), combos, ("shape", "posX"))   # full coverage passes
    with pytest.raises(WeakdisError, match=r"\(posX=2\).*expected every value of posX to be labelled"):
        check_coverage(np.array([0, 1, 1]), np.arange(3)[:, None], ("posX",))    # one factor: M-AE's check


def test_log_prob_matches_numpy_and_chunks_agree(monkeypatch):
    rng = np.random.RandomState(1)
    c, d = 4, 3
    means = rng.randn(c, d)
    covs = np.stack([_random_spd(rng, d) for _ in range(c)])
    prior = GaussianMixturePrior(np.arange(c)[:, None], d)
    prior.set_parameters(torch.as_tensor(means), torch.as_tensor(covs))
    z = rng.randn(50, d)
    expected = np.stack([_numpy_log_pdf(z, means[k], covs[k]) for k in range(c)], axis=1)
    got = prior.log_prob_components(torch.as_tensor(z, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    comps = torch.as_tensor(rng.randint(c, size=50))
    per_sample = prior.log_prob(torch.as_tensor(z, dtype=torch.float32), comps).numpy()
    np.testing.assert_allclose(per_sample, expected[np.arange(50), comps.numpy()], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(prior.predict(torch.as_tensor(z, dtype=torch.float32)).numpy(), expected.argmax(1))
    monkeypatch.setattr(priors_module, "_SCORE_CHUNK_ELEMENTS", 7 * c * d)   # 7 codes per chunk
    np.testing.assert_allclose(prior.log_prob_components(torch.as_tensor(z, dtype=torch.float32)).numpy(), got, atol=1e-6)


def test_sampling_draws_from_the_asked_components_and_is_seeded():
    rng = np.random.RandomState(2)
    c, d = 3, 2
    means = np.array([[0.0, 0.0], [10.0, -4.0], [-6.0, 8.0]])
    covs = np.stack([_random_spd(rng, d) for _ in range(c)])
    prior = GaussianMixturePrior(np.arange(c)[:, None], d)
    prior.set_parameters(torch.as_tensor(means), torch.as_tensor(covs))
    comps = torch.tensor([2] * 20000 + [1] * 20000)
    z = prior.sample(40000, comps, torch.Generator().manual_seed(5)).numpy()
    for k, block in ((2, z[:20000]), (1, z[20000:])):
        np.testing.assert_allclose(block.mean(0), means[k], atol=0.05)
        np.testing.assert_allclose(np.cov(block.T), covs[k], atol=0.06)
    again = prior.sample(40000, comps, torch.Generator().manual_seed(5)).numpy()
    np.testing.assert_array_equal(z, again)
    other = prior.sample(40000, comps, torch.Generator().manual_seed(6)).numpy()
    assert not np.array_equal(z, other)
    drawn = prior.sample_components(30000, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 30000, [1 / 3] * 3, atol=0.02)


def test_modular_prior_joint_view_is_the_product_of_its_factor_mixtures():
    rng = np.random.RandomState(3)
    prior = ModularPrior((2, 3), 2, ("shape", "posX"))
    for k, size in enumerate((2, 3)):
        prior.priors[k].set_parameters(torch.as_tensor(rng.randn(size, 2) * 4),
                                       torch.as_tensor(np.stack([_random_spd(rng, 2) for _ in range(size)])))
    assert prior.fitted and prior.dim == 4 and prior.num_components == 6
    np.testing.assert_array_equal(prior.component_factors.numpy(), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    means, covs = prior.means.numpy(), prior.covariances.numpy()
    z = rng.randn(30, 4).astype(np.float32) * 3
    joint = np.stack([_numpy_log_pdf(z, means[c], covs[c]) for c in range(6)], axis=1)
    np.testing.assert_allclose(prior.log_prob_components(torch.as_tensor(z)).numpy(), joint, rtol=1e-4, atol=1e-4)
    assert np.all(covs[:, :2, 2:] == 0)
    predicted = prior.predict_factors(torch.as_tensor(z)).numpy()
    np.testing.assert_array_equal(predicted, prior.component_factors.numpy()[joint.argmax(1)])
    np.testing.assert_array_equal(prior.predict(torch.as_tensor(z)).numpy(), joint.argmax(1))
    by_index = prior.log_prob(torch.as_tensor(z), torch.full((30,), 4))
    by_values = prior.log_prob(torch.as_tensor(z), torch.tensor([[1, 1]] * 30))
    np.testing.assert_allclose(by_index.numpy(), joint[:, 4], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(by_values.numpy(), joint[:, 4], rtol=1e-4, atol=1e-4)
    samples = prior.sample(20000, torch.full((20000,), 5), torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(samples.mean(0), means[5], atol=0.05)


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "oas"])
def test_shrinkage_estimators_match_sklearns_per_component(estimator):
    from sklearn.covariance import OAS, LedoitWolf

    rng = np.random.RandomState(0)
    d, sizes = 8, (30, 50, 70)
    codes = np.concatenate([rng.randn(n, d) @ _random_spd(rng, d) + 3 * c for c, n in enumerate(sizes)])
    labels = np.repeat(np.arange(3), sizes)
    floor = 1e-9
    prior = GaussianMixturePrior(np.arange(3)[:, None], d, covariance_floor=floor, covariance_estimator=estimator)
    prior.fit(torch.tensor(codes), torch.tensor(labels))
    spread = max(1.0, codes.var(0, ddof=1).mean())
    reference = {"ledoit_wolf": LedoitWolf, "oas": OAS}[estimator]
    for c in range(3):
        expected = reference().fit(codes[labels == c]).covariance_ + floor * spread * np.eye(d)
        np.testing.assert_allclose(prior.covariances[c].numpy(), expected, rtol=1e-5, atol=1e-7)
        assert not np.allclose(expected, np.cov(codes[labels == c].T), rtol=1e-2)


def test_shrunk_covariances_score_held_out_codes_higher_than_the_sample_covariance():
    # ~37 labelled codes a component in 8 dimensions, as with tau = 1000 on dsprites:v2's 27 combinations:
    # the sample covariance's small eigenvalues are too small, so held-out codes score low
    rng = np.random.RandomState(1)
    d, n, components = 8, 37, 27
    covs = [_random_spd(rng, d) for _ in range(components)]
    means = rng.randn(components, d) * 10
    train = np.concatenate([rng.multivariate_normal(means[c], covs[c], n) for c in range(components)])
    test = np.concatenate([rng.multivariate_normal(means[c], covs[c], 200) for c in range(components)])
    labels = torch.tensor(np.repeat(np.arange(components), n))
    test_labels = torch.tensor(np.repeat(np.arange(components), 200))
    held_out = {}
    for estimator in ("sample", "ledoit_wolf", "oas"):
        prior = GaussianMixturePrior(np.arange(components)[:, None], d, covariance_estimator=estimator)
        prior.fit(torch.tensor(train), labels)
        held_out[estimator] = prior.log_prob(torch.tensor(test, dtype=torch.float32), test_labels).mean().item()
    assert held_out["ledoit_wolf"] > held_out["sample"] + 0.1
    assert held_out["oas"] > held_out["sample"] + 0.1


def test_unknown_covariance_estimator_is_a_clear_error():
    from trainables.models.absae import AbsAEConfig

    with pytest.raises(WeakdisError, match="covariance_estimator='lw'; expected one of sample, ledoit_wolf, oas"):
        GaussianMixturePrior(np.arange(3)[:, None], 2, covariance_estimator="lw")
    with pytest.raises(WeakdisError, match="prior_covariance_estimator='lw' is invalid; expected one of sample, ledoit_wolf, oas"):
        AbsAEConfig(prior_covariance_estimator="lw").validate("absae")
