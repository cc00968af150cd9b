"""The factored VAE of the explicit-disentanglement paper, shared by ``simvae``, ``cyclevae`` and ``predvae``.

The code is ``(z, y)``: ``latent_dim`` content dimensions z, then ``factor_dim`` dimensions y for the
chosen factor (rotation, colour). Gaussian encoder q(z, y | x), N(0, I) prior, Bernoulli decoder
p(x | z, y). ``architecture`` picks the networks: ``mlp`` (the paper's Rotated MNIST nets, 2 x 512
tanh), ``conv`` (its Colored MNIST nets, 3 conv layers of 32 3x3 stride 2 and a 128 unit layer, and
the reverse), ``appendix-a`` (our 64x64 backbone, ``trainables.models.networks``), or ``auto``: ``mlp``
for 1-channel digits, ``conv`` for 3-channel digits, ``appendix-a`` for 64x64 images.

The loss functions are module functions so that they can be checked against the paper's equations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from trainables.errors import WeakdisError
from trainables.models.base import ModelConfig
from trainables.models.networks import Decoder, Encoder
from trainables.models.vae import GaussianVAE, VAEConfig, bernoulli_nll, gaussian_kl

ARCHITECTURES = ("auto", "mlp", "conv", "appendix-a")
MLP_UNITS = 512
CONV_CHANNELS = 32
CONV_UNITS = 128


def gaussian_kl_between(mean_p: Tensor, logvar_p: Tensor, mean_q: Tensor, logvar_q: Tensor) -> Tensor:
    """``[B]`` KL(N(mean_p, exp(logvar_p)) || N(mean_q, exp(logvar_q))), summed over dimensions."""
    return 0.5 * (logvar_q - logvar_p + (logvar_p.exp() + (mean_p - mean_q).square()) / logvar_q.exp() - 1.0).sum(1)


def similarity_loss(logits: Tensor, x: Tensor, mean: Tensor, logvar: Tensor, mean_pair: Tensor,
                    logvar_pair: Tensor, latent_dim: int, beta: float, lam: float) -> dict[str, Tensor]:
    """Eq. 1: -log p(x | z, y) + beta KL(q(z, y | x) || N(0, I)) + lam KL(q(z | x) || q(z | x')),
    batch means; the similarity KL is over the z part only."""
    recon = bernoulli_nll(logits, x).mean()
    kl = gaussian_kl(mean, logvar).mean()
    sim = gaussian_kl_between(mean[:, :latent_dim], logvar[:, :latent_dim],
                              mean_pair[:, :latent_dim], logvar_pair[:, :latent_dim]).mean()
    return {"recon": recon, "kl": kl, "similarity": sim, "loss": recon + beta * kl + lam * sim}


def swap_factor_codes(code: Tensor, code_pair: Tensor, latent_dim: int) -> tuple[Tensor, Tensor]:
    """``(z', y)`` and ``(z, y')`` from codes ``(z, y)`` of x and ``(z', y')`` of x'."""
    return (torch.cat([code_pair[:, :latent_dim], code[:, latent_dim:]], 1),
            torch.cat([code[:, :latent_dim], code_pair[:, latent_dim:]], 1))


def forward_cycle_loss(logits_x: Tensor, x: Tensor, logits_pair: Tensor, x_pair: Tensor, mean: Tensor,
                       logvar: Tensor, mean_pair: Tensor, logvar_pair: Tensor, beta: float) -> dict[str, Tensor]:
    """Eq. 2: -log p(x | z', y) - log p(x' | z, y') + beta (KL(q(z, y | x)) + KL(q(z', y' | x'))),
    batch means; ``logits_x`` decode ``(z', y)``, ``logits_pair`` decode ``(z, y')``."""
    recon = bernoulli_nll(logits_x, x).mean() + bernoulli_nll(logits_pair, x_pair).mean()
    kl = gaussian_kl(mean, logvar).mean() + gaussian_kl(mean_pair, logvar_pair).mean()
    return {"recon": recon, "kl": kl, "loss": recon + beta * kl}


def predictor_cross_entropy(logits: Tensor, labels: Tensor, classes: tuple[int, ...]) -> Tensor:
    """Mean over the batch of the cross-entropy summed over label heads (``labels`` int [B, H])."""
    heads = torch.split(logits, list(classes), dim=1)
    return sum(nn.functional.cross_entropy(h, labels[:, i]) for i, h in enumerate(heads))


def predictor_entropy(logits: Tensor, classes: tuple[int, ...]) -> Tensor:
    """Mean over the batch of the entropy of g's predicted distribution, summed over label heads."""
    heads = torch.split(logits, list(classes), dim=1)
    return sum(-(h.softmax(1) * h.log_softmax(1)).sum(1).mean() for h in heads)


ADVERSARIES = ("entropy", "ce")


def predictor_vae_loss(logits: Tensor, x: Tensor, mean: Tensor, logvar: Tensor, predicted: Tensor,
                       labels: Tensor, classes: tuple[int, ...], beta: float, lam: float,
                       adversary: str = "entropy") -> dict[str, Tensor]:
    """Eq. 3, the encoder / decoder side: -log p(x | z, y) + beta KL - lam A, where A is the entropy
    of g(z) (``adversary="entropy"``, what the paper's text says the encoder maximises) or the
    cross-entropy CE(g(z), y_gt) of Eq. 3 as printed (``"ce"``)."""
    recon = bernoulli_nll(logits, x).mean()
    kl = gaussian_kl(mean, logvar).mean()
    ce = predictor_cross_entropy(predicted, labels, classes)
    entropy = predictor_entropy(predicted, classes)
    adversarial = entropy if adversary == "entropy" else ce
    return {"recon": recon, "kl": kl, "predictor_ce": ce, "predictor_entropy": entropy,
            "loss": recon + beta * kl - lam * adversarial}


# ------------------------------------------------------------------------------------------ networks

def _conv_sizes(size: int) -> list[int]:
    sizes = [size]
    for _ in range(3):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def build_networks(architecture: str, num_channels: int, image_size: int, code_dim: int) -> tuple[nn.Module, nn.Module]:
    """(encoder to 2 * code_dim numbers, decoder from code_dim to logits [B, C, S, S])."""
    pixels = num_channels * image_size * image_size
    if architecture == "mlp":
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, MLP_UNITS), nn.Tanh(),
                                nn.Linear(MLP_UNITS, MLP_UNITS), nn.Tanh(), nn.Linear(MLP_UNITS, 2 * code_dim))
        decoder = nn.Sequential(nn.Linear(code_dim, MLP_UNITS), nn.Tanh(), nn.Linear(MLP_UNITS, MLP_UNITS), nn.Tanh(),
                                nn.Linear(MLP_UNITS, pixels), nn.Unflatten(1, (num_channels, image_size, image_size)))
        return encoder, decoder
    if architecture == "conv":
        sizes = _conv_sizes(image_size)
        ch, last = CONV_CHANNELS, sizes[-1]
        encoder = nn.Sequential(
            nn.Conv2d(num_channels, ch, 3, 2, 1), nn.ReLU(), nn.Conv2d(ch, ch, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(ch * last * last, CONV_UNITS), nn.ReLU(),
            nn.Linear(CONV_UNITS, 2 * code_dim))
        ups = [nn.ConvTranspose2d(ch, ch if i < 2 else num_channels, 3, 2, 1, output_padding=sizes[2 - i] - (2 * sizes[3 - i] - 1))
               for i in range(3)]
        decoder = nn.Sequential(
            nn.Linear(code_dim, CONV_UNITS), nn.ReLU(), nn.Linear(CONV_UNITS, ch * last * last), nn.ReLU(),
            nn.Unflatten(1, (ch, last, last)), ups[0], nn.ReLU(), ups[1], nn.ReLU(), ups[2])
        return encoder, decoder
    if image_size != 64:
        raise WeakdisError(f"architecture='appendix-a' needs 64x64 images, got {image_size}x{image_size}; "
                           "expected architecture mlp or conv")
    return Encoder(num_channels, 2 * code_dim), Decoder(num_channels, code_dim)


# ------------------------------------------------------------------------------------------ model

@dataclass
class FactoredConfig(VAEConfig):
    """``latent_dim`` is the size of z; ``factor_dim`` that of y."""

    factor_dim: int = 1               # unset: the dataset's (rotdigits 1: rotation; colordigits 3: RGB)
    architecture: str = "auto"        # "mlp", "conv", "appendix-a" (64x64) or "auto" (by image size and channels)

    @classmethod
    def defaults_from_dataset(cls, dataset: Any, values: dict[str, Any], extras: Any) -> dict[str, Any]:
        if "factor_dim" in extras or dataset is None:
            return {}
        return {"factor_dim": int(getattr(dataset.spec, "factor_dim", 1))}

    def validate(self, model_name: str = "model") -> None:
        super().validate(model_name)
        if self.factor_dim < 1:
            raise WeakdisError(f"{model_name} config: factor_dim={self.factor_dim!r} is invalid; expected an integer >= 1")
        if self.architecture not in ARCHITECTURES:
            raise WeakdisError(f"{model_name} config: architecture={self.architecture!r} is invalid; "
                               f"expected one of {', '.join(ARCHITECTURES)}")


class FactoredVAE(GaussianVAE):
    """Base of the three explicit models; subclasses define ``training_batch`` and ``train_step``.
    The code is (z, y): ``latent_dim + factor_dim`` dimensions on the chosen architecture."""

    config_cls: ClassVar[type[ModelConfig]] = FactoredConfig

    def _build_networks(self, spec: Any, num_channels: int) -> tuple[nn.Module, nn.Module]:
        self.image_size = int(getattr(spec, "image_size", 64))
        architecture = self.config.architecture
        if architecture == "auto":
            architecture = "appendix-a" if self.image_size == 64 else "mlp" if num_channels == 1 else "conv"
        self.architecture = architecture
        self.code_dim = self.config.latent_dim + self.config.factor_dim
        return build_networks(architecture, num_channels, self.image_size, self.code_dim)

    def representation(self, x: Tensor) -> dict[str, Tensor | None]:
        codes = self.encode(x)
        return {"factors": None, "codes": codes, "content": codes[:, :self.config.latent_dim]}

    def logits(self, code: Tensor) -> Tensor:
        with self.autocast():
            return self.decoder(code).float()

    def training_batch(self, dataset: Any, indices: Tensor, generator: torch.Generator | None) -> Any:
        return {"x": dataset.batch(indices)}

    def _paired(self, dataset: Any, indices: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        factor = getattr(self.config, "pair_factor", "") or None
        if not hasattr(dataset, "paired_batch"):
            raise WeakdisError(f"{self.name} needs paired images; dataset {dataset.spec.name} has none")
        x, x_pair = dataset.paired_batch(indices, factor, generator)
        return {"x": x, "x_pair": x_pair}

    def _images(self, batch: Any) -> Tensor:
        return batch["x"] if isinstance(batch, dict) else batch

    def _pair(self, batch: Any) -> tuple[Tensor, Tensor]:
        """(x, x') of a paired batch; a plain image batch (the common interface) pairs each image with itself."""
        if isinstance(batch, dict):
            return self.prepare_images(batch["x"]), self.prepare_images(batch["x_pair"])
        x = self.prepare_images(batch)
        return x, x
