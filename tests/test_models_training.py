"""Training behaviour of the five models on small generated dSprites data: they learn, resume
bit-identically, fit their priors at the end of warm-up, and the ReL learns relations."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_models_helpers import DSPRITES_V2, stand_in_dataset, trial_config
from trainables.data import generate_file, load_dataset
from trainables.errors import WeakdisError
from trainables.models import MODEL_NAMES, build_model
from trainables.models.priors import combination_indices

WEAK_MODELS = ("absae", "mae")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sprites(tmp_path_factory):
    path = generate_file("dsprites", tmp_path_factory.mktemp("models-data") / "dsprites.npz",
                         version="dsprites:v2", max_images=1200, seed=0)
    return load_dataset("dsprites:v2", path=path, seed=0)


def _supervise(model, ds, tau=270, seed=0):
    idx = ds.labelled_indices(tau, seed)
    model.set_supervision(ds.images[idx], ds.factors[idx])


def _batches(ds, n, batch_size, seed):
    g = torch.Generator().manual_seed(seed)
    return [ds.batch(ds.sample_indices("train", batch_size, g)) for _ in range(n)]


def _recon_error(model, x):
    was = model.training
    model.eval()
    with torch.no_grad():
        err = float((model.reconstruct(x) - x).square().mean())
    model.train(was)
    return err


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_learns_to_reconstruct(sprites, name):
    # The adversarial models get beta = 0.1 (the modular paper's value) and 30 steps past their
    # 60-step warm-up, so that the fitted prior, the refit and the ReL take part. Every model is below
    # 0.15 x its untrained error by then (0.05-0.10 for the VAEs at 60 steps, 0.10-0.14 for the weak ones
    # at 60-150), so the 0.25 bound leaves a margin of nearly two. Their discriminator and ReL have 256
    # hidden units (0.10 / 0.12 of the untrained error for AbsAE / M-AE, 0.09 / 0.12 with 1024, in
    # ~30% less time).
    weak = name in WEAK_MODELS
    steps = 90 if weak else 60
    model = build_model(trial_config(name, lr=1e-3, latent_dim=8, warmup_steps=60, prior_refit_every=40,
                                     rel_batch_size=64, seed=1, beta=0.1 if weak else 1.0,
                                     extra={"mlp_hidden": 256} if weak else {}), sprites)
    if name in WEAK_MODELS:
        _supervise(model, sprites)
    test_x = sprites.batch(sprites.splits["test"][:128])
    untrained = _recon_error(model, test_x)
    all_black = float(test_x.square().mean())
    losses = None
    for step, batch in enumerate(_batches(sprites, steps, 32, seed=2)):
        losses = model.train_step(batch, step)
    trained = _recon_error(model, test_x)
    assert trained < 0.25 * untrained, (untrained, trained)
    assert trained < all_black, (all_black, trained)   # better than predicting an empty image
    assert all(v.ndim == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())
    if name in WEAK_MODELS:
        assert set(losses) == {"recon", "gen", "disc", "rel"}
        assert model.prior.fitted
        with torch.no_grad():
            rep = model.representation(test_x[:16])
        assert rep["factors"].shape == (16, 3)
        # the torch prediction agrees with the metrics' own numpy classification (max log-density)
        from analysis.metrics import codes_to_factors

        np.testing.assert_array_equal(rep["factors"].numpy(), codes_to_factors(rep["codes"].numpy(), model.prior))


def _train(model, batches, start):
    for i, batch in enumerate(batches):
        model.train_step(batch, start + i)


@pytest.mark.parametrize("name, extra", [("absae", {}), ("mae", {}), ("factorvae", {}), ("betatcvae", {}),
                                         ("mae", {"partition_tc_weight": 1.0, "mlp_hidden": 32}),
                                         ("mae", {"partition_mean_dropout": 0.5}),
                                         ("mae", {"label_weight": 1.0, "label_classifier": "linear", "label_batch_size": 8})],
                         ids=["absae", "mae", "factorvae", "betatcvae", "mae-partition_tc", "mae-partition_mean_dropout",
                              "mae-linear_label_classifier"])
def test_reloaded_model_continues_bit_identically(sprites, name, extra):
    cfg = trial_config(name, warmup_steps=15, prior_refit_every=8, rel_batch_size=16, lr=1e-3, seed=3, extra=extra)
    first, second = _batches(sprites, 20, 8, seed=4), _batches(sprites, 10, 8, seed=5)
    model = build_model(cfg, sprites)
    if name in WEAK_MODELS:
        _supervise(model, sprites)
    _train(model, first, 0)
    saved = copy.deepcopy(model.state_dict())
    _train(model, second, 20)

    fresh = build_model(cfg, sprites)
    if name in WEAK_MODELS:
        _supervise(fresh, sprites)
    fresh.load_state_dict(saved)
    _train(fresh, second, 20)
    expected, got = model.state_dict(), fresh.state_dict()
    for key, value in expected["modules"].items():
        assert torch.equal(value, got["modules"][key]), key
    assert torch.equal(expected["rng"], got["rng"])
    if name in WEAK_MODELS:
        assert got["extra"]["prior_ready"] and bool(fresh.prior.fitted)
    if "partition_tc_weight" in extra:
        assert {"partition_tc", "partition_critic"} <= set(fresh.train_step(second[0], 30))


def test_warmup_fit_and_supervision_errors(sprites):
    model = build_model(trial_config("absae", warmup_steps=2, rel_batch_size=8), sprites)
    batch = _batches(sprites, 1, 4, seed=0)[0]
    model.train_step(batch, 0)
    assert not model.prior.fitted and "rel" not in model.train_step(batch, 1)
    with pytest.raises(WeakdisError, match="at step 2.*set_supervision"):
        model.train_step(batch, 2)
    few = sprites.labelled_indices(20, 0)
    with pytest.raises(WeakdisError, match=r"absae prior component \(shape=\d, posX=\d, posY=\d\).*tau=20"):
        model.set_supervision(sprites.images[few], sprites.factors[few])
    mae = build_model(trial_config("mae"), sprites)
    mae.set_supervision(sprites.images[few], sprites.factors[few])   # 20 samples cover each factor's values
    only_shape_0 = torch.nonzero(sprites.factors[:, 0] == 0).squeeze(1)[:30]
    with pytest.raises(WeakdisError, match=r"factor 'shape' \(shape=1\).*tau=30"):
        mae.set_supervision(sprites.images[only_shape_0], sprites.factors[only_shape_0])
    with pytest.raises(WeakdisError, match=r"expected \[20, 3\]"):
        model.set_supervision(sprites.images[few], sprites.factors[few][:, :2])
    # the fit happens at step == warmup_steps, from eval-mode codes of the labelled images
    _supervise(model, sprites)
    idx = sprites.labelled_indices(270, 0)
    model.eval()
    with torch.no_grad():
        codes = model.encode(sprites.batch(idx))
    model.train()
    losses = model.train_step(batch, 2)
    assert model.prior.fitted and "rel" in losses
    comps = sprites.combinations[idx]
    for c in (0, 13, 26):
        torch.testing.assert_close(model.prior.means[c], codes[comps == c].mean(0), atol=1e-4, rtol=1e-4)


def test_relational_learner_alone_learns_a_fixed_mixture():
    model = build_model(trial_config("absae", lr=1e-3, rel_batch_size=128, warmup_steps=0, seed=0),
                        stand_in_dataset(DSPRITES_V2))
    g = torch.Generator().manual_seed(0)
    means = torch.randn(27, 8, generator=g) * 2.0
    model.prior.set_parameters(means, 0.05 * torch.eye(8).expand(27, 8, 8))
    model._prior_ready = True
    table = torch.as_tensor(model.relation_targets())

    def accuracy() -> float:
        gen = torch.Generator().manual_seed(1)
        start, relation = torch.randint(27, (2000,), generator=gen), torch.randint(5, (2000,), generator=gen)
        with torch.no_grad():
            out = model.relational_model(model.prior.sample(2000, start, gen), relation)
        return float((model.prior.predict(out) == table[relation, start]).float().mean())

    # The residual ReL starts near the identity, which is right only where a clamped move stays put.
    gen = torch.Generator().manual_seed(1)
    start, relation = torch.randint(27, (2000,), generator=gen), torch.randint(5, (2000,), generator=gen)
    stays = float((table[relation, start] == start).float().mean())
    before = accuracy()
    for _ in range(100):   # 1.00 from step 50 on (0.56 at step 25)
        model.relational_step()
    after = accuracy()
    assert before < stays + 0.1 and after > 0.97, (stays, before, after)
    # the numpy view the metrics call gives the torch path's numbers
    from trainables.models.capabilities import relational_model_numpy

    z = model.prior.sample(5, torch.arange(5), g)
    with torch.no_grad():
        torch_out = model.relational_model(z, torch.tensor([0, 1, 2, 3, 4]))
    numpy_out = relational_model_numpy(model, torch.device("cpu"))(z.numpy(), np.array([0, 1, 2, 3, 4]))
    assert isinstance(numpy_out, np.ndarray)
    np.testing.assert_array_equal(numpy_out, torch_out.numpy())
    with torch.no_grad():
        torch.testing.assert_close(model.relational_model(z, 2), model.relational_model(z, torch.full((5,), 2)))


def test_rel_final_iterations_train_the_relational_learner_on_the_final_prior():
    def fitted(iterations):
        model = build_model(trial_config("absae", lr=1e-3, rel_batch_size=128, warmup_steps=0, seed=0,
                                         extra={"rel_final_iterations": iterations}), stand_in_dataset(DSPRITES_V2))
        means = torch.randn(27, 8, generator=torch.Generator().manual_seed(0)) * 2.0
        model.prior.set_parameters(means, 0.05 * torch.eye(8).expand(27, 8, 8))
        model._prior_ready = True
        return model

    def accuracy(model) -> float:
        table = torch.as_tensor(model.relation_targets())
        gen = torch.Generator().manual_seed(1)
        start, relation = torch.randint(27, (2000,), generator=gen), torch.randint(5, (2000,), generator=gen)
        with torch.no_grad():
            out = model.relational_model(model.prior.sample(2000, start, gen), relation)
        return float((model.prior.predict(out) == table[relation, start]).float().mean())

    model, lines = fitted(400), []
    before = accuracy(model)
    model.finish_training(3000, say=lines.append)
    assert before < 0.5 and accuracy(model) > 0.97, (before, accuracy(model))
    assert len(lines) == 2 and "400 ReL iterations on the final prior" in lines[0] and "step 3000" in lines[1]

    untouched = fitted(0)
    weights = copy.deepcopy(untouched.relational_learner.state_dict())
    untouched.finish_training(3000, say=lines.append)
    assert len(lines) == 2
    assert all(torch.equal(v, untouched.relational_learner.state_dict()[k]) for k, v in weights.items())
    unfitted = fitted(400)
    unfitted._prior_ready = False      # a trial that ends in its warm-up has no prior to train on
    unfitted.finish_training(10)
    assert all(torch.equal(v, unfitted.relational_learner.state_dict()[k]) for k, v in weights.items())
    with pytest.raises(WeakdisError, match="rel_final_iterations=-1 is invalid"):
        build_model(trial_config("absae", extra={"rel_final_iterations": -1}), stand_in_dataset(DSPRITES_V2))


@pytest.mark.parametrize("name", ["absae", "betatcvae"])
def test_bf16_precision_trains_with_float32_losses(sprites, name):
    def run(precision):
        model = build_model(trial_config(name, precision=precision, warmup_steps=1, rel_batch_size=8), sprites)
        if name in WEAK_MODELS:
            _supervise(model, sprites)
        for step, batch in enumerate(_batches(sprites, 3, 8, seed=0)):
            losses = model.train_step(batch, step)
        return model, batch, losses

    model, batch, losses = run("bf16")
    _, _, reference = run("fp32")
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    assert model.encode(batch).dtype == torch.float32
    # the networks did run in bf16 (the numbers differ from fp32) and stayed close to fp32
    recon, recon_fp32 = float(losses["recon"]), float(reference["recon"])
    assert recon != recon_fp32 and abs(recon - recon_fp32) < 0.05 * abs(recon_fp32), (recon, recon_fp32)


def test_rel_loss_mse_mean_the_default_pulls_toward_the_target_means_without_sampling_noise():
    model = build_model(trial_config("absae", rel_batch_size=4, warmup_steps=0, seed=0), stand_in_dataset(DSPRITES_V2))
    g = torch.Generator().manual_seed(0)
    means = torch.randn(27, 8, generator=g)
    model.prior.set_parameters(means, 0.5 * torch.eye(8).expand(27, 8, 8))
    model._prior_ready = True
    target = torch.tensor([3, 3, 20, 7])
    a = model._target_codes(target, torch.Generator().manual_seed(1))
    b = model._target_codes(target, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, means[target].float())
    torch.testing.assert_close(a, b)
    sampled = build_model(trial_config("absae", rel_batch_size=4, warmup_steps=0, seed=0, extra={"rel_loss": "mse"}),
                          stand_in_dataset(DSPRITES_V2))
    sampled.prior.set_parameters(means, 0.5 * torch.eye(8).expand(27, 8, 8))
    s = sampled._target_codes(target, torch.Generator().manual_seed(1))
    assert (s - means[target]).abs().max() > 0.05     # "mse" draws a sample of the component
    assert torch.isfinite(model.relational_step())
    with pytest.raises(WeakdisError, match="rel_loss"):
        build_model(trial_config("absae", extra={"rel_loss": "mean"}), stand_in_dataset(DSPRITES_V2))


def test_warmup_beta_weighs_the_uniform_prior_term_only_during_warm_up(sprites):
    config = trial_config("absae", beta=0.7, warmup_steps=3, extra={"warmup_beta": 0.0})
    model = build_model(config, sprites)
    assert [model._adversarial_weight(s) for s in (0, 2, 3, 10)] == [0.0, 0.0, 0.7, 0.7]
    paper = build_model(trial_config("absae", beta=0.7, warmup_steps=3), sprites)
    assert [paper._adversarial_weight(s) for s in (0, 3)] == [0.7, 0.7]
    # with weight 0 the encoder's step ignores the discriminator: two models that differ only in their
    # discriminators' initial weights make the same autoencoder update in warm-up
    twin = build_model(config, sprites)
    with torch.no_grad():
        for p in twin.discriminator.parameters():
            p.add_(0.5)
    batch = next(iter(_batches(sprites, 1, 8, seed=0)))
    model.train_step(batch, 0)
    twin.train_step(batch, 0)
    for p, q in zip(model.encoder.parameters(), twin.encoder.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(WeakdisError, match="warmup_beta"):
        build_model(trial_config("absae", extra={"warmup_beta": -1.0}), sprites)


def test_beta_ramp_steps_raises_the_weight_linearly_from_warmup_beta_to_beta_after_warm_up(sprites):
    config = trial_config("absae", beta=1.0, warmup_steps=3, extra={"warmup_beta": 0.2, "beta_ramp_steps": 4})
    model = build_model(config, sprites)
    weights = [model._adversarial_weight(s) for s in (0, 2, 3, 4, 5, 6, 7, 20)]
    assert weights == pytest.approx([0.2, 0.2, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    with pytest.raises(WeakdisError, match="beta_ramp_steps.*warmup_beta"):
        build_model(trial_config("absae", extra={"beta_ramp_steps": 10}), sprites)
    with pytest.raises(WeakdisError, match="beta_ramp_steps"):
        build_model(trial_config("absae", extra={"warmup_beta": 0.1, "beta_ramp_steps": -1}), sprites)


@pytest.mark.parametrize("restart", [False, True])
def test_disc_restart_clears_the_discriminators_adam_moments_at_the_first_fit_only(sprites, restart):
    model = build_model(trial_config("absae", warmup_steps=2, rel_batch_size=8, extra={"disc_restart": restart}),
                        sprites)
    _supervise(model, sprites)
    batches = list(_batches(sprites, 4, 8, seed=0))
    opt = model._optimizers["discriminator"]

    def steps_taken() -> int:
        return int(next(iter(opt.state.values()))["step"])

    model.train_step(batches[0], 0)
    model.train_step(batches[1], 1)
    assert steps_taken() == 2
    model.train_step(batches[2], 2)          # the fit happens here, before the step's updates
    assert steps_taken() == (1 if restart else 3)
    model.train_step(batches[3], 3)
    assert steps_taken() == (2 if restart else 4)


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_covariance_anneal_tightens_the_fitted_components_geometrically(sprites, name):
    extra = {"prior_covariance_scale": 0.01, "prior_covariance_anneal_steps": 4}
    model = build_model(trial_config(name, warmup_steps=2, rel_batch_size=8, prior_refit_every=2, extra=extra),
                        sprites)
    assert [model._covariance_scale_at(s) for s in (0, 2, 4, 6, 9)] == pytest.approx([1.0, 1.0, 0.1, 0.01, 0.01])
    _supervise(model, sprites)
    batches = list(_batches(sprites, 7, 8, seed=0))
    spreads = {}
    for step, batch in enumerate(batches):
        model.train_step(batch, step)
        if step in (2, 4, 6):       # the refits at 2, 4, 6 apply the scale of their step
            spreads[step] = float(torch.diagonal(model.prior.covariances, dim1=-2, dim2=-1).mean())
    # the same encoder state gives the same estimate at each refit only approximately; the scale
    # (x 0.1 per two steps) dominates the drift of 3 small steps
    assert spreads[4] < 0.3 * spreads[2] and spreads[6] < 0.3 * spreads[4]
    with pytest.raises(WeakdisError, match="prior_covariance_anneal_steps"):
        build_model(trial_config(name, prior_refit_every=0, extra={"prior_covariance_anneal_steps": 10}), sprites)


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_prior_refit_until_freezes_the_mixture_after_that_step(sprites, name):
    model = build_model(trial_config(name, warmup_steps=2, rel_batch_size=8, prior_refit_every=2,
                                     extra={"prior_refit_until": 4}), sprites)
    _supervise(model, sprites)
    means = {}
    for step, batch in enumerate(_batches(sprites, 9, 8, seed=0)):
        model.train_step(batch, step)
        means[step] = model.prior.means.clone()
    # refits at 2 and 4 follow the moving encoder; none after 4, though the encoder keeps moving
    assert not torch.equal(means[2], means[4])
    assert all(torch.equal(means[4], means[s]) for s in (5, 6, 7, 8))
    with pytest.raises(WeakdisError, match="prior_refit_until"):
        build_model(trial_config(name, warmup_steps=10, extra={"prior_refit_until": 5}), sprites)
    # an anneal whose last step comes after the last refit would never reach its scale
    with pytest.raises(WeakdisError, match="first refit after the anneal is at step 70"):
        build_model(trial_config(name, warmup_steps=10, prior_refit_every=20,
                                 extra={"prior_refit_until": 60, "prior_covariance_anneal_steps": 45}), sprites)
    build_model(trial_config(name, warmup_steps=10, prior_refit_every=20,
                             extra={"prior_refit_until": 70, "prior_covariance_anneal_steps": 45}), sprites)


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_disc_r1_adds_the_gradient_penalty_at_prior_samples_to_the_discriminator_loss(sprites, name):
    batch = next(iter(_batches(sprites, 1, 8, seed=0)))
    plain = build_model(trial_config(name, warmup_steps=5), sprites)
    penalised = build_model(trial_config(name, warmup_steps=5, extra={"disc_r1": 10.0}), sprites)
    base, with_r1 = plain.train_step(batch, 0)["disc"], penalised.train_step(batch, 0)["disc"]
    # identical networks and data at step 0: the difference is the penalty, > 0 for a non-constant critic
    assert float(with_r1) > float(base) + 1e-6
    with pytest.raises(WeakdisError, match="disc_r1"):
        build_model(trial_config(name, extra={"disc_r1": -1.0}), sprites)


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_rel_encoder_weight_sends_the_rels_loss_on_labelled_codes_to_the_encoder_only(sprites, name):
    model = build_model(trial_config(name, warmup_steps=2, rel_batch_size=8,
                                     extra={"rel_encoder_weight": 1.0, "label_batch_size": 16, "mlp_hidden": 64}),
                        sprites)
    _supervise(model, sprites)
    batches = list(_batches(sprites, 4, 8, seed=0))
    assert "rel_encoded" not in model.train_step(batches[0], 0)     # warm-up: no prior, no term
    model.train_step(batches[1], 1)
    losses = model.train_step(batches[2], 2)
    assert set(losses) == {"recon", "gen", "disc", "rel", "rel_encoded"} and torch.isfinite(losses["rel_encoded"])

    images, components = model._labelled_batch()
    codes = model.encode(images).detach().requires_grad_(True)
    model.relational_learner.zero_grad(set_to_none=True)
    loss = model._encoded_relation_loss(codes, components)
    loss.backward()
    # the ReL is held fixed in this term (it learns from prior samples), and is trainable again after it
    assert all(p.grad is None and p.requires_grad for p in model.relational_learner.parameters())
    # gradient steps on the codes alone lower the loss: the encoder learns where to put them
    before = float(loss.detach())
    with torch.no_grad():
        moved = codes - 0.5 * codes.grad / codes.grad.norm(dim=1, keepdim=True).clamp_min(1e-12) * codes.std()
    assert float(model._encoded_relation_loss(moved, components)) < before

    with pytest.raises(WeakdisError, match="rel_encoder_weight"):
        build_model(trial_config(name, extra={"rel_encoder_weight": -1.0}), sprites)


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_mlp_hidden_sets_the_width_of_the_discriminator_and_the_rel(sprites, name):
    model = build_model(trial_config(name, extra={"mlp_hidden": 32}), sprites)
    widths = {tuple(p.shape) for p in model.discriminator.parameters()} | {
        tuple(p.shape) for p in model.relational_learner.parameters()}
    assert any(32 in shape for shape in widths) and not any(1024 in shape for shape in widths)
    default = build_model(trial_config(name), sprites)
    assert any(1024 in p.shape for p in default.relational_learner.parameters())
    with pytest.raises(WeakdisError, match="mlp_hidden"):
        build_model(trial_config(name, extra={"mlp_hidden": 0}), sprites)


def test_the_mixtures_label_term_is_flat_where_the_classes_codes_coincide_and_a_linear_classifiers_is_not(sprites):
    """Why ``label_classifier: linear`` exists: the mixture's components are the labelled codes' own
    class means, so where a factor's classes share their codes the label term cannot start them apart."""
    model = build_model(trial_config("mae", extra={"label_weight": 1.0, "label_classifier": "linear"}), sprites)
    d = model.config.latent_dim
    g = torch.Generator().manual_seed(0)
    base = torch.randn(60, model.code_dim, generator=g)
    shapes = torch.arange(3).repeat_interleave(60)
    codes = base.repeat(3, 1)                        # every shape has the same codes
    codes[:, d:] += shapes[:, None].float()          # the other factors' partitions are told apart
    factors = torch.stack([shapes] + [shapes % size for size in model.spec.factor_sizes[1:]], dim=1)
    model._fit_prior_from(codes, factors)
    components = combination_indices(factors, model.spec.factor_sizes)

    def shape_gradient(classifier):
        model.config.label_classifier = classifier
        z = codes.clone().requires_grad_(True)
        model._label_loss(z, components).backward()
        return z.grad[:, :d].norm(dim=1).mean()

    assert float(shape_gradient("prior")) < 1e-4
    assert float(shape_gradient("linear")) > 1e-3


