"""DCGAN generator: latent vector z -> patch in [-1, 1]."""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

from octanogan.models.layers import BOTTOM_SIZE, channel_widths, init_dcgan_weights


class Generator(nn.Module):
    """``z [B, latent_dim] -> x [B, 1, P, P]`` with tanh output.

    A 4x4 projection of z, then one fractionally strided 4x4 conv per doubling (BatchNorm, ReLU),
    the last one to a single channel. For 64x64 and ``base_channels=64`` the widths are the
    DCGAN's 512-256-128-64.
    """

    def __init__(self, patch_size: int = 64, latent_dim: int = 100, base_channels: int = 64) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.latent_dim = latent_dim
        widths = channel_widths(patch_size, base_channels)
        layers = [Convolution(2, latent_dim, widths[0], strides=1, kernel_size=BOTTOM_SIZE,
                              padding=0, output_padding=0, is_transposed=True,
                              act="relu", norm="batch", bias=False)]
        layers += [Convolution(2, c_in, c_out, strides=2, kernel_size=4, padding=1,
                               output_padding=0, is_transposed=True,
                               act="relu", norm="batch", bias=False)
                   for c_in, c_out in zip(widths, widths[1:])]
        layers += [Convolution(2, widths[-1], 1, strides=2, kernel_size=4, padding=1,
                               output_padding=0, is_transposed=True, conv_only=True),
                   nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(len(z), self.latent_dim, 1, 1))
