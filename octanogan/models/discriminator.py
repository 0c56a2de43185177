"""DCGAN discriminator with its feature layer f(x) exposed (AnoGAN's discrimination loss)."""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

from octanogan.models.layers import BOTTOM_SIZE, channel_widths, downsampling_trunk, init_dcgan_weights


class Discriminator(nn.Module):
    """``x [B, 1, P, P] -> logits [B]``; ``features(x)`` is f(x), ``[B, C, 4, 4]``.

    One strided 4x4 conv block per halving (LeakyReLU 0.2; ``norm`` on all but the first), then a
    4x4 conv to one logit. f(x) is the output of the last conv block, before that final layer.
    Use ``norm="layer"`` for WGAN-GP, whose gradient penalty is per sample.
    """

    def __init__(self, patch_size: int = 64, base_channels: int = 64, norm: str = "batch") -> None:
        super().__init__()
        self.patch_size = patch_size
        self.feature_channels = channel_widths(patch_size, base_channels)[0]
        self.trunk = downsampling_trunk(patch_size, base_channels, norm)
        self.head = Convolution(2, self.feature_channels, 1, strides=1, kernel_size=BOTTOM_SIZE,
                                padding=0, conv_only=True)
        init_dcgan_weights(self)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """Shape of f(x) for one patch: ``(C, 4, 4)``."""
        return (self.feature_channels, BOTTOM_SIZE, BOTTOM_SIZE)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): the last conv block's output, ``[B, C, 4, 4]``."""
        return self.trunk(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [B], f(x) [B, C, 4, 4])`` from one pass."""
        features = self.trunk(x)
        return self.head(features).reshape(len(x)), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
