"""Mapping query patches to the latent space: iterative (AnoGAN), encoder (f-AnoGAN), hybrid.

All three modes return the same :class:`Inversion`: the anomaly score
``A = (1-λ)·R + λ·D`` with ``R = Σ|x - G(z)|`` and ``D = Σ|f(x) - f(G(z))|`` (or squared
differences with ``norm="l2"``), its two parts, the latents, the per-pixel residual and the
signed per-pixel difference ``x - G(z)``.

Patches are inverted as a batch. With G and D in eval mode (BatchNorm uses running statistics)
and a loss summed over patches, each patch's gradient depends only on its own latent, and Adam
updates each latent element independently, so a batch of B patches is B independent problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from octanogan.scoring.config import InversionConfig


@dataclass
class Inversion:
    """Result for a batch of N patches."""

    score: torch.Tensor  # [N]
    residual: torch.Tensor  # [N] R
    feature: torch.Tensor  # [N] D
    residual_map: torch.Tensor  # [N, P, P] per-pixel |x - G(z)| (or squared)
    z: torch.Tensor  # [N, d]
    difference: torch.Tensor  # [N, P, P] signed x - G(z): negative where x is darker than expected


def _distance(a: torch.Tensor, b: torch.Tensor, norm: str) -> torch.Tensor:
    diff = a - b
    return diff.abs() if norm == "l1" else diff.square()


def _per_sample_sum(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(dim=1)


class LatentInverter:
    """Inverts patches through a frozen generator and discriminator (and optional encoder)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module,
                 encoder: nn.Module | None, latent_dim: int, config: InversionConfig) -> None:
        if config.needs_encoder and encoder is None:
            raise ValueError(f"mode '{config.mode}' needs a trained encoder; this run has none")
        self.generator = generator.eval().requires_grad_(False)
        self.discriminator = discriminator.eval().requires_grad_(False)
        self.encoder = encoder.eval().requires_grad_(False) if encoder is not None else None
        self.latent_dim = latent_dim
        self.config = config
        self._gen = torch.Generator().manual_seed(config.seed)

    def reseed(self, key: str) -> None:
        """Restart the z₀ stream from (seed, key): a volume's z₀ then do not depend on which
        volumes were scored before it (resumed and sharded runs reproduce a straight run)."""
        import hashlib

        digest = hashlib.sha256(f"{self.config.seed}:{key}".encode()).digest()
        self._gen.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))

    def initial_latents(self, x: torch.Tensor) -> torch.Tensor:
        """z₀: the encoder's guess, or N(0, I) drawn from the inverter's seeded stream."""
        if self.config.mode != "iterative":
            with torch.no_grad():
                return self.encoder(x).reshape(len(x), -1)  # type: ignore[misc]
        z = torch.randn(len(x), self.latent_dim, generator=self._gen)
        return z.to(x.device)

    def losses(self, x: torch.Tensor, f_x: torch.Tensor, z: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-patch (A, R, D) and G(z), with f(x) precomputed."""
        fake = self.generator(z)
        f_fake = self.discriminator.features(fake)
        residual = _per_sample_sum(_distance(x, fake, self.config.norm))
        feature = _per_sample_sum(_distance(f_x, f_fake, self.config.norm))
        score = (1 - self.config.lam) * residual + self.config.lam * feature
        return score, residual, feature, fake

    def invert(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> Inversion:
        """Invert a batch ``x[N, 1, P, P]``; ``z0`` overrides the mode's starting latents."""
        with torch.no_grad():
            f_x = self.discriminator.features(x)  # fixed: computed once per batch
        z = (self.initial_latents(x) if z0 is None else z0.clone()).detach().requires_grad_(True)
        steps = self.config.n_steps
        if steps:
            optimizer = torch.optim.Adam([z], lr=self.config.lr, betas=(0.9, 0.999))
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                score, *_ = self.losses(x, f_x, z)
                score.sum().backward()
                optimizer.step()
        with torch.no_grad():
            score, residual, feature, fake = self.losses(x, f_x, z)
            difference = (x - fake)[:, 0]
            residual_map = _distance(x, fake, self.config.norm)[:, 0]
        return Inversion(score, residual, feature, residual_map, z.detach(), difference)
