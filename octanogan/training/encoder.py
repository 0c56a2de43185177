"""One encoder iteration of f-AnoGAN's izi_f training, with G and D frozen.

loss = ||x - G(E(x))||^2 / n_pixels + kappa * ||f(x) - f(G(E(x)))||^2 / n_features
(averaged over the batch), f being the discriminator's feature layer.
"""

from __future__ import annotations

import torch

from octanogan.models import Discriminator, Encoder, Generator
from octanogan.training.gan import set_trainable


def freeze(*modules: torch.nn.Module) -> None:
    """Eval mode (BatchNorm uses running statistics) and no parameter gradients."""
    for module in modules:
        module.eval()
        set_trainable(module, False)


class EncoderStep:
    """Callable doing one encoder update on a real batch; returns its losses."""

    def __init__(self, encoder: Encoder, generator: Generator, discriminator: Discriminator,
                 optimiser: torch.optim.Optimizer, kappa: float = 1.0) -> None:
        self.e, self.g, self.d = encoder, generator, discriminator
        self.optimiser = optimiser
        self.kappa = kappa

    def __call__(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            real_features = self.d.features(real)
        recon = self.g(self.e(real))
        image = (real - recon).pow(2).mean()
        feature = (real_features - self.d.features(recon)).pow(2).mean()
        loss = image + self.kappa * feature
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return {"e_loss": loss.detach(), "e_image": image.detach(), "e_feature": feature.detach()}
