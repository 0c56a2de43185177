"""TrainConfig: every training setting, with defaults; read from YAML and CLI overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from octanogan.config import from_dict, load_yaml
from octanogan.device import DEVICE_CHOICES
from octanogan.errors import OctanoganError

OBJECTIVES = ("dcgan", "wgan-gp")

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


def _check(config: TrainConfig) -> None:
    positive = ("iterations", "batch_size", "latent_dim", "base_channels", "checkpoint_every")
    non_negative = ("encoder_iterations", "seed", "workers")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        expected = {"int": int, "float": (int, float), "bool": bool, "str": str,
                    "int | None": (int, type(None))}[str(field.type)]
        if not isinstance(value, expected) or (isinstance(value, bool) and field.type != "bool"):
            raise OctanoganError(f"setting '{field.name}' must be {field.type}, got {value!r}")
    for name in positive:
        if getattr(config, name) < 1:
            raise OctanoganError(f"setting '{name}' must be >= 1, got {getattr(config, name)}")
    for name in non_negative:
        if getattr(config, name) < 0:
            raise OctanoganError(f"setting '{name}' must be >= 0, got {getattr(config, name)}")
    if config.critic_steps is not None and config.critic_steps < 1:
        raise OctanoganError(f"setting 'critic_steps' must be >= 1, got {config.critic_steps}")
    if not config.lr > 0 or not 0 <= config.beta1 < 1 or not 0 <= config.beta2 < 1:
        raise OctanoganError("settings need lr > 0 and 0 <= beta1, beta2 < 1")
    if config.objective not in OBJECTIVES:
        raise OctanoganError(f"setting 'objective' must be one of {OBJECTIVES}, got '{config.objective}'")
    if config.device not in DEVICE_CHOICES:
        raise OctanoganError(f"setting 'device' must be one of {DEVICE_CHOICES}, got '{config.device}'")


def load_train_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """TrainConfig from a YAML file (flat, or a pipeline file with a ``train:`` section) and overrides.

    ``None`` values in ``overrides`` are ignored, so unset CLI options keep the file's values.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = load_yaml(path)
        if isinstance(values.get("train"), dict):
            values = values["train"]
        elif "train" in values:
            raise OctanoganError(f"{path}: the 'train' section must be a mapping")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(TrainConfig, _floats_from_text(values), source=str(path or "config"))


def _floats_from_text(values: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``2e-4`` (no dot) as text: accept it for float settings."""
    floats = {f.name for f in dataclasses.fields(TrainConfig) if f.type == "float"}
    converted = dict(values)
    for name in floats & set(values):
        if isinstance(values[name], str):
            try:
                converted[name] = float(values[name])
            except ValueError:
                pass  # reported by TrainConfig's check, naming the setting
    return converted
