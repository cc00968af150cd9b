"""The weakly supervised adversarial autoencoders (AbsAE and M-AE): what they share.

One training step (``train_step(batch, step)``):

1. autoencoder: reconstruction (BCE, mean over pixels) + ``beta`` * the generator loss of the
   discriminator on the codes (non-saturating GAN loss; the discriminator never sees labels);
2. discriminator: prior samples are "real", codes are "fake" (the paper's Eq. 5);
3. after warm-up, one ReL iteration on ``rel_batch_size`` tuples drawn from the prior: a start
   component and a relation uniformly at random, ``z_in`` from the start component, the target
   component from :meth:`relation_targets`; loss ``-gamma * mean log p_target(ReL(z_in, r))``
   (the relational paper's Eq. 8 in log form; for M-AE the sum over partitions is the modular paper's
   Eq. 3).

Warm-up (``step < warmup_steps``) uses the prior Uniform(-1, 1)^D and trains no ReL. At
``step == warmup_steps`` the mixture prior is fitted from the encoded labelled samples given to
:meth:`set_supervision`, and refitted every ``prior_refit_every`` steps after that when it is > 0.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig, WeakdisModel, make_adam, seeded
from trainables.models.networks import MLP, image_size_of, make_decoder, make_encoder
from trainables.models.parallel import broadcast_module, world_size
from trainables.models.priors import COVARIANCE_ESTIMATORS, combination_indices, uniform_codes
from trainables.models.relations import (
    DIGITS, REL_OUTPUTS, binary_relation_table, binary_relations_for, parse_relation_ends,
    rel_output_codes, relation_targets, relations_for,
)
from trainables.models.spreading import spread_labels

REL_LOSSES = ("log_density", "mse", "mse_mean")
LABEL_CLASSIFIERS = ("prior", "linear")


@dataclass
class WeakConfig(ModelConfig):
    """Config of AbsAE / M-AE. ``beta`` weighs the adversarial prior term; see docs/models.md for each
    option and the measurements behind its default."""

    gamma: float = 1.0                      # weight of the ReL loss; the ReL has its own Adam, so it has
                                            # (almost) no effect: no other network gets its gradients
    rel_lr: float | None = None             # None = lr
    disc_lr: float | None = None            # None = lr
    rel_batch_size: int = 128
    warmup_steps: int = 500
    warmup_beta: float | None = None        # adversarial weight against Uniform(-1, 1) during warm-up;
                                            # None = beta (the papers); docs/reproduction.md measures it
    beta_ramp_steps: int = 0                # NOT in the papers: > 0 = after warm-up the weight rises linearly
                                            # from warmup_beta to beta over this many steps; 0 = a step
    prior_refit_every: int = 50             # refit every N steps after warm-up; 0 = fit once (the authors'
                                            # code); docs/reproduction.md measures both
    prior_refit_until: int | None = None    # no refits after this step (the authors' code never refits);
                                            # None = refit to the end
    prior_covariance_scale: float = 0.1     # fitted covariances x this (the authors' code; 1 = as estimated)
    prior_covariance_estimator: str = "sample"  # or "ledoit_wolf" / "oas": each component's covariance
                                            # shrunk toward its mean variance (sklearn's estimators)
    prior_covariance_anneal_steps: int = 0  # > 0: the scale goes geometrically from 1 to
                                            # prior_covariance_scale over this many steps after warm-up
    disc_restart: bool = False              # restart the discriminator's Adam at the first fit (its
                                            # moments are the warm-up task's); docs/reproduction.md
    disc_r1: float = 0.0                    # NOT in the papers: weight of an R1 gradient penalty on the
                                            # discriminator at prior samples (Mescheder et al. 2018); 0 = off
    mlp_hidden: int = 1024                  # units in each of the 3 hidden layers of the discriminator and the
                                            # ReL (the papers' 1024); smaller for quick CPU runs and tests
    rel_steps: int = 4                      # ReL iterations per autoencoder step (it needs no data;
                                            # the papers give it ~550,000 in all)
    rel_final_iterations: int = 0           # NOT in the papers: ReL iterations on the final prior after the
                                            # last step, before the last evaluation (the prior no longer
                                            # moves); 0 = none. docs/reproduction.md ("Depth on shapes3d:v5")
    rel_loss: str = "mse_mean"              # squared error to the target component's mean, "mse" to a
                                            # sample of it (the authors' code), or "log_density" (Eq. 8);
                                            # same optimum, measured in docs/reproduction.md (ablation 12)
    rel_residual: bool = True               # ReL output = input + MLP(...) instead of MLP(...)
    rel_standardize: bool = True            # ReL sees and outputs codes standardised by the prior
    relation_ends: str = "default"          # "default", "cyclic", "clamp" or "name:mode,..." per relation
    label_weight: float = 0.0               # NOT in the papers: weight of a cross-entropy that asks the prior
                                            # to classify the labelled codes right (0 = off)
    label_classifier: str = "prior"         # what label_weight's cross-entropy reads the labelled codes with:
                                            # "prior" = the mixture (component posterior); "linear" = a learnt
                                            # linear softmax per factor on the factor's partition (M-AE) or
                                            # the whole code (AbsAE), NOT in the papers; docs/reproduction.md
    label_factors: str = ""                 # NOT in the papers: with label_classifier "linear", the factors whose
                                            # heads the label term trains ("shape", "shape,posX"); "" = every one
    label_batch_size: int = 64              # labelled images per step when label_weight or
                                            # rel_encoder_weight > 0 (and as many pseudo-labelled ones)
    pseudo_labels: str = ""                 # NOT in the papers: factors ("shape" or "shape,scale") whose tau
                                            # labels are spread over unlabelled training codes at the first
                                            # fit (label spreading, trainables/models/spreading.py) and given
                                            # to the linear label classifier; "" = off; docs/reproduction.md
    pseudo_label_images: int = 30000        # unlabelled training images the labels are spread over
    pseudo_label_confidence: float = 0.7    # a spread label is kept where its probability is at least this
    pseudo_label_alpha: float = 0.9         # label spreading's clamping factor (0.2: a few graph steps only)
    pseudo_label_neighbours: int = 10       # neighbours of label spreading's k-NN graph
    single_code_spread_images: int = 1000   # unlabelled training images whose distance to the nearest
                                            # component mean sets the covariances where every component
                                            # (M-AE: every value of a factor) has one labelled code (tau =
                                            # combinations, stratified); 0 = the labelled codes' overall
                                            # variance, which widens the codes at every refit
                                            # (docs/reproduction.md, "AbsAE on shapes3d:v5")
    rel_encoder_weight: float = 0.0         # weight of the ReL loss on encoded labelled images, backpropagated
                                            # into the encoder (the ReL held fixed in it): one reading of the
                                            # modular paper's "encoded input samples", trained "end-to-end";
                                            # 0 = off (the authors' code: the ReL sees prior samples only)
    min_component_samples: int | None = None   # below this a component's covariance is shrunk; None = D + 1
    covariance_floor: float = 1e-4             # added to every covariance diagonal
    fit_batch_size: int = 512                  # images per encoder call when fitting the prior
    rel_output: str = "modulo"                 # binary relations (HWF): "modulo" (Figure 9), "sign" or
                                               # "two_digit" (Figure 10's variants)

    TRIAL_KEYS: ClassVar[tuple[str, ...]] = ModelConfig.TRIAL_KEYS + (
        "gamma", "rel_lr", "disc_lr", "rel_batch_size", "warmup_steps", "prior_refit_every")

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)

        def fail(key: str, expected: str) -> None:
            raise WeakdisError(f"{model_name} config: {key}={getattr(self, key)!r} is invalid; expected {expected}")

        if not self.gamma >= 0:
            fail("gamma", "a number >= 0")
        if self.rel_batch_size < 1:
            fail("rel_batch_size", "an integer >= 1")
        if self.warmup_steps < 0:
            fail("warmup_steps", "an integer >= 0")
        if self.warmup_beta is not None and not self.warmup_beta >= 0:
            fail("warmup_beta", "a number >= 0 or null (= beta)")
        if self.beta_ramp_steps < 0:
            fail("beta_ramp_steps", "an integer >= 0")
        if self.beta_ramp_steps > 0 and self.warmup_beta is None:
            fail("beta_ramp_steps", "0 when warmup_beta is null (the ramp starts from warmup_beta)")
        if self.single_code_spread_images < 0:
            fail("single_code_spread_images", "an integer >= 0")
        if self.prior_refit_every < 0:
            fail("prior_refit_every", "an integer >= 0")
        if self.prior_refit_until is not None and self.prior_refit_until < self.warmup_steps:
            fail("prior_refit_until", f"an integer >= warmup_steps ({self.warmup_steps}) or null (refit to the end)")
        if not self.prior_covariance_scale > 0:
            fail("prior_covariance_scale", "a number > 0")
        if self.prior_covariance_estimator not in COVARIANCE_ESTIMATORS:
            fail("prior_covariance_estimator", "one of " + ", ".join(COVARIANCE_ESTIMATORS))
        if self.prior_covariance_anneal_steps < 0:
            fail("prior_covariance_anneal_steps", "an integer >= 0")
        if self.prior_covariance_anneal_steps > 0 and self.prior_refit_every == 0:
            fail("prior_covariance_anneal_steps", "0 when prior_refit_every is 0 (the scale changes at refits)")
        if self.prior_covariance_anneal_steps > 0 and self.prior_refit_until is not None:
            every = self.prior_refit_every
            reached = self.warmup_steps + -(-self.prior_covariance_anneal_steps // every) * every
            if reached > self.prior_refit_until:
                fail("prior_covariance_anneal_steps",
                     f"a span whose scale is reached by a refit at or before prior_refit_until "
                     f"({self.prior_refit_until}); the first refit after the anneal is at step {reached}")
        if not self.disc_r1 >= 0:
            fail("disc_r1", "a number >= 0")
        if self.mlp_hidden < 1:
            fail("mlp_hidden", "an integer >= 1")
        if self.rel_steps < 1:
            fail("rel_steps", "an integer >= 1")
        if self.rel_final_iterations < 0:
            fail("rel_final_iterations", "an integer >= 0")
        if not self.label_weight >= 0:
            fail("label_weight", "a number >= 0")
        if not self.rel_encoder_weight >= 0:
            fail("rel_encoder_weight", "a number >= 0")
        if self.label_batch_size < 1:
            fail("label_batch_size", "an integer >= 1")
        if self.label_classifier not in LABEL_CLASSIFIERS:
            fail("label_classifier", "one of " + ", ".join(LABEL_CLASSIFIERS))
        if self.label_factors and self.label_classifier != "linear":
            fail("label_factors", "'' (every factor) unless label_classifier is 'linear': the mixture's "
                 "cross-entropy reads whole combinations")
        if self.pseudo_labels:
            if not (self.label_weight > 0 and self.label_classifier == "linear"):
                fail("pseudo_labels", "'' (off) unless label_weight > 0 and label_classifier is 'linear': "
                     "the pseudo-labels train the linear label classifier")
            if self.pseudo_label_images < 1:
                fail("pseudo_label_images", "an integer >= 1")
            if not 0 <= self.pseudo_label_confidence <= 1:
                fail("pseudo_label_confidence", "a number in [0, 1]")
            if not 0 < self.pseudo_label_alpha < 1:
                fail("pseudo_label_alpha", "a number in (0, 1)")
            if self.pseudo_label_neighbours < 1:
                fail("pseudo_label_neighbours", "an integer >= 1")
        if self.rel_loss not in REL_LOSSES:
            fail("rel_loss", "one of " + ", ".join(REL_LOSSES))
        if self.min_component_samples is not None and self.min_component_samples < 2:
            fail("min_component_samples", "an integer >= 2 or null")
        if not self.covariance_floor > 0:
            fail("covariance_floor", "a number > 0")
        if self.fit_batch_size < 1:
            fail("fit_batch_size", "an integer >= 1")
        if self.rel_output not in REL_OUTPUTS:
            fail("rel_output", "one of " + ", ".join(REL_OUTPUTS))


def _pixel_scale(images: Tensor) -> float:
    """What stored images are multiplied by to lie in [0, 1]: 1/255 for uint8 in {0..255}."""
    if images.dtype == torch.uint8 and images.numel() and int(images.max()) > 1:
        return 1.0 / 255.0
    return 1.0


def r1_penalty(logits: Tensor, inputs: Tensor, weight: float) -> Tensor:
    """R1 (Mescheder et al. 2018): ``weight / 2`` times the mean squared gradient norm of a critic's
    ``logits`` at its "real" ``inputs`` (which require grad); differentiable for the critic's step."""
    grad, = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    return 0.5 * weight * grad.square().sum(1).mean()


