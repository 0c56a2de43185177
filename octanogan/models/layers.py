"""Shared pieces of the DCGAN-style networks: channel widths, MONAI conv blocks, weight init."""

from __future__ import annotations

import math

from monai.networks.blocks import Convolution
from torch import nn

from octanogan.patches.config import MIN_PATCH_SIZE

#: Spatial size of the smallest feature map (the discriminator's feature layer is C x 4 x 4).
BOTTOM_SIZE = 4

#: Accepted names for the normalisation of the discriminator and encoder.
NORMS = ("batch", "layer", "none")

LEAKY_RELU = ("leakyrelu", {"negative_slope": 0.2})


def channel_widths(patch_size: int, base_channels: int = 64) -> list[int]:
    """Widths of the conv blocks from the 4x4 bottom upwards: 64x64, base 64 -> [512, 256, 128, 64].

    One block per doubling from 4 to ``patch_size``, a power of two >= ``MIN_PATCH_SIZE`` (32).
    """
    if patch_size < MIN_PATCH_SIZE or patch_size & (patch_size - 1):
        raise ValueError(f"patch size must be a power of two >= {MIN_PATCH_SIZE}, got {patch_size}")
    if base_channels < 1:
        raise ValueError(f"base_channels must be >= 1, got {base_channels}")
    n_blocks = int(math.log2(patch_size // BOTTOM_SIZE))
    return [base_channels * 2 ** (n_blocks - 1 - k) for k in range(n_blocks)]


def norm_layer(name: str) -> tuple | str | None:
    """MONAI norm argument for ``batch``, ``layer`` (GroupNorm with one group) or ``none``."""
    if name not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got '{name}'")
    return {"batch": "batch", "layer": ("group", {"num_groups": 1}), "none": None}[name]


def down_block(in_channels: int, out_channels: int, norm: str) -> Convolution:
    """Strided 4x4 conv halving the size, then norm and LeakyReLU(0.2)."""
    return Convolution(2, in_channels, out_channels, strides=2, kernel_size=4, padding=1,
                       act=LEAKY_RELU, norm=norm_layer(norm), bias=norm == "none")


def downsampling_trunk(patch_size: int, base_channels: int, norm: str) -> nn.Sequential:
    """``[B, 1, P, P] -> [B, C, 4, 4]``: the DCGAN discriminator body (no norm on the first block)."""
    widths = channel_widths(patch_size, base_channels)[::-1]
    blocks = [down_block(1, widths[0], "none")]
    blocks += [down_block(c_in, c_out, norm) for c_in, c_out in zip(widths, widths[1:])]
    return nn.Sequential(*blocks)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02); norm scales N(1, 0.02), shifts 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
