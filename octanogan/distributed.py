"""Running under ``torchrun``: which process this is, and its process group.

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
without it a command is a world of one and nothing here does anything. The backend is ``nccl`` on
CUDA and ``gloo`` on CPU (docs/scaling.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from octanogan.errors import OctanoganError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes ``torchrun`` started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process: work is split and results are gathered."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes what all ranks share (tables, checkpoints, reports)."""
        return self.rank == 0


def ranks_from_env() -> Ranks:
    """The ranks ``torchrun`` set in the environment (a world of one without it)."""
    try:
        ranks = Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                      int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise OctanoganError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (set by torchrun)") from None
    if not 0 <= ranks.rank < ranks.world_size:
        raise OctanoganError(f"RANK {ranks.rank} is outside WORLD_SIZE {ranks.world_size}")
    return ranks


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of this rank: its own GPU (``LOCAL_RANK``) on CUDA, else ``device``."""
    import torch

    if device.type == "cuda" and ranks.active:
        return torch.device("cuda", ranks.local_rank)
    return device


@contextmanager
def process_group(device: torch.device) -> Iterator[Ranks]:
    """Join the process group for the duration of a command (nothing to join in a world of one)."""
    import torch
    import torch.distributed as dist

    ranks = ranks_from_env()
    if not ranks.active or dist.is_initialized():
        yield ranks
        return
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (a no-op in a world of one)."""
    if ranks.active:
        import torch.distributed as dist

        dist.barrier()
