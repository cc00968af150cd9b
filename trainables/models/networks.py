"""The networks of the papers' Appendix A, shared by every model.

Encoder for 64x64 images: 4 x [Conv2d(k4, s2, p1), BatchNorm, LeakyReLU(0.1)] -> 4x4 feature maps,
Flatten, Linear(1024), LeakyReLU(0.1), Linear(out). Decoder: Linear(1024), LeakyReLU, Linear(ch*4*4),
reshape (ch, 4, 4), 3 x [ConvTranspose2d(k4, s2, p1), BatchNorm, LeakyReLU], ConvTranspose2d(k4, s2,
p1) to the image channels (logits). ``ch`` is 32 for 1-channel images (dSprites) and 64 for 3-channel
ones (Shapes3D). The reference code reshaped to 6x6, which does not give 64x64 outputs; we use 4x4.
Discriminators and the relational learner are MLPs with 3 hidden tanh layers of 1024 units.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

IMAGE_SIZE = 64
FEATURE_SIZE = 4          # 64 / 2**4
HIDDEN_UNITS = 1024
LEAKY_SLOPE = 0.1


def conv_channels(num_channels: int) -> int:
    """Feature channels of the conv nets: 32 for 1-channel images, 64 otherwise (Appendix A)."""
    return 32 if num_channels == 1 else 64


class Encoder(nn.Module):
    """``[B, C, 64, 64] -> [B, out_dim]``."""

    def __init__(self, num_channels: int, out_dim: int) -> None:
        super().__init__()
        ch = conv_channels(num_channels)
        layers: list[nn.Module] = []
        in_ch = num_channels
        for _ in range(4):
            layers += [nn.Conv2d(in_ch, ch, 4, 2, 1), nn.BatchNorm2d(ch), nn.LeakyReLU(LEAKY_SLOPE)]
            in_ch = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(ch * FEATURE_SIZE * FEATURE_SIZE, HIDDEN_UNITS),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(HIDDEN_UNITS, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.head[:-1](self.features(x))
        # The code layer runs in fp32 under bf16 autocast: rounded codes would blur tight prior components.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.head[-1](hidden.float())


class Decoder(nn.Module):
    """``[B, in_dim] -> logits [B, C, 64, 64]``."""

    def __init__(self, num_channels: int, in_dim: int) -> None:
        super().__init__()
        ch = conv_channels(num_channels)
        self.channels = ch
        self.head = nn.Sequential(
            nn.Linear(in_dim, HIDDEN_UNITS),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(HIDDEN_UNITS, ch * FEATURE_SIZE * FEATURE_SIZE),
        )
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.BatchNorm2d(ch), nn.LeakyReLU(LEAKY_SLOPE)]
        layers.append(nn.ConvTranspose2d(ch, num_channels, 4, 2, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = self.head(z).reshape(-1, self.channels, FEATURE_SIZE, FEATURE_SIZE)
        return self.features(h.contiguous(memory_format=torch.channels_last) if h.is_cuda else h)


class MLP(nn.Module):
    """3 hidden tanh layers of 1024 units, linear output."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = HIDDEN_UNITS, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GroupedMLP(nn.Module):
    """``groups`` independent :class:`MLP` s evaluated together with batched matrix products.

    Input ``[G, B, in_dim]``, output ``[G, B, out_dim]``; group g only sees its own weights. Used for
    M-AE's one-discriminator-per-partition, so that G discriminators cost one kernel per layer.
    """

    def __init__(self, groups: int, in_dim: int, out_dim: int, hidden: int = HIDDEN_UNITS, depth: int = 3) -> None:
        super().__init__()
        widths = [in_dim] + [hidden] * depth + [out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1.0 / math.sqrt(fan_in)   # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(groups, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(groups, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.tanh(x)
        return x


class HWFEncoder(nn.Module):
    """Appendix A's HWF encoder, ``[B, 1, 45, 45] -> [B, out_dim]``: Conv(k5, s2) 45 -> 21,
    Conv(k5, s2) 21 -> 9, Conv(k3, s2) 9 -> 4 (each with BatchNorm, LeakyReLU(0.1), no padding), then
    the same head as :class:`Encoder`."""

    def __init__(self, num_channels: int, out_dim: int) -> None:
        super().__init__()
        ch = conv_channels(num_channels)
        layers: list[nn.Module] = []
        for in_ch, kernel in ((num_channels, 5), (ch, 5), (ch, 3)):
            layers += [nn.Conv2d(in_ch, ch, kernel, 2, 0), nn.BatchNorm2d(ch), nn.LeakyReLU(LEAKY_SLOPE)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch * FEATURE_SIZE * FEATURE_SIZE, HIDDEN_UNITS),
                                  nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(HIDDEN_UNITS, out_dim))

    forward = Encoder.forward


class HWFDecoder(nn.Module):
    """Appendix A's HWF decoder, ``[B, in_dim] -> logits [B, 1, 45, 45]``: the head of
    :class:`Decoder`, then ConvTranspose(k3, s2) 4 -> 9, ConvTranspose(k5, s2) 9 -> 21 (each with
    BatchNorm, LeakyReLU), ConvTranspose(k5, s2) 21 -> 45 to the image channels."""

    def __init__(self, num_channels: int, in_dim: int) -> None:
        super().__init__()
        ch = conv_channels(num_channels)
        self.channels = ch
        self.head = nn.Sequential(nn.Linear(in_dim, HIDDEN_UNITS), nn.LeakyReLU(LEAKY_SLOPE),
                                  nn.Linear(HIDDEN_UNITS, ch * FEATURE_SIZE * FEATURE_SIZE))
        self.features = nn.Sequential(
            nn.ConvTranspose2d(ch, ch, 3, 2, 0), nn.BatchNorm2d(ch), nn.LeakyReLU(LEAKY_SLOPE),
            nn.ConvTranspose2d(ch, ch, 5, 2, 0), nn.BatchNorm2d(ch), nn.LeakyReLU(LEAKY_SLOPE),
            nn.ConvTranspose2d(ch, num_channels, 5, 2, 0),
        )

    forward = Decoder.forward


def image_size_of(spec) -> int:
    """The image side of a dataset version (64 unless its layout says otherwise)."""
    return int(getattr(getattr(spec, "layout", None), "image_size", IMAGE_SIZE))


def make_encoder(num_channels: int, out_dim: int, image_size: int = IMAGE_SIZE) -> nn.Module:
    """The Appendix-A encoder for ``image_size`` (64: dSprites / Shapes3D, 45: HWF)."""
    return HWFEncoder(num_channels, out_dim) if image_size == 45 else Encoder(num_channels, out_dim)


def make_decoder(num_channels: int, in_dim: int, image_size: int = IMAGE_SIZE) -> nn.Module:
    """The Appendix-A decoder for ``image_size`` (64: dSprites / Shapes3D, 45: HWF)."""
    return HWFDecoder(num_channels, in_dim) if image_size == 45 else Decoder(num_channels, in_dim)
