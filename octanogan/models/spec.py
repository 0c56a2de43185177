"""NetworkSpec: everything needed to rebuild a run's networks before loading their weights."""

from __future__ import annotations

import dataclasses
from typing import Any

from octanogan.models.discriminator import Discriminator
from octanogan.models.encoder import Encoder
from octanogan.models.generator import Generator
from octanogan.models.layers import NORMS, channel_widths


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Architecture of G, D and E; saved in ``run.json`` under ``networks``."""

    patch_size: int = 64
    latent_dim: int = 100
    base_channels: int = 64
    discriminator_norm: str = "batch"

    def __post_init__(self) -> None:
        channel_widths(self.patch_size, self.base_channels)  # raises ValueError when invalid
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.discriminator_norm not in NORMS:
            raise ValueError(f"discriminator_norm must be one of {NORMS}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetworkSpec:
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})

    def generator(self) -> Generator:
        return Generator(self.patch_size, self.latent_dim, self.base_channels)

    def discriminator(self) -> Discriminator:
        return Discriminator(self.patch_size, self.base_channels, self.discriminator_norm)

    def encoder(self) -> Encoder:
        return Encoder(self.patch_size, self.latent_dim, self.base_channels)
