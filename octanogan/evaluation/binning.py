"""Nested power-of-two score grids, so voxel histograms can be built one volume at a time.

A volume whose largest voxel score is ``m`` is binned on the grid ``[0, 2**e)`` cut into
``n_bins`` equal bins, with ``e`` the smallest integer such that ``m < 2**e``. Every bin of grid
``e`` lies inside exactly one bin of any coarser grid ``E > e`` (bin ``i`` inside bin
``i // 2**(E - e)``), so per-volume histograms merge exactly onto the cohort's grid at the end,
without a first pass over the cohort to find its maximum. The cohort's grid covers
``[0, 2**E)`` with ``E`` the largest exponent seen: at least ``n_bins / 2`` bins span the scores.
"""

from __future__ import annotations

import numpy as np

#: Exponent used for an all-zero map (any real map's grid is coarser, so it merges exactly).
SMALLEST_EXPONENT = -60


def range_exponent(max_value: float) -> int:
    """The smallest ``e`` with ``max_value < 2**e`` (``SMALLEST_EXPONENT`` for zero)."""
    if max_value <= 0:
        return SMALLEST_EXPONENT
    _, exponent = np.frexp(max_value)  # max_value = mantissa * 2**exponent, mantissa in [0.5, 1)
    return max(int(exponent), SMALLEST_EXPONENT)


def bin_width(exponent: int, n_bins: int) -> float:
    """Width of one bin of the grid ``[0, 2**exponent)``."""
    return float(2.0**exponent / n_bins)


def bin_edges(exponent: int, n_bins: int) -> np.ndarray:
    """Lower edge of every bin of the grid ``[0, 2**exponent)``."""
    return np.arange(n_bins) * bin_width(exponent, n_bins)


def bin_indices(values: np.ndarray, exponent: int, n_bins: int) -> np.ndarray:
    """Bin of each (non-negative) value on the grid ``[0, 2**exponent)``."""
    scaled = np.asarray(values, dtype=np.float64) / bin_width(exponent, n_bins)
    return np.clip(np.floor(scaled), 0, n_bins - 1).astype(np.int64)


def coarsen(bins: np.ndarray, exponent: int, target_exponent: int) -> np.ndarray:
    """Bin indices of grid ``exponent`` moved onto the coarser grid ``target_exponent``."""
    if target_exponent < exponent:
        raise ValueError(f"cannot refine grid 2**{exponent} to 2**{target_exponent}")
    shift = target_exponent - exponent
    return np.asarray(bins) >> shift if shift < 63 else np.zeros_like(bins)


def coarsen_histogram(counts: np.ndarray, exponent: int, target_exponent: int) -> np.ndarray:
    """Histograms ``[..., n_bins]`` on grid ``exponent`` summed onto grid ``target_exponent``."""
    counts = np.asarray(counts)
    n_bins = counts.shape[-1]
    target = coarsen(np.arange(n_bins), exponent, target_exponent)
    out = np.zeros_like(counts)
    np.add.at(out, (..., target), counts)
    return out