@pytest.mark.parametrize("name", WEAK_MODELS)
def test_linear_label_classifier_reads_each_factor_from_its_partition_and_learns(sprites, name):
    model = build_model(trial_config(name, warmup_steps=2, rel_batch_size=8, lr=1e-3, seed=1,
                                     extra={"label_weight": 1.0, "label_classifier": "linear",
                                            "label_batch_size": 32, "mlp_hidden": 64}), sprites)
    _supervise(model, sprites)
    assert "label_head" not in dict(build_model(trial_config(name), sprites).named_children())
    z = torch.randn(4, model.code_dim, requires_grad=True)
    model.label_head[0](model._label_head_inputs(z)[0]).sum().backward()
    touched = z.grad.abs().sum(0) > 0
    if name == "mae":    # factor 0's classifier reads partition 0 only
        d = model.config.latent_dim
        assert touched[:d].all() and not touched[d:].any()
    else:
        assert touched.all()
    batches = _batches(sprites, 60, 16, seed=2)
    losses = [float(model.train_step(batch, step).get("label", np.nan)) for step, batch in enumerate(batches)]
    assert np.isnan(losses[0]) and np.isfinite(losses[2:]).all()
    assert np.mean(losses[-10:]) < 0.5 * losses[2]
    with pytest.raises(WeakdisError, match="label_classifier"):
        build_model(trial_config(name, extra={"label_classifier": "mlp"}), sprites)


