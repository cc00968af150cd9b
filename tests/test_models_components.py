"""Networks, config mapping and the VAE baselines' estimators (permutation, MWS, KL)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from test_models_helpers import (
    DSPRITES_V2, SHAPES3D_V2, draw_sprites, random_factors, stand_in_dataset, trial_config,
)
from trainables.errors import WeakdisError
from trainables.models import (
    MODEL_CLASSES, MODEL_NAMES, AbsAEConfig, BetaTCVAEConfig, FactorVAEConfig, MAEConfig, build_model,
    mws_log_densities, permute_dims,
)
from trainables.models.networks import MLP, Decoder, Encoder, GroupedMLP
from trainables.models.vae import gaussian_kl


@pytest.mark.parametrize("channels, width", [(1, 32), (3, 64)])
def test_backbone_shapes_follow_appendix_a(channels, width):
    enc, dec = Encoder(channels, 10), Decoder(channels, 5)
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.out_channels == width and c.kernel_size == (4, 4) and c.stride == (2, 2)
                                   for c in convs)
    assert enc.head[1].in_features == width * 4 * 4 and enc.head[1].out_features == 1024
    assert dec.head[2].out_features == width * 4 * 4
    deconvs = [m for m in dec.features if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == 4 and deconvs[-1].out_channels == channels
    x = torch.rand(3, channels, 64, 64)
    assert enc(x).shape == (3, 10)
    assert dec(torch.randn(3, 5)).shape == (3, channels, 64, 64)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("spec, channels", [(DSPRITES_V2, 1), (SHAPES3D_V2, 3)])
def test_every_model_handles_one_and_three_channels(name, spec, channels):
    model = build_model(trial_config(name, latent_dim=4), stand_in_dataset(spec, channels))
    x = torch.rand(2, channels, 64, 64)
    k = len(spec.factor_sizes)
    # the explicit models' code is (z, y): latent_dim + factor_dim (default 1)
    code_dim = 4 * k if name == "mae" else 5 if name in ("simvae", "cyclevae", "predvae", "splitvae") else 4
    assert model.encode(x).shape == (2, code_dim)
    assert model.decode(torch.zeros(2, code_dim)).shape == (2, channels, 64, 64)
    with torch.no_grad():
        probs = model.reconstruct(x)
    assert probs.shape == (2, channels, 64, 64) and float(probs.min()) >= 0 and float(probs.max()) <= 1
    rep = model.representation(x)
    assert rep["codes"].shape == (2, code_dim) and rep["factors"] is None   # no fitted prior yet


def test_grouped_mlp_equals_separate_mlps():
    torch.manual_seed(0)
    grouped = GroupedMLP(3, 4, 1, hidden=16)
    x = torch.randn(3, 5, 4)
    out = grouped(x)
    for g in range(3):
        mlp = MLP(4, 1, hidden=16)
        linears = [m for m in mlp.net if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for layer, w, b in zip(linears, grouped.weights, grouped.biases):
                layer.weight.copy_(w[g].T)
                layer.bias.copy_(b[g, 0])
        torch.testing.assert_close(out[g], mlp(x[g]), atol=1e-6, rtol=1e-6)


def test_config_mapping_from_trial_config():
    cfg = trial_config("absae", latent_dim=6, beta=0.3, gamma=2.0, lr=3e-4, rel_lr=1e-3, disc_lr=None,
                       rel_batch_size=64, warmup_steps=7, prior_refit_every=5, precision="bf16", seed=4,
                       extra={"covariance_floor": "0.01", "min_component_samples": 3})
    config = AbsAEConfig.from_trial_config(cfg, stand_in_dataset())
    assert (config.latent_dim, config.beta, config.gamma, config.lr, config.rel_lr, config.disc_lr) == (6, 0.3, 2.0, 3e-4, 1e-3, None)
    assert (config.rel_batch_size, config.warmup_steps, config.prior_refit_every) == (64, 7, 5)
    assert (config.precision, config.seed, config.covariance_floor, config.min_component_samples) == ("bf16", 4, 0.01, 3)
    mae = build_model(trial_config("mae", latent_dim=5), stand_in_dataset())
    assert isinstance(mae.config, MAEConfig) and mae.code_dim == 15 and mae.prior.slices[2] == slice(10, 15)
    fvae = build_model(trial_config("factorvae", disc_lr=2e-5), stand_in_dataset())
    assert isinstance(fvae.config, FactorVAEConfig) and fvae.config.disc_lr == 2e-5
    assert fvae.optimizers()["discriminator"].param_groups[0]["lr"] == 2e-5
    ds = stand_in_dataset()
    ds.splits = {"train": np.arange(700), "val": np.arange(100), "test": np.arange(200)}
    assert BetaTCVAEConfig.from_trial_config(trial_config("betatcvae"), ds).dataset_size == 700
    assert set(MODEL_CLASSES) == {"absae", "mae", "betavae", "factorvae", "betatcvae", "dipvae1", "dipvae2",
                                  "annealedvae", "simvae", "cyclevae", "predvae", "splitvae"}


def test_config_errors_name_key_and_value():
    with pytest.raises(WeakdisError, match="unknown key 'temperature' for model 'absae'.*covariance_floor"):
        build_model(trial_config("absae", extra={"temperature": 1.0}), stand_in_dataset())
    with pytest.raises(WeakdisError, match="unknown key 'dataset_size' for model 'betavae'"):
        build_model(trial_config("betavae", extra={"dataset_size": 10}), stand_in_dataset())
    with pytest.raises(WeakdisError, match="min_component_samples='many'"):
        build_model(trial_config("mae", extra={"min_component_samples": "many"}), stand_in_dataset())
    with pytest.raises(WeakdisError, match="covariance_floor=0.0 is invalid"):
        build_model(trial_config("absae", extra={"covariance_floor": 0.0}), stand_in_dataset())
    cfg = trial_config("absae")
    cfg.model = "vqvae"
    with pytest.raises(WeakdisError, match="model='vqvae'"):
        build_model(cfg, stand_in_dataset())


def test_same_seed_same_initial_weights_and_different_seed_different():
    a = build_model(trial_config("absae", seed=3), stand_in_dataset())
    b = build_model(trial_config("absae", seed=3), stand_in_dataset())
    c = build_model(trial_config("absae", seed=4), stand_in_dataset())
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.encoder.head[1].weight, c.encoder.head[1].weight)


def test_permute_dims_permutes_each_dimension_independently():
    b, d = 64, 6
    z = torch.arange(b, dtype=torch.float32)[:, None] * 10 + torch.arange(d)[None, :]
    permuted = permute_dims(z, torch.Generator().manual_seed(0))
    rows = []
    for j in range(d):
        column = permuted[:, j]
        assert torch.equal(column.sort().values, z[:, j])           # a permutation of column j
        rows.append(((column - j) / 10).long())
    rows = torch.stack(rows, dim=1)                                  # source row of every entry
    assert not all(torch.equal(rows[:, 0], rows[:, j]) for j in range(1, d))   # independent per column
    assert (rows[:, 0] != torch.arange(b)).any()
    assert torch.equal(permuted, permute_dims(z, torch.Generator().manual_seed(0)))


def test_permute_dims_with_groups_moves_each_block_of_columns_as_a_whole():
    b, groups, width = 64, 3, 2
    z = torch.arange(b, dtype=torch.float32)[:, None] * 10 + torch.arange(groups * width)[None, :]
    permuted = permute_dims(z, torch.Generator().manual_seed(0), groups=groups)
    source = ((permuted - torch.arange(groups * width)) / 10).long()     # source row of every entry
    blocks = source.reshape(b, groups, width)
    assert torch.equal(blocks[..., 0], blocks[..., 1])                   # a block's columns move together
    for g in range(groups):
        assert torch.equal(blocks[:, g, 0].sort().values, torch.arange(b))   # a permutation of the rows
    assert not torch.equal(blocks[:, 0, 0], blocks[:, 1, 0]) and not torch.equal(blocks[:, 1, 0], blocks[:, 2, 0])
    with pytest.raises(WeakdisError, match="groups=4; expected a divisor of the code width 6"):
        permute_dims(z, groups=4)


def test_mws_log_densities_match_brute_force():
    torch.manual_seed(0)
    m, d, n = 5, 3, 1000
    mean, logvar = torch.randn(m, d, dtype=torch.float64), torch.randn(m, d, dtype=torch.float64) * 0.3
    z = mean + torch.exp(0.5 * logvar) * torch.randn(m, d, dtype=torch.float64)
    log_qz, log_prod = mws_log_densities(z, mean, logvar, n)
    for i in range(m):
        total, marginals = 0.0, [0.0] * d
        for j in range(m):
            dens = [math.exp(-0.5 * (math.log(2 * math.pi) + logvar[j, k].item()
                                     + (z[i, k].item() - mean[j, k].item()) ** 2 / math.exp(logvar[j, k].item())))
                    for k in range(d)]
            total += math.prod(dens)
            for k in range(d):
                marginals[k] += dens[k]
        assert log_qz[i].item() == pytest.approx(math.log(total / (n * m)), rel=1e-9)
        assert log_prod[i].item() == pytest.approx(sum(math.log(v / (n * m)) for v in marginals), rel=1e-9)


def test_gaussian_kl_value():
    mean = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    expected0 = 0.5 * (1.0 + 0 + (2.0 - 1.0 - math.log(2.0)))
    torch.testing.assert_close(gaussian_kl(mean, logvar), torch.tensor([expected0, 0.0]))


def test_importing_models_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, trainables.models; print(any(m == 'ray' or m.startswith('ray.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mae_joint_discriminator_sees_the_whole_code_and_per_partition_ones_only_their_part():
    per_part = build_model(trial_config("mae", latent_dim=3), stand_in_dataset())
    joint = build_model(trial_config("mae", latent_dim=3, extra={"discriminator": "joint"}), stand_in_dataset())
    z = torch.randn(5, 9)
    assert per_part._discriminate(z).shape == (5, 3) and joint._discriminate(z).shape == (5, 1)
    # Shuffling partition 1 across the batch keeps every partition's marginal but changes the joint code:
    # the per-partition logits are shuffled the same way, while the joint logits change.
    shuffled = z.clone()
    shuffled[:, 3:6] = z[[1, 2, 3, 4, 0], 3:6]
    with torch.no_grad():
        before, after = per_part._discriminate(z), per_part._discriminate(shuffled)
        assert torch.allclose(after[:, 1], before[[1, 2, 3, 4, 0], 1]) and torch.allclose(after[:, 0], before[:, 0])
        assert not torch.allclose(joint._discriminate(z), joint._discriminate(shuffled))
    with pytest.raises(WeakdisError, match="discriminator='global' is invalid; expected one of partition, joint"):
        build_model(trial_config("mae", extra={"discriminator": "global"}), stand_in_dataset())


def test_mae_partition_critic_exists_only_when_on_and_learns_to_see_dependent_partitions():
    off = build_model(trial_config("mae", latent_dim=2), stand_in_dataset())
    assert not hasattr(off, "partition_critic") and off._code_penalties(torch.zeros(4, 6), 10**6) == {}
    assert "partition_critic" not in off.optimizers()
    model = build_model(trial_config("mae", latent_dim=2, lr=1e-3, extra={"partition_tc_weight": 0.5, "mlp_hidden": 32}),
                        stand_in_dataset())
    assert "partition_critic" in model.optimizers()
    g = torch.Generator().manual_seed(0)

    def codes(dependent: bool) -> torch.Tensor:
        base = torch.randn(256, 2, generator=g)
        if dependent:   # every partition a copy of the first: the partitions' total correlation is large
            return base.repeat(1, 3) + 0.05 * torch.randn(256, 6, generator=g)
        return torch.randn(256, 6, generator=g)

    for _ in range(300):
        model._train_code_critics(codes(dependent=True))
    (weight, tc_dependent), = model._code_penalties(codes(dependent=True), model.config.warmup_steps).values()
    assert weight == 0.5 and tc_dependent.item() > 1.0            # E[log q(z) / prod q(z_k)] estimated > 0
    z = codes(dependent=True).requires_grad_(True)
    model.partition_critic.zero_grad(set_to_none=True)
    model._code_penalties(z, model.config.warmup_steps)["partition_tc"][1].backward()
    assert z.grad is not None and z.grad.abs().sum() > 0                 # the penalty reaches the codes ...
    assert all(p.grad is None for p in model.partition_critic.parameters())   # ... and not the critic
    assert model._code_penalties(z, model.config.warmup_steps - 1) == {}     # not during warm-up
    with pytest.raises(WeakdisError, match="partition_tc_weight=-1.0 is invalid; expected a number >= 0"):
        build_model(trial_config("mae", extra={"partition_tc_weight": -1.0}), stand_in_dataset())
    late = build_model(trial_config("mae", latent_dim=2, warmup_steps=10,
                                    extra={"partition_tc_weight": 0.5, "partition_tc_from": 30, "mlp_hidden": 8}),
                       stand_in_dataset())
    assert late._code_penalties(z, 29) == {} and set(late._code_penalties(z, 30)) == {"partition_tc"}
    with pytest.raises(WeakdisError, match=r"partition_tc_from=5 is invalid; expected an integer >= warmup_steps \(10\)"):
        build_model(trial_config("mae", warmup_steps=10, extra={"partition_tc_from": 5}), stand_in_dataset())


def test_mae_partition_critic_r1_penalises_the_critic():
    def critic_loss(r1: float) -> float:
        extra = {"partition_tc_weight": 1.0, "mlp_hidden": 16, "partition_critic_r1": r1, "disc_r1": 5.0}
        model = build_model(trial_config("mae", latent_dim=2, extra=extra), stand_in_dataset())
        return float(model._train_code_critics(torch.randn(32, 6, generator=torch.Generator().manual_seed(0)))
                     ["partition_critic"])

    # same networks, codes and shuffle: the difference is the penalty, > 0 for a non-constant critic
    assert critic_loss(10.0) > critic_loss(0.0) + 1e-6
    with pytest.raises(WeakdisError, match="partition_critic_r1=-1.0 is invalid; expected a number >= 0"):
        build_model(trial_config("mae", extra={"partition_critic_r1": -1.0}), stand_in_dataset())


def _codes_telling_their_factors(n: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes [n, 6], dsprites:v2 factors [n, 3]): partition k of a code (2 dims) sits near
    (4 * value of factor k, 0), so each partition tells its factor."""
    g = torch.Generator().manual_seed(0)
    factors = torch.stack([torch.randint(s, (n,), generator=g) for s in DSPRITES_V2.factor_sizes], dim=1)
    codes = torch.zeros(n, 6)
    codes[:, 0::2] = 4.0 * factors.float()
    return codes + 0.3 * torch.randn(n, 6, generator=g), factors


