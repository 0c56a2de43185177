"""Streaming batches from a patch store in a deterministic, resumable order.

Batch number ``step`` is a pure function of ``(seed, stream, step)``: epoch ``e`` visits the patches
in the permutation drawn from ``(seed, stream, e)`` (the last partial batch of an epoch is dropped),
and horizontal flips are drawn from ``(seed, stream, step)``. Resuming therefore only needs the step
number, and worker processes produce exactly what the main process would. Under torchrun each of
N ranks takes its N-th of every batch (``part``): together they see the batch one process sees,
so every patch is seen once per epoch across ranks and a run may resume under another N.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from octanogan.errors import InputError
from octanogan.patches.store import PatchStore

#: Independent random streams of one seed.
GAN_STREAM, ENCODER_STREAM = 0, 1


class BatchSchedule:
    """Which patches (and which flips) make up batch number ``step``."""

    def __init__(self, n_patches: int, batch_size: int, seed: int, stream: int = GAN_STREAM) -> None:
        if n_patches < batch_size:
            raise ValueError(f"{n_patches} patches are fewer than one batch of {batch_size}")
        self.batch_size = batch_size
        self.batches_per_epoch = n_patches // batch_size
        self._n_patches = n_patches
        self._key = (seed, stream)
        self._cached: tuple[int, np.ndarray] | None = None

    def epoch_of(self, step: int) -> float:
        """Fractional epoch reached after ``step`` batches."""
        return step / self.batches_per_epoch

    def indices(self, step: int) -> np.ndarray:
        """Sorted patch indices of batch ``step`` (sorted for locality in the memory-mapped shards)."""
        epoch, offset = divmod(step, self.batches_per_epoch)
        if self._cached is None or self._cached[0] != epoch:
            rng = np.random.default_rng([*self._key, epoch, 0])
            self._cached = (epoch, rng.permutation(self._n_patches))
        return np.sort(self._cached[1][offset * self.batch_size:(offset + 1) * self.batch_size])

    def flips(self, step: int) -> np.ndarray:
        """Boolean mask of the patches of batch ``step`` to mirror left-right."""
        return np.random.default_rng([*self._key, step, 1]).random(self.batch_size) < 0.5


class StoreBatches(Dataset):
    """``dataset[step]`` is this rank's part of batch ``step``: a float32 tensor ``[B/N, 1, P, P]``.

    ``part`` is ``(rank, N)``: the rank takes the rank-th of N equal slices of the batch (``(0, 1)``:
    all of it). Holds the store's folder, not its arrays, so worker processes open their own maps.
    """

    def __init__(self, store: PatchStore, schedule: BatchSchedule, flip: bool = False,
                 part: tuple[int, int] = (0, 1)) -> None:
        self.folder = store.folder
        self.schedule = schedule
        self.flip = flip
        self.part = slice_of(schedule.batch_size, part)
        self._store: PatchStore | None = store

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    def __len__(self) -> int:
        raise TypeError("StoreBatches is indexed by step and has no length")

    def __getitem__(self, step: int) -> torch.Tensor:
        if self._store is None:
            self._store = PatchStore(self.folder)
        batch = self._store.batch(self.schedule.indices(step)[self.part])
        if self.flip:
            mask = self.schedule.flips(step)[self.part]
            batch[mask] = batch[mask, :, ::-1]
        return torch.from_numpy(batch).unsqueeze(1)


def slice_of(batch_size: int, part: tuple[int, int]) -> slice:
    """Rank ``part[0]``'s slice of a batch split into ``part[1]`` equal parts."""
    rank, parts = part
    share = batch_size // parts
    return slice(rank * share, (rank + 1) * share)


def batch_stream(store: PatchStore, schedule: BatchSchedule, start: int, stop: int, *,
                 flip: bool = False, workers: int = 0, pin_memory: bool = False,
                 part: tuple[int, int] = (0, 1)) -> DataLoader:
    """This rank's part of batches ``start .. stop-1`` in order, loaded by ``workers`` processes
    (0: in this process)."""
    return DataLoader(StoreBatches(store, schedule, flip, part), batch_size=None,
                      sampler=range(start, stop), num_workers=workers, pin_memory=pin_memory,
                      generator=torch.Generator(), persistent_workers=False)


def open_store(folder: str | Path, batch_size: int) -> PatchStore:
    """Open a patch store and check it can feed training (patch size, enough patches)."""
    store = PatchStore(folder)
    size = store.patch_size
    if size < 32 or size & (size - 1):
        raise InputError(folder, f"patch size {size} is not a power of two >= 32; re-extract patches")
    if len(store) < batch_size:
        raise InputError(folder, f"{len(store)} patches are fewer than one batch of {batch_size}; "
                                 "use a smaller --batch-size")
    return store