class WeakAutoencoder(WeakdisModel):
    """Base of :class:`AbsAE` and :class:`MAE`; subclasses build ``prior`` and the discriminator."""

    config_cls: ClassVar[type[ModelConfig]] = WeakConfig

    def __init__(self, config: WeakConfig, spec: Any, num_channels: int) -> None:
        super().__init__(config, spec, num_channels)
        # arity 2 (HWF): ReL(z_in1, z_in2, onehot(relation)); the table is [R, C, C, outputs]
        binary = binary_relations_for(spec)
        self.relation_arity = 2 if binary else 1
        if not binary and config.rel_output != "modulo":
            raise WeakdisError(f"{self.name} config: rel_output={config.rel_output!r} applies to binary relations "
                               f"(HWF) only; expected 'modulo' for {spec.name}")
        if binary and config.rel_encoder_weight > 0:
            raise WeakdisError(f"{self.name} config: rel_encoder_weight={config.rel_encoder_weight!r} applies to "
                               f"one-operand relations only; expected 0 for {spec.name}'s binary relations")
        self.relations = binary or parse_relation_ends(config.relation_ends, relations_for(spec))
        self.code_dim = self._code_dim()
        table = binary_relation_table(spec, binary, config.rel_output) if binary else relation_targets(spec, self.relations)
        self.register_buffer("relation_table", torch.as_tensor(table), persistent=False)
        self.rel_outputs = rel_output_codes(config.rel_output) if binary else 1
        rel_out = self.code_dim * self.rel_outputs + (1 if binary and config.rel_output == "sign" else 0)
        side = image_size_of(spec)
        with seeded(config.seed):
            self.encoder = make_encoder(num_channels, self.code_dim, side)
            self.decoder = make_decoder(num_channels, self.code_dim, side)
            self.discriminator = self._build_discriminator()
            self.relational_learner = MLP(self.code_dim * self.relation_arity + len(self.relations), rel_out,
                                          hidden=config.mlp_hidden)
        self.prior = self._build_prior()
        # The ReL works in the prior's standardised coordinates when rel_standardize is on (set at fit).
        self.register_buffer("code_center", torch.zeros(self.code_dim))
        self.register_buffer("code_scale", torch.ones(self.code_dim))
        self._optimizers = {
            "autoencoder": make_adam(list(self.encoder.parameters()) + list(self.decoder.parameters()), config.lr),
            "discriminator": make_adam(list(self.discriminator.parameters()), config.disc_lr or config.lr),
            "relational": make_adam(list(self.relational_learner.parameters()), config.rel_lr or config.lr),
        }
        if config.label_classifier == "linear":
            # built only when on, so that the other configs' networks, states and streams stay as they were
            widths = [part.shape[1] for part in self._label_head_inputs(torch.zeros(1, self.code_dim))]
            with seeded(config.seed + 2):
                self.label_head = nn.ModuleList(nn.Linear(width, size) for width, size in zip(widths, spec.factor_sizes))
            self._optimizers["autoencoder"].add_param_group({"params": list(self.label_head.parameters())})
        self._prior_ready = False
        self._supervision: tuple[Tensor, float, Tensor] | None = None
        self.label_factors = (self._factor_indices("label_factors", config.label_factors)
                              or tuple(range(len(spec.factor_sizes))))
        self.pseudo_label_factors = self._factor_indices("pseudo_labels", config.pseudo_labels)
        if not set(self.pseudo_label_factors) <= set(self.label_factors):
            raise WeakdisError(f"{self.name} config: pseudo_labels={config.pseudo_labels!r} names factors outside "
                               f"label_factors={config.label_factors!r}; expected factors among "
                               f"{', '.join(self.spec.factor_names[k] for k in self.label_factors)}")
        self._unlabelled: tuple[Tensor, float] | None = None
        self._single_codes = False     # every component (M-AE: of some factor) has one labelled code
        self._warned_no_spread = False
        self._pseudo_factors: Tensor | None = None    # int64 [unlabelled, K]: spread labels, -1 = none
        self._pseudo_rows: Tensor | None = None       # the rows of it with a label

    def _factor_indices(self, key: str, names: str) -> tuple[int, ...]:
        """Positions of the comma-separated factor ``names`` (config ``key``) in the dataset's factors."""
        indices = []
        for name in (item.strip() for item in names.split(",") if item.strip()):
            if name not in self.spec.factor_names:
                raise WeakdisError(f"{self.name} config: {key}={names!r} names factor {name!r}, which "
                                   f"{self.spec.name} does not have; expected names among "
                                   f"{', '.join(self.spec.factor_names)}")
            indices.append(self.spec.factor_names.index(name))
        return tuple(sorted(set(indices)))

    # ---- subclass hooks ----------------------------------------------------------------------
    def _code_dim(self) -> int:
        raise NotImplementedError

    def _build_prior(self) -> nn.Module:
        raise NotImplementedError

    def _build_discriminator(self) -> nn.Module:
        raise NotImplementedError

    def _discriminate(self, z: Tensor) -> Tensor:
        """Discriminator logits for codes ``[B, D]`` (any shape; losses sum over all but the batch)."""
        raise NotImplementedError

    def _check_supervision(self, factors: np.ndarray) -> None:
        """Raise if a prior component lacks a labelled sample; set ``_single_codes``."""
        raise NotImplementedError

    def _fit_prior_from(self, codes: Tensor, factors: Tensor) -> None:
        raise NotImplementedError

    def _predicted_factors(self, codes: Tensor) -> Tensor:
        raise NotImplementedError

    def _code_penalties(self, z: Tensor, step: int) -> dict[str, tuple[float, Tensor]]:
        """Extra ``name -> (weight, loss)`` terms on the batch's codes for the autoencoder; none here."""
        return {}

    def _train_code_critics(self, z: Tensor) -> dict[str, Tensor]:
        """One step of any critic those terms need, on the detached codes; its detached losses."""
        return {}

    def _decoder_input(self, z: Tensor) -> Tensor:
        """The codes the decoder reconstructs the batch from; the encoder's own here."""
        return z

    def _label_head_inputs(self, z: Tensor) -> list[Tensor]:
        """What each factor's linear label classifier (``label_classifier: linear``) reads: the whole
        code here."""
        return [z] * len(self.spec.factor_sizes)

    # ---- supervision and prior ---------------------------------------------------------------
    def set_supervision(self, images: Tensor, factors: Tensor) -> None:
        """The tau labelled samples: images ``[tau, C, 64, 64]`` (uint8 in {0, 1} or {0..255}, or
        float in [0, 1]) and their relevant-factor values ``[tau, K]``.

        Raises a :class:`WeakdisError` naming the first prior component without a labelled sample.
        """
        images = torch.as_tensor(images)
        factors = torch.as_tensor(factors, dtype=torch.int64)
        k = len(self.spec.factor_sizes)
        self._check_images(images, "set_supervision", "tau")
        if factors.shape != (images.shape[0], k):
            raise WeakdisError(
                f"{self.name}.set_supervision: factors have shape {tuple(factors.shape)}; "
                f"expected [{images.shape[0]}, {k}] ({', '.join(self.spec.factor_names)})")
        host_factors = factors.cpu().numpy()
        sizes = np.asarray(self.spec.factor_sizes)
        if len(host_factors) and ((host_factors < 0) | (host_factors >= sizes)).any():
            raise WeakdisError(
                f"{self.name}.set_supervision: factor values out of range; expected value k in "
                f"[0, {tuple(self.spec.factor_sizes)}[k])")
        self._check_supervision(host_factors)
        self._supervision = (images, _pixel_scale(images), factors)

    @property
    def unlabelled_wanted(self) -> int:
        """How many unlabelled training images :meth:`set_unlabelled` should be given (0 = none)."""
        pseudo = self.config.pseudo_label_images if self.pseudo_label_factors else 0
        spread = self.config.single_code_spread_images if self._single_codes else 0
        return max(pseudo, spread)

    def set_unlabelled(self, images: Tensor) -> None:
        """Unlabelled training images ``[n, C, 64, 64]`` (as for :meth:`set_supervision`) that
        ``pseudo_labels`` spreads the labels over at the first fit, and whose codes set the spread of
        components with one labelled code each (``single_code_spread_images``)."""
        images = torch.as_tensor(images)
        self._check_images(images, "set_unlabelled", "n")
        self._unlabelled = (images, _pixel_scale(images))

    def _check_images(self, images: Tensor, method: str, rows: str) -> None:
        side = image_size_of(self.spec)
        if images.ndim != 4 or images.shape[1:] != (self.num_channels, side, side):
            raise WeakdisError(
                f"{self.name}.{method}: images have shape {tuple(images.shape)}; "
                f"expected [{rows}, {self.num_channels}, {side}, {side}]")

    def _require_supervision(self, step: int) -> tuple[Tensor, float, Tensor]:
        if self._supervision is None:
            raise WeakdisError(
                f"{self.name}: the mixture prior is fitted at step {step} (warmup_steps="
                f"{self.config.warmup_steps}) from labelled samples, but none were given; call "
                "set_supervision(images, factors) with tau >= 1 labelled samples first")
        return self._supervision

    @torch.no_grad()
    def fit_prior(self, step: int | None = None) -> None:
        """Encode the labelled samples (eval-mode BatchNorm) and fit the mixture prior to them."""
        step = self.config.warmup_steps if step is None else step
        images, scale, factors = self._require_supervision(step)
        was_training = self.training
        self.eval()
        try:
            device = self.device
            codes = self._encode_all(images, scale)
            if not self._prior_ready and self.pseudo_label_factors and self._pseudo_factors is None:
                self._spread_pseudo_labels(codes, factors, step)
            self.prior.covariance_scale = self._covariance_scale_at(step)
            self._fit_prior_from(codes, factors.to(device))
            if not self._prior_ready and self.config.disc_restart:
                self._optimizers["discriminator"].state.clear()
            self._set_code_standardisation()
            # BatchNorm running statistics differ across ranks, and so would the fitted priors:
            # every rank takes rank 0's.
            broadcast_module(self.prior)
        finally:
            self.train(was_training)
        self._prior_ready = True

    def _encode_all(self, images: Tensor, scale: float) -> Tensor:
        """Codes of stored ``images`` in chunks of ``fit_batch_size`` (the caller sets eval mode)."""
        chunks = []
        for start in range(0, images.shape[0], self.config.fit_batch_size):
            chunk = images[start:start + self.config.fit_batch_size].to(self.device).float() * scale
            chunks.append(self.encode(chunk))
        return torch.cat(chunks)

    def _spread_codes(self) -> Tensor | None:
        """Codes of the first ``single_code_spread_images`` unlabelled images where every component
        (M-AE: of some factor) has one labelled code, for the prior's fit; None otherwise."""
        wanted = self.config.single_code_spread_images
        if not (self._single_codes and wanted):
            return None
        if self._unlabelled is None:
            if not self._warned_no_spread:
                warnings.warn(
                    f"{self.name}: every prior component (M-AE: of some factor) has one labelled code, but no "
                    f"unlabelled images were given to estimate its spread from (single_code_spread_images={wanted}); using "
                    "the labelled codes' overall variance, which widens the codes at every refit. Call "
                    f"set_unlabelled(images) with unlabelled_wanted={self.unlabelled_wanted} training images",
                    RuntimeWarning, stacklevel=3)
                self._warned_no_spread = True
            return None
        images, scale = self._unlabelled
        return self._encode_all(images[:wanted], scale)

    def _spread_pseudo_labels(self, labelled_codes: Tensor, factors: Tensor, step: int) -> None:
        """Spread the labels of each ``pseudo_labels`` factor over the unlabelled images' codes; keep
        those at least ``pseudo_label_confidence`` sure."""
        if self._unlabelled is None:
            raise WeakdisError(
                f"{self.name}: pseudo_labels={self.config.pseudo_labels!r} spreads labels over unlabelled "
                f"images at step {step}, but none were given; call set_unlabelled(images) first "
                f"(the training loop gives unlabelled_wanted={self.unlabelled_wanted} of them)")
        unlabelled = self._encode_all(*self._unlabelled).cpu().numpy()
        labelled = labelled_codes.cpu().numpy()
        host_factors = factors.cpu().numpy()
        pseudo = torch.full((len(unlabelled), len(self.spec.factor_sizes)), -1, dtype=torch.int64)
        for k in self.pseudo_label_factors:
            spread, probability = spread_labels(labelled, host_factors[:, k], unlabelled,
                                                self.config.pseudo_label_neighbours, self.config.pseudo_label_alpha)
            keep = probability >= max(self.config.pseudo_label_confidence, 1e-12)
            pseudo[:, k] = torch.as_tensor(np.where(keep, spread, -1))
        pseudo = pseudo.to(self.device)
        if world_size() > 1:
            torch.distributed.broadcast(pseudo, 0)   # BatchNorm statistics, so codes, differ by rank
        self._keep_pseudo_labels(pseudo)

    def _keep_pseudo_labels(self, pseudo: Tensor | None) -> None:
        self._pseudo_factors = pseudo
        self._pseudo_rows = None if pseudo is None else torch.nonzero((pseudo >= 0).any(1)).squeeze(1)

    def pseudo_labels(self) -> Tensor | None:
        """int64 ``[n, K]``: the spread label of each unlabelled image's factor (-1 = none kept), once
        spread at the first fit; None before, or with ``pseudo_labels`` off."""
        return self._pseudo_factors

    def _covariance_scale_at(self, step: int) -> float:
        """``prior_covariance_scale``, reached geometrically from 1 over ``prior_covariance_anneal_steps``
        after warm-up: the components tighten around codes that already sit inside them."""
        target, span = self.config.prior_covariance_scale, self.config.prior_covariance_anneal_steps
        if span == 0:
            return target
        progress = min(1.0, max(0, step - self.config.warmup_steps) / span)
        return target ** progress

    def _set_code_standardisation(self) -> None:
        """Per-dimension mean and standard deviation of the fitted mixture (component means and
        spreads together): the coordinates the ReL sees when ``rel_standardize`` is on."""
        means = self.prior.means.float()
        spread = torch.diagonal(self.prior.covariances.float(), dim1=-2, dim2=-1).mean(0)
        self.code_center.copy_(means.mean(0))
        self.code_scale.copy_((means.var(0, unbiased=False) + spread).sqrt().clamp_min(1e-6))

    def _fit_due(self, step: int) -> bool:
        warmup, every = self.config.warmup_steps, self.config.prior_refit_every
        if step < warmup:
            return False
        if not self._prior_ready or step == warmup:
            return True
        until = self.config.prior_refit_until
        return every > 0 and (step - warmup) % every == 0 and (until is None or step <= until)

    def sample_prior(self, n: int, step: int) -> Tensor:
        """``n`` codes from the prior in force at ``step`` (uniform in warm-up, then the mixture)."""
        g = self.generator()
        if step < self.config.warmup_steps or not self._prior_ready:
            return uniform_codes(n, self.code_dim, g, self.device)
        return self.prior.sample(n, None, g)

    # ---- relations ---------------------------------------------------------------------------
    def relation_targets(self, depth: int = 1) -> np.ndarray:
        """``int64 [R, C]``: target component of each component under each relation (``depth`` steps).
        Binary relations: ``[R, C, C]``, the component of the result digit of each operand pair (the
        units digit for ``two_digit``; -1 where an operand is no digit); compose by feeding it back."""
        if self.relation_arity == 2:
            return self.relation_table[..., self._result_output].cpu().numpy()
        return relation_targets(self.spec, self.relations, depth)

    @property
    def _result_output(self) -> int:
        return 1 if self.config.rel_output == "two_digit" else 0

    def relational_model(self, z: Tensor, relation: Tensor | int, z2: Tensor | None = None) -> Tensor:
        """ReL output for codes ``[n, D]`` and relation indices ``[n]`` (or one int); binary relations
        take the second operand's codes ``z2`` and give the result digit's code. For numpy arrays see
        :func:`trainables.models.capabilities.relational_model_numpy`."""
        r = torch.as_tensor(relation, dtype=torch.int64, device=z.device)
        if r.ndim == 0:
            r = r.expand(z.shape[0])
        if self.relation_arity == 2:
            if z2 is None:
                raise WeakdisError(f"{self.name}: the relations of {self.spec.name} are binary; expected a second code z2")
            return self.relational_outputs(z, z2, r)[0][:, self._result_output]
        return self._apply_rel(z, r)

    def relational_outputs(self, z1: Tensor, z2: Tensor, relation: Tensor) -> tuple[Tensor, Tensor | None]:
        """Binary ReL: the output codes ``[n, O, D]`` (O = 2 for ``two_digit``: tens, units) and, for
        ``rel_output="sign"``, the logit ``[n]`` that the result is negative (else None)."""
        onehot = F.one_hot(relation, len(self.relations)).to(torch.float32)
        center, scale = (self.code_center, self.code_scale) if self.config.rel_standardize else (0.0, 1.0)
        d = self.code_dim
        with self.full_precision():
            out = self.relational_learner(torch.cat([(z1.float() - center) / scale, (z2.float() - center) / scale,
                                                     onehot], dim=1))
            # no residual: the result digit is generally neither operand
            codes = center + out[:, :d * self.rel_outputs].reshape(-1, self.rel_outputs, d) * scale
            sign = out[:, -1] if self.config.rel_output == "sign" else None
        return codes, sign

    def _apply_rel(self, z: Tensor, relation: Tensor) -> Tensor:
        # fp32 always: bf16 would round codes to ~3 significant digits, coarser than a tight component.
        onehot = F.one_hot(relation, len(self.relations)).to(torch.float32)
        z = z.float()
        center, scale = (self.code_center, self.code_scale) if self.config.rel_standardize else (0.0, 1.0)
        with self.full_precision():
            step = self.relational_learner(torch.cat([(z - center) / scale, onehot], dim=1))
            return (z if self.config.rel_residual else center) + step * scale

    def relational_step(self, iterations: int | None = None) -> Tensor:
        """``iterations`` (default ``rel_steps``) ReL iterations on ``rel_batch_size`` tuples sampled
        from the fitted prior; the mean loss of the last one (negative log-density or squared error)."""
        g = self.generator()
        n = self.config.rel_batch_size
        iterations = self.config.rel_steps if iterations is None else iterations
        if self.relation_arity == 2:
            return self._binary_relational_step(g, n, iterations)
        for _ in range(iterations):
            start = torch.randint(self.prior.num_components, (n,), generator=g, device=self.device)
            relation, target = self._random_relations(start, g)
            with torch.no_grad(), self.full_precision():
                z_in = self.prior.sample(n, start, g)
            z_out = self._apply_rel(z_in, relation)
            with self.full_precision():
                per_sample = self._relation_loss(z_out, target, g)
                loss = self.config.gamma * per_sample.mean()
            self._optimise(self._optimizers["relational"], loss)
        return per_sample.detach().mean()

    def finish_training(self, step: int, say: Callable[[str], None] | None = None) -> None:
        """After the trial's last step: ``rel_final_iterations`` ReL iterations on the final prior,
        which no longer moves (the ReL otherwise trains on a prior refitted every
        ``prior_refit_every`` steps). ``say`` gets a line before and after."""
        iterations = self.config.rel_final_iterations
        if iterations <= 0 or not self._prior_ready or not self.relations:
            return
        say = say or (lambda line: None)
        say(f"step {step}: {iterations:,} ReL iterations on the final prior (rel_final_iterations)")
        started = time.perf_counter()
        loss = self.relational_step(iterations)
        say(f"step {step}: ReL loss {float(loss):.4g} after {iterations:,} more iterations "
            f"({time.perf_counter() - started:.0f} s)")

    def _random_relations(self, start: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """A relation drawn uniformly for each start component, and the component it leads to."""
        relation = torch.randint(len(self.relations), start.shape, generator=g, device=self.device)
        return relation, self.relation_table[relation, start]

    def _relation_loss(self, z_out: Tensor, target: Tensor, g: torch.Generator) -> Tensor:
        """``[n]`` per-sample ReL loss of outputs ``z_out`` toward components ``target`` (``rel_loss``)."""
        if self.config.rel_loss == "log_density":
            return -self.prior.log_prob(z_out, target)
        return (z_out - self._target_codes(target, g)).square().mean(1)

    @torch.no_grad()
    def _target_codes(self, components: Tensor, g: torch.Generator) -> Tensor:
        """What the ReL's squared error pulls toward: a sample of each target component (``mse``, the
        authors' code) or its mean (``mse_mean``: the same expected gradient without the sample's noise)."""
        if self.config.rel_loss == "mse_mean":
            return self.prior.means[components].float()
        return self.prior.sample(components.shape[0], components, g).float()

    def _binary_relational_step(self, g: torch.Generator, n: int, iterations: int) -> Tensor:
        """Eq. 8 with two inputs: digits a, b and a relation drawn uniformly, z_a, z_b from their
        components, each output code pulled to its target component (and the sign by cross-entropy)."""
        for _ in range(iterations):
            a = torch.randint(DIGITS, (n,), generator=g, device=self.device)
            b = torch.randint(DIGITS, (n,), generator=g, device=self.device)
            relation = torch.randint(len(self.relations), (n,), generator=g, device=self.device)
            with torch.no_grad(), self.full_precision():
                z_a, z_b = self.prior.sample(n, a, g), self.prior.sample(n, b, g)
            target = self.relation_table[relation, a, b]
            codes, sign = self.relational_outputs(z_a, z_b, relation)
            with self.full_precision():
                per_sample = torch.zeros(n, device=self.device)
                for o in range(self.rel_outputs):
                    per_sample = per_sample + self._relation_loss(codes[:, o], target[:, o], g)
                if sign is not None:
                    per_sample = per_sample + F.binary_cross_entropy_with_logits(
                        sign, target[:, 1].float(), reduction="none")
                loss = self.config.gamma * per_sample.mean()
            self._optimise(self._optimizers["relational"], loss)
        return per_sample.detach().mean()

    # ---- training ----------------------------------------------------------------------------
    def train_step(self, batch: Tensor, step: int) -> dict[str, Tensor]:
        """One autoencoder + discriminator step (+ one ReL step after warm-up); detached losses."""
        if not self.training:
            self.train()
        self._sync_start()
        if self._fit_due(step):
            self.fit_prior(step)
        x = self.prepare_images(batch)
        uses_labels = self.config.label_weight > 0 or self.config.rel_encoder_weight > 0
        labelled = self._labelled_batch() if uses_labels and self._prior_ready else None
        pseudo = self._pseudo_labelled_batch() if self._pseudo_factors is not None and self._prior_ready else None
        ends = [x.shape[0]]
        for extra in (labelled, pseudo):
            if extra is not None:
                x = torch.cat([x, self.prepare_images(extra[0])])
                ends.append(x.shape[0])
        target = x.float()

        self.discriminator.requires_grad_(False)
        with self.autocast():
            z = self.encoder(x)
            logits = self.decoder(self._decoder_input(z))
        with self.full_precision():
            z = z.float()
            recon = F.binary_cross_entropy_with_logits(logits.float(), target)
            gen = self._generator_loss(z)
            loss = recon + self._adversarial_weight(step) * gen
            extra_losses: dict[str, Tensor] = {}
            for key, (weight, value) in self._code_penalties(z, step).items():
                extra_losses[key] = value
                loss = loss + weight * value
            if labelled is not None:
                z_labelled = z[ends[0]:ends[1]]
                if self.config.label_weight > 0:
                    extra_losses["label"] = self._label_loss(z_labelled, labelled[1])
                    loss = loss + self.config.label_weight * extra_losses["label"]
                if self.config.rel_encoder_weight > 0:
                    extra_losses["rel_encoded"] = self._encoded_relation_loss(z_labelled, labelled[1])
                    loss = loss + self.config.rel_encoder_weight * extra_losses["rel_encoded"]
            if pseudo is not None:
                extra_losses["pseudo_label"] = self._pseudo_label_loss(z[ends[-2]:], pseudo[1])
                loss = loss + self.config.label_weight * extra_losses["pseudo_label"]
        self.discriminator.requires_grad_(True)
        self._optimise(self._optimizers["autoencoder"], loss)

        with torch.no_grad(), self.full_precision():
            prior_codes = self.sample_prior(z.shape[0], step)
        r1 = self.config.disc_r1 > 0
        prior_codes.requires_grad_(r1)
        fake, real = self._discriminate(z.detach()), self._discriminate(prior_codes)
        with self.full_precision():
            # BCE with logits: prior samples labelled 1, codes labelled 0.
            disc = 0.5 * (F.softplus(-real).mean(0).sum() + F.softplus(fake).mean(0).sum())
            if r1:
                disc = disc + r1_penalty(real, prior_codes, self.config.disc_r1)
        self._optimise(self._optimizers["discriminator"], disc)

        out = {"recon": recon.detach(), "gen": gen.detach(), "disc": disc.detach()}
        out.update((key, value.detach()) for key, value in extra_losses.items())
        out.update(self._train_code_critics(z.detach()))
        if step >= self.config.warmup_steps:
            out["rel"] = self.relational_step()
        return out

    def _label_loss(self, z_labelled: Tensor, components: Tensor) -> Tensor:
        """Cross-entropy of the labelled codes' combinations under the mixture (``prior``), or the sum
        over factors of a learnt linear classifier's (``linear``). The mixture's means are the labelled
        codes' own class means, so where the classes' codes coincide its gradient vanishes with their
        distance; a learnt classifier's does not (docs/reproduction.md)."""
        if self.config.label_classifier == "prior":
            return F.cross_entropy(self.prior.log_prob_components(z_labelled), components)
        inputs = self._label_head_inputs(z_labelled)
        factors = self.prior.component_factors[components]
        return sum(F.cross_entropy(self.label_head[k](inputs[k]), factors[:, k]) for k in self.label_factors)

    def _pseudo_label_loss(self, z_pseudo: Tensor, factors: Tensor) -> Tensor:
        """The linear label classifier's cross-entropy on pseudo-labelled codes, summed over the
        ``pseudo_labels`` factors, each a mean over the codes that have its label."""
        inputs = self._label_head_inputs(z_pseudo)
        loss = z_pseudo.new_zeros(())
        for k in self.pseudo_label_factors:
            labels = factors[:, k]
            has = (labels >= 0).float()
            per_code = F.cross_entropy(self.label_head[k](inputs[k]), labels.clamp_min(0), reduction="none")
            loss = loss + (per_code * has).sum() / has.sum().clamp_min(1.0)
        return loss

    def _encoded_relation_loss(self, z_labelled: Tensor, components: Tensor) -> Tensor:
        """The ReL's loss on the codes of labelled images under random relations, with gradients into
        the encoder only: the encoder learns to place each labelled code where the ReL, trained on
        prior samples, moves it to the right component."""
        g = self.generator()
        relation, target = self._random_relations(components, g)
        self.relational_learner.requires_grad_(False)
        try:
            z_out = self._apply_rel(z_labelled, relation)
        finally:
            self.relational_learner.requires_grad_(True)
        return self._relation_loss(z_out, target, g).mean()

    def _adversarial_weight(self, step: int) -> float:
        start, beta, ramp = self.config.warmup_beta, self.config.beta, self.config.beta_ramp_steps
        if start is None:
            return beta
        after = step - self.config.warmup_steps
        if after < 0:
            return start
        if after < ramp:
            return start + (beta - start) * after / ramp
        return beta

    def _labelled_batch(self) -> tuple[Tensor, Tensor]:
        """``label_batch_size`` labelled images (float, on the device) and their combination indices."""
        images, scale, factors = self._require_supervision(self.config.warmup_steps)
        pick = torch.randint(images.shape[0], (self.config.label_batch_size,), generator=self.generator(),
                             device=self.device)
        chosen = images[pick.to(images.device)].to(self.device).float() * scale
        values = factors[pick.to(factors.device)].to(self.device)
        return chosen, combination_indices(values, self.spec.factor_sizes)

    def _pseudo_labelled_batch(self) -> tuple[Tensor, Tensor] | None:
        """``label_batch_size`` unlabelled images with a kept spread label and their labels ``[n, K]``
        (-1 = none); None when no spread label was kept."""
        images, scale = self._unlabelled
        rows = self._pseudo_rows
        if rows.numel() == 0:
            return None
        pick = rows[torch.randint(rows.numel(), (self.config.label_batch_size,), generator=self.generator(),
                                  device=self.device)]
        return images[pick.to(images.device)].to(self.device).float() * scale, self._pseudo_factors[pick]

    def _generator_loss(self, z: Tensor) -> Tensor:
        """Non-saturating generator loss ``-log d(z)``, summed over discriminators, mean over batch."""
        logits = self._discriminate(z)
        return F.softplus(-logits).mean(0).sum()

    # ---- encoding ----------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        with self.autocast():
            return self.encoder(self.prepare_images(x)).float()

    def representation(self, x: Tensor) -> dict[str, Tensor | None]:
        """Raw codes, and (once the mixture is fitted) the factor values of the most likely component."""
        codes = self.encode(x)
        factors = self._predicted_factors(codes) if self._prior_ready else None
        return {"factors": factors, "codes": codes}

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"prior_ready": self._prior_ready}
        if self._pseudo_factors is not None:
            state["pseudo_labels"] = self._pseudo_factors.cpu()
        return state

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._prior_ready = bool(state.get("prior_ready", False))
        pseudo = state.get("pseudo_labels")
        self._keep_pseudo_labels(None if pseudo is None else torch.as_tensor(pseudo, dtype=torch.int64).to(self.device))