def test_mae_partition_mean_dropout_replaces_whole_partitions_by_their_components_means():
    def fitted(p: float):
        model = build_model(trial_config("mae", latent_dim=2, extra={"partition_mean_dropout": p}), stand_in_dataset())
        codes, factors = _codes_telling_their_factors()
        model.prior.fit(codes, factors)
        return model, codes[:64], factors[:64]

    model, z, factors = fitted(1.0)
    assert torch.equal(model._decoder_input(z), z)      # before the fit: the codes as they are
    model._prior_ready = True
    means = torch.cat([prior.means[factors[:, k]] for k, prior in enumerate(model.prior.priors)], dim=1)
    assert torch.allclose(model._decoder_input(z), means)    # p = 1: every partition replaced

    model, z, factors = fitted(0.5)
    model._prior_ready = True
    out = model._decoder_input(z)
    means = torch.cat([prior.means[factors[:, k]] for k, prior in enumerate(model.prior.priors)], dim=1)
    kept = (out == z).reshape(64, 3, 2).all(-1)
    replaced = torch.isclose(out, means).reshape(64, 3, 2).all(-1)
    assert bool((kept ^ replaced).all())                                   # whole partitions, one or the other
    assert 0.3 < replaced.float().mean().item() < 0.7

    model, z, _ = fitted(0.0)
    model._prior_ready = True
    assert torch.equal(model._decoder_input(z), z)
    with pytest.raises(WeakdisError, match=r"partition_mean_dropout=1.5 is invalid; expected a probability in \[0, 1\]"):
        build_model(trial_config("mae", extra={"partition_mean_dropout": 1.5}), stand_in_dataset())


