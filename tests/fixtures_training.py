"""Tiny synthetic patch stores for the model and training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octanogan.patches.store import PatchStoreWriter


def make_store(folder: Path, n_patches: int = 96, patch_size: int = 32, shard_size: int = 40,
               seed: int = 0) -> Path:
    """Write a store of smooth horizontal bands plus noise (OCT-like layers), values in [-1, 1]."""
    rng = np.random.default_rng(seed)
    rows = np.arange(patch_size)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n_patches, 1, 1))
    period = rng.uniform(6, 14, size=(n_patches, 1, 1))
    bands = np.sin(2 * np.pi * rows / period + phase)
    patches = np.clip(0.8 * bands + 0.1 * rng.standard_normal(bands.shape[:1] + (patch_size, patch_size)),
                      -1, 1).astype(np.float32)
    writer = PatchStoreWriter(folder, patch_size, shard_size)
    centres = np.arange(n_patches)
    writer.add(patches, "synthetic-01", 0, centres, centres)
    writer.close({"stride": patch_size, "synthetic": True})
    return folder
