"""Stitching overlapping residual patches into one map per volume."""

from __future__ import annotations

import numpy as np

from octanogan.scoring.config import WEIGHTINGS


def patch_weights(patch_size: int, weighting: str = "uniform") -> np.ndarray:
    """Blend weights ``[P, P]``: flat, or a Gaussian (σ = P/4) that trusts patch centres more."""
    if weighting == "uniform":
        return np.ones((patch_size, patch_size), np.float32)
    if weighting != "gaussian":
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got '{weighting}'")
    axis = np.arange(patch_size) - (patch_size - 1) / 2
    g = np.exp(-0.5 * (axis / (patch_size / 4)) ** 2)
    return np.outer(g, g).astype(np.float32)


class Stitcher:
    """Weighted average of patch values over a ``[B, H, W]`` grid."""

    def __init__(self, shape: tuple[int, int, int], patch_size: int, weighting: str = "uniform"):
        self.total = np.zeros(shape, np.float32)
        self.weight = np.zeros(shape, np.float32)
        self.kernel = patch_weights(patch_size, weighting)
        self.half = patch_size // 2

    def add(self, values: np.ndarray, centres: np.ndarray) -> None:
        """Add patch values ``[n, P, P]`` at ``(bscan, y, x)`` centres ``[n, 3]``."""
        weighted = values * self.kernel
        h = self.half
        for (b, y, x), patch in zip(centres, weighted):  # slicing beats np.add.at by ~10x
            self.total[b, y - h : y + h, x - h : x + h] += patch
            self.weight[b, y - h : y + h, x - h : x + h] += self.kernel

    def result(self) -> np.ndarray:
        """The blended map; 0 where no patch reached."""
        out = np.zeros_like(self.total)
        np.divide(self.total, self.weight, out=out, where=self.weight > 0)
        return out