def test_mae_code_mean_dropout_replaces_whole_codes_by_their_components_means():
    codes, factors = _codes_telling_their_factors()
    z = codes[:200]

    def decoder_input(**extra):
        model = build_model(trial_config("mae", latent_dim=2, extra=extra), stand_in_dataset())
        model.prior.fit(codes, factors)
        model._prior_ready = True
        return model, model._decoder_input(z)

    model, out = decoder_input(code_mean_dropout=1.0)
    means = torch.cat([prior.means[factors[:200, k]] for k, prior in enumerate(model.prior.priors)], dim=1)
    assert torch.allclose(out, means)

    out = decoder_input(code_mean_dropout=0.5)[1]
    kept, replaced = (out == z).all(1), torch.isclose(out, means).all(1)
    assert bool((kept ^ replaced).all())                                   # whole codes, one or the other
    assert 0.35 < replaced.float().mean().item() < 0.65

    # with partition_mean_dropout as well: codes replaced whole (0.5 + 0.5 * 0.3^3) and partitions alone
    out = decoder_input(code_mean_dropout=0.5, partition_mean_dropout=0.3)[1]
    replaced_partitions = torch.isclose(out, means).reshape(200, 3, 2).all(-1)
    assert 0.4 < replaced_partitions.all(1).float().mean().item() < 0.65
    assert bool((replaced_partitions.any(1) & ~replaced_partitions.all(1)).any())
    # off, partition_mean_dropout's draw is the model stream's first (N, K) uniforms, as before the option
    model, out = decoder_input(partition_mean_dropout=0.3)
    expected = torch.rand(200, 3, generator=type(model)(model.config, model.spec, 1).generator()) < 0.3
    assert torch.equal(torch.isclose(out, means).reshape(200, 3, 2).all(-1) & ~(out == z).reshape(200, 3, 2).all(-1),
                       expected)
    with pytest.raises(WeakdisError, match=r"code_mean_dropout=-0.1 is invalid; expected a probability in \[0, 1\]"):
        build_model(trial_config("mae", extra={"code_mean_dropout": -0.1}), stand_in_dataset())


