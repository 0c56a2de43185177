"""f-AnoGAN encoder E: patch -> latent vector (izi_f training maps x to z with G(E(x)) ~ x)."""

from __future__ import annotations

import torch
from torch import nn

from octanogan.models.layers import BOTTOM_SIZE, channel_widths, downsampling_trunk, init_dcgan_weights


class Encoder(nn.Module):
    """``x [B, 1, P, P] -> z [B, latent_dim]``: the discriminator's conv trunk and a linear layer.

    The output is unbounded, matching the generator's z ~ N(0, I) prior.
    """

    def __init__(self, patch_size: int = 64, latent_dim: int = 100, base_channels: int = 64,
                 norm: str = "batch") -> None:
        super().__init__()
        self.patch_size = patch_size
        self.latent_dim = latent_dim
        top = channel_widths(patch_size, base_channels)[0]
        self.trunk = downsampling_trunk(patch_size, base_channels, norm)
        self.head = nn.Linear(top * BOTTOM_SIZE * BOTTOM_SIZE, latent_dim)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).flatten(1))
