"""Running under ``torchrun``: which process this is, and its process group.

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
without it a command is a world of one and nothing here does anything. The backend is ``nccl`` on
CUDA and ``gloo`` on CPU (docs/scaling.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from octanogan.errors import EchoedError, OctanoganError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

#: Whether this process joined a process group (see :func:`joined_process_group`).
_JOINED = False


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
    _die_with_launcher()
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend_name(device))
    global _JOINED
    _JOINED = True
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def joined_process_group() -> bool:
    """Whether this process joined a process group, and so should end without Python's teardown.

    DistributedDataParallel keeps the process group, and with it gloo's worker threads, alive
    after ``destroy_process_group`` (torch 2.13). When such a thread drops the last reference to a
    collective's tensor while the interpreter finalises, the rank aborts ("terminate called without
    an active exception") after its work is done: once in CI, and 11 of 40 two-rank runs of a
    minimal DDP script on a loaded machine. Ending with ``os._exit`` once the command has written
    and closed everything (the CLI's ``end_rank``) loses nothing: 0 of 40 in the same trial.
    """
    return _JOINED


def _die_with_launcher() -> None:
    """Have Linux kill this rank when its launcher dies.

    torchrun starts each rank in a session of its own, so a launcher killed with ``kill -9`` would
    leave its ranks running on, writing the output folder that a rerun wants. Elsewhere than on
    Linux nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    ctypes.CDLL(None, use_errno=True).prctl(set_parent_death_signal, int(signal.SIGKILL), 0, 0, 0)


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (a no-op in a world of one)."""
    if ranks.active:
        import torch.distributed as dist

        dist.barrier()


def backend_name(device: torch.device) -> str:
    """The process group's backend on ``device``: nccl on CUDA, gloo elsewhere."""
    return "nccl" if device.type == "cuda" else "gloo"


def on_main(ranks: Ranks, work: Callable[[], T]) -> T:
    """Run ``work`` on rank 0 alone and give every rank its outcome.

    Every rank gets ``work``'s (picklable) result; when it raises an :class:`OctanoganError`,
    every rank raises it (the others as :class:`EchoedError`, which the CLI does not print again),
    so no rank is left waiting for one that stopped.
    """
    if not ranks.active:
        return work()
    import torch.distributed as dist

    outcome: list = [None, None]  # [error message, result]
    error = None
    if ranks.is_main:
        try:
            outcome[1] = work()
        except OctanoganError as exc:
            error, outcome[0] = exc, str(exc)
    dist.broadcast_object_list(outcome, src=0)
    if error is not None:
        raise error
    if outcome[0] is not None:
        raise EchoedError(outcome[0])
    return outcome[1]


def mean_over_ranks(ranks: Ranks, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each 0-d tensor averaged over the ranks (one all-reduce; unchanged in a world of one)."""
    if not ranks.active or not values:
        return values
    import torch
    import torch.distributed as dist

    stacked = torch.stack([value.detach().float() for value in values.values()])
    dist.all_reduce(stacked)
    stacked /= ranks.world_size
    return dict(zip(values, stacked.unbind()))