def test_absae_with_one_labelled_code_a_combination_fits_its_spread_to_unlabelled_codes():
    g = torch.Generator().manual_seed(0)
    combinations = torch.as_tensor(DSPRITES_V2.combination_factors())
    images = draw_sprites(combinations, g)
    unlabelled = draw_sprites(random_factors(200, DSPRITES_V2, g), g)

    def fitted(spread_images: int):
        model = build_model(trial_config("absae", latent_dim=4, seed=1, extra={
            "single_code_spread_images": spread_images, "prior_covariance_scale": 1.0}), stand_in_dataset())
        model.set_supervision(images, combinations)
        assert model.unlabelled_wanted == spread_images
        model.set_unlabelled(unlabelled)
        model.fit_prior(step=0)
        model.eval()
        with torch.no_grad():
            return model, model.encode(images).double(), model.encode(unlabelled[:spread_images]).double()

    model, labelled, codes = fitted(150)
    nearest = torch.cdist(codes, model.prior.means.double()).argmin(1)
    spread = (codes - model.prior.means.double()[nearest]).square().mean(0) / 2
    floor = model.config.covariance_floor * max(1.0, labelled.var(0).mean().item())
    np.testing.assert_allclose(torch.diagonal(model.prior.covariances, dim1=-2, dim2=-1)[0].numpy(),
                               (spread + floor).numpy(), rtol=1e-4)
    assert (spread < labelled.var(0) / 2).all()
    model, labelled, _ = fitted(0)                      # 0: the overall variance of the labelled codes
    np.testing.assert_allclose(torch.diagonal(model.prior.covariances, dim1=-2, dim2=-1)[0].numpy(),
                               (labelled.var(0) + floor).numpy(), rtol=1e-4)
    twice = build_model(trial_config("absae", latent_dim=4), stand_in_dataset())
    twice.set_supervision(torch.cat([images, images]), torch.cat([combinations, combinations]))
    assert twice.unlabelled_wanted == 0                 # a second code a combination: the pooled variance
    with pytest.raises(WeakdisError, match=r"single_code_spread_images=-1 is invalid; expected an integer >= 0"):
        build_model(trial_config("absae", extra={"single_code_spread_images": -1}), stand_in_dataset())
    alone = build_model(trial_config("absae", latent_dim=4, seed=1, extra={"prior_covariance_scale": 1.0}),
                        stand_in_dataset())
    alone.set_supervision(images, combinations)
    with pytest.warns(RuntimeWarning, match=r"no unlabelled images were given.*set_unlabelled"):
        alone.fit_prior(step=0)                         # used directly, without the loop: the old fallback
    np.testing.assert_allclose(alone.prior.covariances.numpy(), model.prior.covariances.numpy(), rtol=1e-5)


