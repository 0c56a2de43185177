"""Checkpoints (everything needed to resume bit-for-bit) and plain state-dict files.

All files are written atomically and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from octanogan.errors import InputError
from octanogan.fsutil import atomic_path
from octanogan.models import Discriminator, Encoder, Generator, NetworkSpec
from octanogan.training.config import TrainConfig
from octanogan.training.gan import Noise


def save_tensors(path: Path, data: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_tensors(path: Path, what: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU, with an InputError for missing/corrupt files."""
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise InputError(path, f"refused: this {what} holds Python objects that safe (weights_only) "
                                   "loading does not run; octanogan writes plain tensors only") from None
        raise InputError(path, f"corrupt or unreadable {what} (not a PyTorch tensor file)") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(path, f"corrupt or unreadable {what} ({type(exc).__name__}: {first_line})") from None
    if not isinstance(data, dict):
        raise InputError(path, f"not an octanogan {what}")
    return data


def save_weights(path: Path, module: nn.Module) -> None:
    """A module's state dict as plain CPU tensors."""
    save_tensors(path, {k: v.detach().cpu() for k, v in module.state_dict().items()})


def load_weights(path: Path, module: nn.Module, what: str) -> None:
    """Load a state dict written by :func:`save_weights` into ``module``."""
    try:
        module.load_state_dict(load_tensors(path, what))
    except RuntimeError as exc:
        raise InputError(path, f"{what} does not match the run's networks ({exc})") from exc


def rng_states() -> dict[str, Any]:
    """Global torch / numpy / python RNG states as weights_only-loadable values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclasses.dataclass
class TrainingState:
    """Networks, optimisers, noise stream and progress of one run: what a checkpoint holds."""

    generator: Generator
    discriminator: Discriminator
    encoder: Encoder
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    opt_e: torch.optim.Optimizer
    noise: Noise
    gan_iteration: int = 0
    encoder_iteration: int = 0

    @classmethod
    def create(cls, spec: NetworkSpec, config: TrainConfig, device: torch.device,
               part: tuple[int, int] = (0, 1)) -> TrainingState:
        """Fresh networks initialised from ``config.seed`` (same seed, same weights); ``part`` is
        this rank's share of each batch's noise (``(rank, N)`` under torchrun)."""
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        g, d, e = (net.to(device) for net in (spec.generator(), spec.discriminator(), spec.encoder()))

        def adam(net: nn.Module) -> torch.optim.Optimizer:
            return torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))

        return cls(g, d, e, adam(g), adam(d), adam(e), Noise(spec.latent_dim, config.seed, device, part))

    def state_dict(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "gan_iteration": self.gan_iteration,
            "encoder_iteration": self.encoder_iteration,
            "models": {name: getattr(self, name).state_dict() for name in NETWORKS},
            "optimisers": {name: getattr(self, name).state_dict() for name in OPTIMISERS},
            "noise": self.noise.generator.get_state(),
            "rng": rng_states(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any], path: Path) -> None:
        """Restore from :meth:`state_dict`; an InputError names ``path`` if it does not fit."""
        try:
            for name in NETWORKS:
                getattr(self, name).load_state_dict(checkpoint["models"][name])
            for name in OPTIMISERS:
                getattr(self, name).load_state_dict(checkpoint["optimisers"][name])
            self.noise.generator.set_state(checkpoint["noise"])
            restore_rng_states(checkpoint["rng"])
            self.gan_iteration = int(checkpoint["gan_iteration"])
            self.encoder_iteration = int(checkpoint["encoder_iteration"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            problem = f"checkpoint does not match this run ({type(exc).__name__}: {exc})"
            raise InputError(path, problem) from exc


NETWORKS = ("generator", "discriminator", "encoder")
OPTIMISERS = ("opt_g", "opt_d", "opt_e")
