"""Weak-disentanglement metrics: classification by the mixture prior, acceptance by alpha,
relation accuracy of composed relational models, and codes -> factor values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.metrics import (
    MixturePrior,
    ModularPrior,
    classify_codes,
    clustering_accuracy,
    clustering_accuracy_by_alpha,
    codes_to_factors,
    relation_accuracy,
    relation_accuracy_by_depth,
    relation_accuracy_grid,
)


def grid_prior(sizes=(2, 3), spacing=4.0, scale=0.5) -> MixturePrior:
    """One component per factor combination (row-major), means on a grid, isotropic covariances."""
    combos = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=-1).reshape(-1, len(sizes))
    means = combos * spacing
    covariances = np.tile(np.eye(len(sizes)) * scale**2, (len(combos), 1, 1))
    return MixturePrior(means, covariances, combos)


def test_density_acceptance_by_hand_in_one_dimension():
    # N(-1, 1) and N(1, 1): log N(z; mu, 1) = -(z - mu)^2 / 2 - log(2 pi) / 2
    prior = MixturePrior(np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)), np.array([[0], [1]]))
    codes = np.array([[1.0], [0.0], [1.5]])
    peak = 1 / math.sqrt(2 * math.pi)                      # 0.3989: the density at a mean
    predicted, density = classify_codes(codes, prior)      # the default rule: "density"
    np.testing.assert_array_equal(predicted[:, 0], [1, 0, 1])  # a tie goes to the first component
    np.testing.assert_allclose(density, [peak, peak * math.exp(-0.5), peak * math.exp(-0.125)])  # .399 .242 .352
    labels = np.array([1, 1, 1])
    assert clustering_accuracy(codes, labels, prior, alpha=0.0) == {"accuracy": 2 / 3, "accepted_ratio": 1.0}
    assert clustering_accuracy(codes, labels, prior, alpha=0.3) == {"accuracy": 1.0, "accepted_ratio": 2 / 3}
    assert clustering_accuracy(codes, labels, prior, alpha=0.39) == {"accuracy": 1.0, "accepted_ratio": 1 / 3}
    nothing = clustering_accuracy(codes, labels, prior, alpha=0.4)   # above the peak density: none
    assert math.isnan(nothing["accuracy"]) and nothing["accepted_ratio"] == 0.0
    # the grid classifies once and gives the same numbers as one call per alpha
    rows = clustering_accuracy_by_alpha(codes, labels, prior, [0.0, 0.3, 0.39])
    assert [row["alpha"] for row in rows] == [0.0, 0.3, 0.39]
    assert [row["accepted_ratio"] for row in rows] == [1.0, 2 / 3, 1 / 3]


def test_posterior_and_relative_density_by_hand():
    prior = MixturePrior(np.array([[-1.0], [1.0]]), np.ones((2, 1, 1)), np.array([[0], [1]]))
    codes = np.array([[1.0], [0.0], [1.5]])
    predicted, posterior = classify_codes(codes, prior, acceptance="posterior")
    np.testing.assert_array_equal(predicted[:, 0], [1, 0, 1])  # a tie goes to the first component
    np.testing.assert_allclose(posterior, [1 / (1 + math.exp(-2)), 0.5, 1 / (1 + math.exp(-3))])
    _, relative = classify_codes(codes, prior, acceptance="relative_density")
    np.testing.assert_allclose(relative, [1.0, math.exp(-0.5), math.exp(-0.125)])
    labels = np.array([1, 1, 1])
    assert clustering_accuracy(codes, labels, prior, 0.0, acceptance="posterior") == {
        "accuracy": 2 / 3, "accepted_ratio": 1.0}
    assert clustering_accuracy(codes, labels, prior, 0.6, acceptance="posterior") == {
        "accuracy": 1.0, "accepted_ratio": 2 / 3}
    assert clustering_accuracy(codes, labels, prior, 0.9, acceptance="relative_density") == {
        "accuracy": 1.0,
        "accepted_ratio": 1 / 3,
    }
    nothing = clustering_accuracy(codes, labels, prior, alpha=1.0, acceptance="posterior")
    assert math.isnan(nothing["accuracy"]) and nothing["accepted_ratio"] == 0.0
    with pytest.raises(ValueError, match="acceptance must be one of"):
        clustering_accuracy(codes, labels, prior, 0.5, acceptance="likelihood")


def test_full_covariance_density_matches_direct_formula():
    rng = np.random.RandomState(0)
    a = rng.randn(3, 3, 3)
    covariances = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(3)
    prior = MixturePrior(rng.randn(3, 3), covariances, np.arange(3)[:, None])
    codes = rng.randn(5, 3)
    direct = np.array(
        [
            [
                -0.5 * (z - m) @ np.linalg.inv(s) @ (z - m) - 0.5 * np.log(np.linalg.det(2 * np.pi * s))
                for m, s in zip(prior.means, covariances)
            ]
            for z in codes
        ]
    )
    np.testing.assert_allclose(prior.log_densities(codes), direct, atol=1e-9)


def test_samples_from_the_prior_are_classified_correctly_and_alpha_lowers_acceptance():
    prior = grid_prior()
    rng = np.random.RandomState(1)
    components = rng.randint(6, size=3000)
    codes = prior.sample(components, rng)
    assert clustering_accuracy(codes, components, prior, alpha=0.0) == {"accuracy": 1.0, "accepted_ratio": 1.0}
    # 2-D labels (factor values) give the same answer as combination indices.
    assert clustering_accuracy(codes, prior.component_factors[components], prior, alpha=0.0)["accuracy"] == 1.0
    ratios = [
        clustering_accuracy(codes, components, prior, alpha, acceptance="relative_density")["accepted_ratio"]
        for alpha in (0.0, 0.2, 0.5, 0.8, 0.99)
    ]
    assert ratios[0] == 1.0 and all(a >= b for a, b in zip(ratios, ratios[1:])) and ratios[-1] < 0.05
    # In 2-D, exp(-M^2/2) >= alpha <=> M^2 <= -2 ln(alpha), a chi-square(2) event of probability 1 - alpha.
    assert ratios[2] == pytest.approx(0.5, abs=0.03)
    # Codes sent to the wrong component are wrong.
    wrong = (components + 1) % 6
    assert clustering_accuracy(codes, wrong, prior, alpha=0.0)["accuracy"] == 0.0


def test_priors_as_torch_tensors_dicts_and_duck_typed_objects():
    prior = grid_prior()
    codes = prior.means + 0.1
    expected = codes_to_factors(codes, prior)
    np.testing.assert_array_equal(expected, prior.component_factors)
    as_dict = {"means": prior.means, "covariances": prior.covariances, "component_factors": prior.component_factors}

    class TorchPrior:
        means = torch.tensor(prior.means, dtype=torch.float32)
        covariances = torch.tensor(prior.covariances, dtype=torch.float32, requires_grad=False)
        component_factors = torch.tensor(prior.component_factors)

    for other in (as_dict, TorchPrior()):
        np.testing.assert_array_equal(codes_to_factors(codes, other), expected)
    np.testing.assert_array_equal(codes_to_factors(torch.tensor(codes), prior), expected)


def modular_prior() -> ModularPrior:
    """Two factors (3 and 2 values), each over a 2-D partition of a 5-D code (dimension 4 unused)."""
    first = MixturePrior(np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]]), np.tile(np.eye(2) * 0.25, (3, 1, 1)), np.arange(3))
    second = {"means": np.array([[0.0, 0.0], [0.0, 6.0]]), "covariances": np.tile(np.eye(2) * 0.25, (2, 1, 1))}
    return ModularPrior((first, MixturePrior(second["means"], second["covariances"], np.array([[0], [1]]))), (slice(0, 2), slice(2, 4)))


def test_modular_prior_classifies_each_partition():
    prior = modular_prior()
    codes = np.array([[5.0, 0.0, 0.0, 6.0, 9.0], [0.0, 5.0, 0.0, 0.0, -9.0], [2.5, 0.0, 0.0, 0.2, 0.0]])
    np.testing.assert_array_equal(codes_to_factors(codes, prior), [[1, 1], [2, 0], [0, 0]])
    # Combination labels unravel row-major (second factor fastest): 3 -> (1, 1), 4 -> (2, 0).
    labels = np.array([3, 4, 1])
    result = clustering_accuracy(codes, labels, prior, alpha=0.0)
    assert result == {"accuracy": 2 / 3, "accepted_ratio": 1.0}
    # The third code sits halfway between two components of the first partition: posterior 0.5.
    assert clustering_accuracy(codes, labels, prior, 0.6, acceptance="posterior") == {
        "accuracy": 1.0, "accepted_ratio": 2 / 3}
    # The same object duck-typed (priors without component_factors: component index = value).
    class Duck:
        priors = [{"means": p.means, "covariances": p.covariances} for p in prior.priors]
        slices = [slice(0, 2), slice(2, 4)]

    np.testing.assert_array_equal(codes_to_factors(codes, Duck()), [[1, 1], [2, 0], [0, 0]])


def test_modular_density_is_the_product_of_the_partitions_densities():
    # Each partition is 2-D with covariance 0.25 I: its density at a mean is 1 / (2 pi 0.25) = 0.6366,
    # so a code on a mean in both partitions has density 0.6366^2 = 0.4053.
    prior = modular_prior()
    at_mean = 1 / (2 * math.pi * 0.25)
    codes = np.array([[5.0, 0.0, 0.0, 6.0, 9.0], [0.0, 5.0, 0.0, 0.0, -9.0], [2.5, 0.0, 0.0, 0.2, 0.0]])
    _, density = classify_codes(codes, prior)
    # third code: Mahalanobis^2 = 2.5^2 / 0.25 = 25 in the first partition, 0.2^2 / 0.25 = 0.16 in the second
    np.testing.assert_allclose(density, [at_mean**2, at_mean**2, at_mean**2 * math.exp(-12.5 - 0.08)])
    labels = np.array([3, 4, 1])
    assert clustering_accuracy(codes, labels, prior, alpha=0.4) == {"accuracy": 1.0, "accepted_ratio": 2 / 3}
    # 0.41 is below each partition's density (0.64) but above their product (0.405): nothing accepted
    above = clustering_accuracy(codes, labels, prior, alpha=0.41)
    assert math.isnan(above["accuracy"]) and above["accepted_ratio"] == 0.0


def test_relation_grid_equals_one_call_per_depth_and_alpha():
    prior = grid_prior(sizes=(2, 3))
    table = cyclic_relations(prior.num_components)
    perfect = perfect_model(prior, table)

    def drifting(codes, relation):   # deterministic drift: densities fall with depth
        return perfect(codes, relation) + 0.3

    grid = relation_accuracy_grid(drifting, prior, table, depths=[1, 3], alphas=[0.0, 0.2], n=200, random_state=0)
    assert [(row["depth"], row["alpha"]) for row in grid] == [(1, 0.0), (1, 0.2), (3, 0.0), (3, 0.2)]
    for row in grid:
        single = relation_accuracy(drifting, prior, table, row["depth"], row["alpha"], 200, 0)
        assert single == {"accuracy": row["accuracy"], "accepted_ratio": row["accepted_ratio"]}
    assert grid[0]["accepted_ratio"] == grid[2]["accepted_ratio"] == 1.0
    assert grid[3]["accepted_ratio"] < grid[1]["accepted_ratio"] < 1.0


def cyclic_relations(num_components: int) -> np.ndarray:
    components = np.arange(num_components)
    return np.stack([(components + 1) % num_components, (components - 1) % num_components])


def perfect_model(prior: MixturePrior, relations: np.ndarray):
    def apply(codes, relation):
        source = np.argmin(((codes[:, None, :] - prior.means[None]) ** 2).sum(-1), axis=1)
        return prior.means[relations[relation, source]] + (codes - prior.means[source])

    return apply


def test_relation_accuracy_perfect_identity_and_noisy_models():
    prior = grid_prior(sizes=(4,), spacing=4.0, scale=0.3)
    relations = cyclic_relations(4)
    perfect = relation_accuracy_by_depth(perfect_model(prior, relations), prior, relations, alpha=0.0, n=500, random_state=0)
    assert [r["depth"] for r in perfect] == list(range(1, 11))
    assert all(r["accuracy"] == 1.0 and r["accepted_ratio"] == 1.0 for r in perfect)
    # A model that ignores the relation is right only when the composed +-1 steps cancel mod 4:
    # never at odd depths; at depth 2 when the steps are +1-1 or -1+1 (2/4), at depth 4 when they sum
    # to -4, 0 or 4 (1 + 6 + 1 of 16).
    identity = relation_accuracy_by_depth(lambda z, r: z, prior, relations, depths=[1, 2, 3, 4], alpha=0.0, n=4000, random_state=1)
    assert identity[0]["accuracy"] == 0.0 and identity[2]["accuracy"] == 0.0
    assert identity[1]["accuracy"] == pytest.approx(0.5, abs=0.03)
    assert identity[3]["accuracy"] == pytest.approx(8 / 16, abs=0.03)
    # Noise added at each step accumulates: accuracy falls with depth.
    rng = np.random.RandomState(2)
    step = perfect_model(prior, relations)
    noisy = relation_accuracy_by_depth(
        lambda z, r: step(z, r) + 0.8 * rng.randn(*z.shape), prior, relations, depths=[1, 10], alpha=0.0, n=2000, random_state=3
    )
    assert noisy[0]["accuracy"] > noisy[1]["accuracy"] + 0.1


def test_relation_accuracy_single_depth_equals_the_composed_chain():
    prior = grid_prior(sizes=(4,), spacing=2.0, scale=0.6)
    relations = cyclic_relations(4)

    def model(codes, relation):
        return perfect_model(prior, relations)(codes, relation) + 0.1

    chain = relation_accuracy_by_depth(model, prior, relations, depths=range(1, 6), alpha=0.3, n=300, random_state=7)
    for depth in (1, 3, 5):
        single = relation_accuracy(model, prior, relations, depth, 0.3, 300, 7)
        assert single == {"accuracy": chain[depth - 1]["accuracy"], "accepted_ratio": chain[depth - 1]["accepted_ratio"]}
    assert relation_accuracy(model, prior, relations, 2, 0.3, 300, 7) != relation_accuracy(model, prior, relations, 2, 0.3, 300, 8)


def test_relation_accuracy_on_a_modular_prior():
    prior = modular_prior()
    # Combinations (a, b) with a in 0..2, b in 0..1, index 2a + b; relation 0 cycles a, relation 1 flips b.
    combos = np.arange(6)
    a, b = np.unravel_index(combos, (3, 2))
    relations = np.stack([np.ravel_multi_index(((a + 1) % 3, b), (3, 2)), np.ravel_multi_index((a, 1 - b), (3, 2))])

    def model(codes, relation):
        out = codes.copy()
        factors = codes_to_factors(codes, prior)
        first, second = prior.priors
        cycle = relation == 0
        out[cycle, 0:2] += first.means[(factors[cycle, 0] + 1) % 3] - first.means[factors[cycle, 0]]
        out[~cycle, 2:4] += second.means[1 - factors[~cycle, 1]] - second.means[factors[~cycle, 1]]
        return out

    results = relation_accuracy_by_depth(model, prior, relations, depths=[1, 5], alpha=0.0, n=400, random_state=0)
    assert all(r["accuracy"] == 1.0 for r in results)
    broken = relation_accuracy_by_depth(lambda z, r: z, prior, relations, depths=[1], alpha=0.0, n=400, random_state=0)
    assert broken[0]["accuracy"] == 0.0


def test_moved_factors_score_checks_only_what_the_relations_moved():
    prior = modular_prior()
    combos = np.arange(6)
    a, b = np.unravel_index(combos, (3, 2))
    relations = np.stack([np.ravel_multi_index(((a + 1) % 3, b), (3, 2)), np.ravel_multi_index((a, 1 - b), (3, 2))])
    first, second = prior.priors

    def moves_right_scrambles_b(codes, relation):
        # moves factor a correctly under relation 0 and factor b under relation 1, but always sends the
        # unmoved factor of relation 0 (b) to value 0: right on b only half the time
        out = codes.copy()
        factors = codes_to_factors(codes, prior)
        cycle = relation == 0
        out[cycle, 0:2] += first.means[(factors[cycle, 0] + 1) % 3] - first.means[factors[cycle, 0]]
        out[cycle, 2:4] = second.means[0]
        out[~cycle, 2:4] += second.means[1 - factors[~cycle, 1]] - second.means[factors[~cycle, 1]]
        return out

    kwargs = dict(depths=[1, 2], alphas=[0.0], n=2000, random_state=0)
    every = relation_accuracy_grid(moves_right_scrambles_b, prior, relations, **kwargs)
    moved = relation_accuracy_grid(moves_right_scrambles_b, prior, relations, score="moved_factors", **kwargs)
    # depth 1: relation 0 (half the draws) keeps b right half the time -> 0.75 on every factor
    assert every[0]["accuracy"] == pytest.approx(0.75, abs=0.03)
    assert moved[0]["accuracy"] == 1.0 and moved[1]["accuracy"] < 1.0     # at depth 2 b was moved, then scrambled
    assert moved[0]["accepted_ratio"] == every[0]["accepted_ratio"]
    # a model that moves nothing is wrong on the moved factor whatever the score
    idle = relation_accuracy(lambda z, r: z, prior, relations, 1, 0.0, 500, 0, score="moved_factors")
    assert idle["accuracy"] == 0.0
    with pytest.raises(ValueError, match="score"):
        relation_accuracy(lambda z, r: z, prior, relations, 1, 0.0, 10, 0, score="changed")


def test_bad_priors_and_arguments():
    prior = grid_prior()
    codes = prior.means
    with pytest.raises(ValueError, match="alpha must be in"):
        clustering_accuracy(codes, np.arange(6), prior, alpha=1.5)
    with pytest.raises(ValueError, match="acceptance"):
        clustering_accuracy(codes, np.arange(6), prior, alpha=0.5, acceptance="likelihood")
    with pytest.raises(ValueError, match="codes has 3 dimensions but the prior expects 2"):
        codes_to_factors(np.zeros((2, 3)), prior)
    with pytest.raises(ValueError, match="codes has 6 rows but labels has 5"):
        clustering_accuracy(codes, np.arange(5), prior, alpha=0.0)
    with pytest.raises(ValueError, match="component 1 is not positive definite"):
        singular = prior.covariances.copy()
        singular[1] = 0.0
        codes_to_factors(codes, MixturePrior(prior.means, singular, prior.component_factors))
    with pytest.raises(ValueError, match="component_factors"):
        codes_to_factors(codes, {"means": prior.means, "covariances": prior.covariances})
    with pytest.raises(ValueError, match=r"relations must be int \[R, C\] with C = 6"):
        relation_accuracy(lambda z, r: z, prior, np.zeros((2, 5), dtype=int), 1, 0.0, 10, 0)
    with pytest.raises(ValueError, match="relational_model output at depth 1 contain NaN"):
        relation_accuracy(lambda z, r: z * np.nan, prior, cyclic_relations(6), 1, 0.0, 10, 0)