def test_training_loop_hands_a_single_code_absae_the_unlabelled_images_its_spread_needs(tmp_path):
    from trainables import TrialConfig
    from trainables.data import generate_file, load_dataset
    from trainables.loop import give_supervision, labelled_indices

    path = generate_file("dsprites", tmp_path / "dsprites.npz", version="dsprites:v2", max_images=600, seed=0)
    dataset = load_dataset("dsprites:v2", path=path, seed=0)
    cfg = TrialConfig(model="absae", dataset="dsprites:v2", tau=27, tau_sampling="stratified", seed=0,
                      latent_dim=4, extra={"single_code_spread_images": 100})
    model = build_model(cfg, dataset)
    give_supervision(model, dataset, cfg)
    images, _ = model._unlabelled
    assert images.shape[0] == 100
    labelled = dataset.images[labelled_indices(dataset, cfg)]
    assert not (images[:, None] == labelled[None]).flatten(2).all(2).any()     # none of the labelled images
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit_prior(step=0)


def test_mae_factor_with_one_labelled_code_a_value_fits_its_spread_to_unlabelled_codes():
    g = torch.Generator().manual_seed(0)
    diagonal = torch.arange(3)[:, None].repeat(1, 3)    # one image a value of every factor
    images, unlabelled = draw_sprites(diagonal, g), draw_sprites(random_factors(200, DSPRITES_V2, g), g)
    model = build_model(trial_config("mae", latent_dim=2, seed=1, extra={
        "single_code_spread_images": 150, "prior_covariance_scale": 1.0}), stand_in_dataset())
    model.set_supervision(images, diagonal)
    assert model.unlabelled_wanted == 150
    model.set_unlabelled(unlabelled)
    model.fit_prior(step=0)
    model.eval()
    with torch.no_grad():
        labelled, codes = model.encode(images).double(), model.encode(unlabelled[:150]).double()
    for k, prior in enumerate(model.prior.priors):
        part, means = codes[:, model.prior.slices[k]], prior.means.double()
        spread = (part - means[torch.cdist(part, means).argmin(1)]).square().mean(0) / 2
        floor = model.config.covariance_floor * max(1.0, labelled[:, model.prior.slices[k]].var(0).mean().item())
        np.testing.assert_allclose(torch.diagonal(prior.covariances, dim1=-2, dim2=-1)[0].numpy(),
                                   (spread + floor).numpy(), rtol=1e-4)
    twice = build_model(trial_config("mae", latent_dim=2), stand_in_dataset())
    twice.set_supervision(torch.cat([images, images]), torch.cat([diagonal, diagonal]))
    assert twice.unlabelled_wanted == 0                 # two codes a value: the pooled variance
