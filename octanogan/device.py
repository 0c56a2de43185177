"""Choosing the torch device from ``--device auto|cpu|cuda``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from octanogan.errors import OctanoganError

if TYPE_CHECKING:
    import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICE_CHOICES = get_args(DeviceName)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a clear error."""
    import torch

    if name not in DEVICE_CHOICES:
        raise OctanoganError(f"--device must be one of {DEVICE_CHOICES}, got '{name}'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise OctanoganError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)
