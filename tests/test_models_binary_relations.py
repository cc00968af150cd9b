"""HWF's binary relations: the target tables, the composed relation accuracy, and a binary ReL that learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.metrics import MixturePrior, binary_relation_accuracy_grid
from test_models_helpers import DSPRITES_V2, stand_in_dataset, trial_config
from trainables.data import get_version
from trainables.errors import WeakdisError
from trainables.models import build_model
from trainables.models.networks import make_decoder, make_encoder
from trainables.models.relations import binary_relation_table, binary_relations_for

HWF = get_version("hwf:v1")
PLUS, MINUS, TIMES = 10, 11, 12


def test_tables_checked_by_hand():
    relations = binary_relations_for(HWF)
    assert [r.name for r in relations] == ["sum", "difference", "product"]
    table = binary_relation_table(HWF, relations)
    assert table.shape == (3, 13, 13, 1)
    assert table[0, 2, 3, 0] == 5 and table[0, 9, 9, 0] == 8           # 2 + 3, 9 + 9 = 18
    assert table[1, 7, 2, 0] == 5 and table[1, 3, 5, 0] == 8           # 7 - 2, 3 - 5 = -2 = 8 mod 10
    assert table[2, 7, 8, 0] == 6 and table[2, 0, 9, 0] == 0           # 7 x 8 = 56, 0 x 9
    assert (table[:, PLUS:, :, 0] == -1).all() and (table[:, :, MINUS, 0] == -1).all()   # operators: no operand
    sign = binary_relation_table(HWF, relations, "sign")
    assert list(sign[1, 3, 5]) == [2, 1] and list(sign[1, 5, 3]) == [2, 0] and list(sign[0, 9, 9]) == [8, 0]
    two = binary_relation_table(HWF, relations, "two_digit")
    assert list(two[2, 7, 8]) == [5, 6] and list(two[0, 9, 9]) == [1, 8] and list(two[0, 2, 3]) == [0, 5]
    digits = binary_relation_table(get_version("hwf:digits"), relations)
    assert digits.shape == (3, 10, 10, 1) and (digits >= 0).all()
    np.testing.assert_array_equal(digits[..., 0], table[:, :10, :10, 0])
    assert binary_relations_for(DSPRITES_V2) == ()


def _digit_prior() -> MixturePrior:
    rng = np.random.RandomState(0)
    return MixturePrior(rng.randn(10, 4) * 4, np.tile(np.eye(4) * 0.05, (10, 1, 1)), np.arange(10)[:, None])


def test_binary_relation_accuracy_composes_results_as_inputs():
    prior = _digit_prior()
    table = binary_relation_table(get_version("hwf:digits"), binary_relations_for(HWF))[..., 0]
    means = prior.means

    def oracle(codes, relation, second):
        a = np.argmin(((codes[:, None] - means[None]) ** 2).sum(-1), axis=1)
        b = np.argmin(((second[:, None] - means[None]) ** 2).sum(-1), axis=1)
        return means[table[relation, a, b]]

    rows = binary_relation_accuracy_grid(oracle, prior, table, depths=(1, 5, 10), alphas=(0.0,), n=500,
                                         random_state=0)
    assert [r["depth"] for r in rows] == [1, 5, 10]
    assert all(r["accuracy"] == 1.0 and r["accepted_ratio"] == 1.0 for r in rows)
    # a model that returns its first input is right only where the result equals the first operand
    first = binary_relation_accuracy_grid(lambda codes, relation, second: codes, prior, table, depths=(1, 5),
                                          n=2000, random_state=0)
    assert all(r["accuracy"] < 0.3 for r in first), first
    # an operator component (hwf:v1) is never drawn as an operand
    v1 = binary_relation_table(HWF, binary_relations_for(HWF))[..., 0]
    rng = np.random.RandomState(1)
    prior13 = MixturePrior(np.concatenate([means, rng.randn(3, 4) * 4 + 20]), np.tile(np.eye(4) * 0.05, (13, 1, 1)),
                           np.arange(13)[:, None])
    seen = []
    binary_relation_accuracy_grid(lambda c, r, s: (seen.append(c), c)[1], prior13, v1, depths=(1,), n=300,
                                  random_state=0)
    assert (np.argmin(((seen[0][:, None] - prior13.means[None]) ** 2).sum(-1), axis=1) < 10).all()
    with pytest.raises(ValueError, match=r"int \[R, C, C\]"):
        binary_relation_accuracy_grid(oracle, prior, table[0], n=10, random_state=0)


def test_hwf_networks_map_45x45_images():
    torch.manual_seed(0)
    encoder, decoder = make_encoder(1, 8, 45), make_decoder(1, 8, 45)
    z = encoder(torch.rand(3, 1, 45, 45))
    assert z.shape == (3, 8) and decoder(z).shape == (3, 1, 45, 45)
    assert [m.kernel_size for m in encoder.features if isinstance(m, torch.nn.Conv2d)] == [(5, 5), (5, 5), (3, 3)]


def _binary_model(**changes):
    model = build_model(trial_config("absae", lr=1e-3, rel_batch_size=128, warmup_steps=0, seed=0, **changes),
                        stand_in_dataset(get_version("hwf:digits")))
    g = torch.Generator().manual_seed(0)
    model.prior.set_parameters(torch.randn(10, 8, generator=g) * 2.0, 0.05 * torch.eye(8).expand(10, 8, 8))
    model._prior_ready = True
    return model


def test_binary_rel_learns_sum_difference_product_mod_10():
    model = _binary_model()
    assert model.relation_arity == 2
    table = torch.as_tensor(model.relation_targets())
    assert table.shape == (3, 10, 10)

    def accuracy() -> float:
        gen = torch.Generator().manual_seed(1)
        a, b, r = (torch.randint(k, (2000,), generator=gen) for k in (10, 10, 3))
        with torch.no_grad():
            out = model.relational_model(model.prior.sample(2000, a, gen), r, model.prior.sample(2000, b, gen))
        return float((model.prior.predict(out) == table[r, a, b]).float().mean())

    before = accuracy()
    for _ in range(100):   # 1.00 from step 75 on (0.92 at step 50)
        model.relational_step()
    after = accuracy()
    assert before < 0.3 and after > 0.8, (before, after)
    with pytest.raises(WeakdisError, match="binary; expected a second code z2"):
        model.relational_model(torch.zeros(2, 8), 0)
    from trainables.models.capabilities import relational_model_numpy

    z = model.prior.sample(4, torch.arange(4), torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model.relational_model(z, torch.tensor([0, 1, 2, 0]), z.flip(0))
    got = relational_model_numpy(model, torch.device("cpu"))(z.numpy(), np.array([0, 1, 2, 0]), z.flip(0).numpy())
    np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.parametrize("output", ["sign", "two_digit"])
def test_figure_10_variants_output_sign_or_two_codes(output):
    from trainables.models.absae import AbsAE, AbsAEConfig

    config = AbsAEConfig(lr=1e-3, warmup_steps=0, seed=0, rel_output=output)
    model = AbsAE(config, get_version("hwf:digits"), 1)
    model.prior.set_parameters(torch.randn(10, 8, generator=torch.Generator().manual_seed(0)) * 2.0,
                               0.05 * torch.eye(8).expand(10, 8, 8))
    model._prior_ready = True
    z = model.prior.sample(5, torch.arange(5), torch.Generator().manual_seed(1))
    codes, sign = model.relational_outputs(z, z, torch.zeros(5, dtype=torch.int64))
    assert codes.shape == (5, 2 if output == "two_digit" else 1, 8)
    assert (sign is not None) == (output == "sign") and (sign is None or sign.shape == (5,))
    first = float(model.relational_step())
    for _ in range(25):
        last = float(model.relational_step())
    assert last < first


def test_rel_output_errors():
    from trainables.models.absae import AbsAE, AbsAEConfig

    with pytest.raises(WeakdisError, match=r"rel_output='three' is invalid; expected one of modulo, sign, two_digit"):
        AbsAEConfig(rel_output="three").validate("absae")
    with pytest.raises(WeakdisError, match="rel_output='sign' applies to binary relations"):
        AbsAE(AbsAEConfig(rel_output="sign"), DSPRITES_V2, 1)
    with pytest.raises(WeakdisError, match="rel_encoder_weight=1.0 applies to one-operand relations only"):
        AbsAE(AbsAEConfig(rel_encoder_weight=1.0), get_version("hwf:digits"), 1)


def test_result_accuracy_scores_every_output_and_the_sign():
    from analysis.metrics import binary_relation_result_accuracy

    model = _binary_model(extra={"rel_output": "sign"})
    table = model.relation_table.numpy()                       # [R, C, C, 2]: |a op b| mod 10, negative
    assert table[1, 2, 7].tolist() == [5, 1] and table[0, 8, 7].tolist() == [5, 0]   # 2 - 7 = -5, 8 + 7 = 15

    def oracle(flip_sign: bool):
        def outputs(codes, relation, second):
            a, b = (model.prior.predict(torch.as_tensor(c, dtype=torch.float32)).numpy() for c in (codes, second))
            target = table[relation, a, b]
            means = model.prior.means.numpy()[target[:, 0]][:, None, :]
            negative = (target[:, 1] == 1) != flip_sign
            return means, np.where(negative, 5.0, -5.0)
        return outputs

    assert binary_relation_result_accuracy(oracle(False), model.prior, table, n=600, random_state=0) == 1.0
    flipped = binary_relation_result_accuracy(oracle(True), model.prior, table, n=600, random_state=0)
    assert flipped == 0.0
    with pytest.raises(ValueError, match="the table has 2 outputs"):
        binary_relation_result_accuracy(lambda c, r, s: (c, None), model.prior, table, n=10, random_state=0)

    from trainables.models.capabilities import relational_outputs_numpy
    trained = relational_outputs_numpy(model, torch.device("cpu"))
    before = binary_relation_result_accuracy(trained, model.prior, table, n=1000, random_state=1)
    for _ in range(100):   # 1.00 from step 50 on
        model.relational_step()
    after = binary_relation_result_accuracy(trained, model.prior, table, n=1000, random_state=1)
    assert before < 0.2 and after > 0.7, (before, after)
