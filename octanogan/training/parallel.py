"""Training under torchrun: DistributedDataParallel, and the BatchNorm each backend allows.

On CUDA (nccl) the BatchNorm layers of G, D and E become ``SyncBatchNorm``: N ranks with B/N
patches each normalise over the whole batch of B, as one process does. PyTorch's SyncBatchNorm
refuses CPU tensors, so on CPU (gloo) each rank normalises its own B/N patches ("per-rank"): the one
way in which N CPU ranks differ from one process (docs/scaling.md). Nothing here synchronises
BatchNorm by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from octanogan.distributed import Ranks

if TYPE_CHECKING:
    from octanogan.training.checkpoint import TrainingState

#: run.json's names of the BatchNorm modes.
ONE_PROCESS, SYNCHRONISED, PER_RANK = "one process", "synchronised", "per-rank"


def synchronise_batch_norm(state: TrainingState, ranks: Ranks, device: torch.device) -> str:
    """Turn the networks' BatchNorm into SyncBatchNorm where the backend allows (CUDA); the
    BatchNorm mode in use. The parameters stay the same objects, so the optimisers keep them."""
    if not ranks.active:
        return ONE_PROCESS
    if device.type != "cuda":
        return PER_RANK
    for name in ("generator", "discriminator", "encoder"):
        setattr(state, name, nn.SyncBatchNorm.convert_sync_batchnorm(getattr(state, name)))
    return SYNCHRONISED


def data_parallel(module: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel under torchrun (``module`` itself otherwise).

    DDP starts every rank from rank 0's weights, averages gradients in the backward pass and, at
    each forward, gives every rank rank 0's BatchNorm running statistics.
    """
    if not ranks.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
