"""One GAN iteration: ``critic_steps`` discriminator updates, then one generator update.

``dcgan``: non-saturating BCE (D maximises log D(x) + log(1 - D(G(z))), G maximises log D(G(z))).
``wgan-gp``: Wasserstein critic with gradient penalty (Gulrajani et al. 2017), as in f-AnoGAN.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from octanogan.models import Discriminator, Generator
from octanogan.training.data import slice_of


def plain(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return getattr(module, "module", module)


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Switch parameter gradients on or off (frozen networks still pass gradients through)."""
    for parameter in module.parameters():
        parameter.requires_grad_(trainable)


def gradient_penalty(critic: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                     mix: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at ``x_hat = mix*real + (1-mix)*fake``."""
    x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class Noise:
    """Latents z ~ N(0, I) and penalty mixing weights from one seeded CPU stream (checkpointable).

    Under torchrun every rank draws the whole batch's values and keeps its ``part`` (``(rank, N)``):
    the ranks together use what one process uses, and their streams stay in step.
    """

    def __init__(self, latent_dim: int, seed: int, device: torch.device,
                 part: tuple[int, int] = (0, 1)) -> None:
        self.latent_dim = latent_dim
        self.device = device
        self.part = part
        self.generator = torch.Generator().manual_seed(seed)

    def latents(self, n: int) -> torch.Tensor:
        """This rank's ``n`` of the batch's ``n * N`` latents."""
        whole = torch.randn(n * self.part[1], self.latent_dim, generator=self.generator)
        return whole[slice_of(len(whole), self.part)].to(self.device)

    def mixing_weights(self, n: int) -> torch.Tensor:
        whole = torch.rand(n * self.part[1], 1, 1, 1, generator=self.generator)
        return whole[slice_of(len(whole), self.part)].to(self.device)


class GanStep:
    """Callable doing one iteration on the next ``critic_steps`` real batches; returns its losses.

    The fake batch of the last discriminator update is reused for the generator update, as in
    the PyTorch DCGAN example, so G runs forward once per discriminator update. Under torchrun
    ``generator`` and ``discriminator`` are DistributedDataParallel wrappers; the generator update
    runs the plain discriminator, whose weights it does not train.
    """

    def __init__(self, generator: Generator | nn.Module, discriminator: Discriminator | nn.Module,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 noise: Noise, objective: str = "dcgan",
                 critic_steps: int = 1, gp_weight: float = 10.0) -> None:
        self.g, self.d = generator, discriminator
        self.opt_g, self.opt_d = opt_g, opt_d
        self.noise = noise
        self.wgan = objective == "wgan-gp"
        self.critic_steps = critic_steps
        self.gp_weight = gp_weight

    def __call__(self, real_batches: Iterator[torch.Tensor]) -> dict[str, torch.Tensor]:
        for k in range(self.critic_steps):
            real = next(real_batches)
            with torch.set_grad_enabled(k == self.critic_steps - 1):
                fake = self.g(self.noise.latents(len(real)))
            stats = self._discriminator_update(real, fake.detach())
        stats["g_loss"] = self._generator_update(fake)
        return stats

    def _discriminator_update(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        real_logits, fake_logits = self.d(real), self.d(fake)
        if self.wgan:
            mix = self.noise.mixing_weights(len(real))
            penalty = gradient_penalty(self.d, real, fake, mix)
            loss = fake_logits.mean() - real_logits.mean() + self.gp_weight * penalty
            d_real, d_fake = real_logits.mean(), fake_logits.mean()
        else:
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
            d_real, d_fake = torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        stats = {"d_loss": loss.detach(), "d_real": d_real.detach(), "d_fake": d_fake.detach()}
        if self.wgan:
            stats["gradient_penalty"] = penalty.detach()
        return stats

    def _generator_update(self, fake: torch.Tensor) -> torch.Tensor:
        critic = plain(self.d)  # no gradients for D's weights: saves a third of the backward
        set_trainable(critic, False)
        logits = critic(fake)
        loss = -logits.mean() if self.wgan else F.softplus(-logits).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        set_trainable(critic, True)
        return loss.detach()
