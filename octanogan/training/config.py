"""TrainConfig: every training setting, with defaults; read from YAML and CLI overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, get_args

from octanogan import checks
from octanogan.config import from_dict, load_sections, load_yaml
from octanogan.device import DEVICE_CHOICES
from octanogan.errors import ConfigError

Objective = Literal["dcgan", "wgan-gp"]
OBJECTIVES = get_args(Objective)

#: Settings that may change on ``--resume`` without changing what is being trained.
RESUMABLE_CHANGES = ("iterations", "encoder_iterations", "checkpoint_every", "device", "workers")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of ``octanogan train``. One iteration is one generator (or encoder) update."""

    iterations: int = 2000
    encoder_iterations: int = 1000
    batch_size: int = 64
    latent_dim: int = 100
    base_channels: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    objective: str = "dcgan"
    critic_steps: int | None = None  # discriminator updates per iteration; None: dcgan 1, wgan-gp 5
    gp_weight: float = 10.0
    kappa: float = 1.0
    flip: bool = False
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        _check(self)

    def resolved(self) -> TrainConfig:
        """Copy with automatic values filled in (what ``config.yaml`` records)."""
        if self.critic_steps is not None:
            return self
        return dataclasses.replace(self, critic_steps=5 if self.objective == "wgan-gp" else 1)

    @property
    def discriminator_norm(self) -> str:
        """BatchNorm for DCGAN; layer norm for WGAN-GP (its gradient penalty is per sample)."""
        return "layer" if self.objective == "wgan-gp" else "batch"


#: Upper bounds, checked before anything is allocated: far above any sensible run, well below
#: what would exhaust memory at construction (a latent of 10^8 is 400 MB per patch).
MAXIMA = {"iterations": 10_000_000, "encoder_iterations": 10_000_000, "batch_size": 8192,
          "latent_dim": 4096, "base_channels": 1024, "checkpoint_every": 10_000_000,
          "seed": checks.MAX_SEED, "workers": 256, "critic_steps": 100}


def _check(config: TrainConfig) -> None:
    for name in ("iterations", "batch_size", "latent_dim", "base_channels", "checkpoint_every"):
        checks.integer(name, getattr(config, name), 1, MAXIMA[name])
    for name in ("encoder_iterations", "seed", "workers"):
        checks.integer(name, getattr(config, name), 0, MAXIMA[name])
    if config.critic_steps is not None:
        checks.integer("critic_steps", config.critic_steps, 1, MAXIMA["critic_steps"])
    checks.number("lr", config.lr, 0.0, low_open=True)
    checks.number("beta1", config.beta1, 0.0, 1.0, high_open=True)
    checks.number("beta2", config.beta2, 0.0, 1.0, high_open=True)
    checks.number("gp_weight", config.gp_weight, 0.0)
    checks.number("kappa", config.kappa, 0.0)
    if not isinstance(config.flip, bool):
        raise ConfigError("flip", f"must be true or false, got {config.flip!r}")
    checks.choice("objective", config.objective, OBJECTIVES)
    checks.choice("device", config.device, DEVICE_CHOICES)


def load_train_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """TrainConfig from a YAML file (flat, or a pipeline file with a ``train:`` section) and overrides.

    ``None`` values in ``overrides`` are ignored, so unset CLI options keep the file's values.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = load_yaml(path)
        if "train" in values:  # a pipeline file: its other keys must be sections too
            values = load_sections(path)["train"]
            if not isinstance(values, dict):
                raise ConfigError("train", "must be a mapping", path)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(TrainConfig, values, source=str(path or "config"))