def test_label_factors_limit_the_linear_label_term_to_the_named_factors_heads(sprites):
    extra = {"label_weight": 1.0, "label_classifier": "linear", "label_batch_size": 32, "mlp_hidden": 64}
    every = build_model(trial_config("absae", extra=extra), sprites)
    shape_only = build_model(trial_config("absae", extra={**extra, "label_factors": "shape"}), sprites)
    for model in (every, shape_only):
        _supervise(model, sprites)
    shape_only.load_state_dict(every.state_dict())       # the same heads: only the term differs
    codes = torch.randn(32, every.code_dim, generator=torch.Generator().manual_seed(0))
    factors = torch.stack([torch.randint(0, size, (32,), generator=torch.Generator().manual_seed(size))
                           for size in every.spec.factor_sizes], 1)
    components = combination_indices(factors, every.spec.factor_sizes)
    every._fit_prior_from(codes, factors)
    shape_only._fit_prior_from(codes, factors)
    heads = [F.cross_entropy(head(codes), factors[:, k]) for k, head in enumerate(every.label_head)]
    torch.testing.assert_close(every._label_loss(codes, components), sum(heads))
    torch.testing.assert_close(shape_only._label_loss(codes, components), heads[0])
    z = codes.clone().requires_grad_(True)
    shape_only._label_loss(z, components).backward()
    assert shape_only.label_head[1].weight.grad is None and shape_only.label_head[0].weight.grad is not None
    with pytest.raises(WeakdisError, match="label_factors='shape'.*label_classifier is 'linear'"):
        build_model(trial_config("absae", extra={"label_factors": "shape"}), sprites)
    with pytest.raises(WeakdisError, match="label_factors='hue'.*'hue'.*shape, posX, posY"):
        build_model(trial_config("absae", extra={**extra, "label_factors": "hue"}), sprites)
    with pytest.raises(WeakdisError, match="pseudo_labels='posX'.*outside label_factors='shape'.*expected factors "
                                           "among shape$"):
        build_model(trial_config("absae", extra={**extra, "label_factors": "shape", "pseudo_labels": "posX"}), sprites)
