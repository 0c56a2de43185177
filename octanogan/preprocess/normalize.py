"""Robust intensity normalisation to [-1, 1]."""

from __future__ import annotations

import numpy as np

from octanogan.errors import OctanoganError
from octanogan.preprocess import kernels, percentiles


def normalize_intensity(data: np.ndarray, low_percentile: float = 1.0,
                        high_percentile: float = 99.5, ignore: np.ndarray | None = None,
                        high_from: np.ndarray | None = None) -> np.ndarray:
    """Map the volume's ``low``/``high`` percentiles to -1/+1 linearly and clip (float32).

    Percentiles are taken over the whole volume but the ``ignore`` voxels (export fill), so a
    few saturated or dead voxels do not set the scale; ``high_from`` (bool, e.g. the retina band)
    restricts the high percentile to those voxels. A constant volume maps to -1 everywhere.
    """
    values = np.asarray(data, dtype=np.float32)
    low, high = intensity_range(values, low_percentile, high_percentile, ignore)
    if high_from is not None:
        high = high_within(values, high_percentile, high_from, ignore, default=high)
    return scale_to_unit(values, low, high)


def intensity_range(values: np.ndarray, low_percentile: float, high_percentile: float,
                    ignore: np.ndarray | None = None) -> tuple[float, float]:
    """The ``low``/``high`` percentiles of float32 ``values`` but the ``ignore`` voxels (all
    finite voxels where nothing else is left)."""
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise OctanoganError(
            f"normalisation percentiles must satisfy 0 <= low < high <= 100, "
            f"got low={low_percentile}, high={high_percentile}")
    counted = _counted(values, ignore)
    if not counted.any():
        counted = np.isfinite(values)
    if not counted.any():
        raise OctanoganError("cannot normalise a volume with no finite values")
    low, high = percentiles.percentiles(values, (low_percentile, high_percentile), counted)
    return low, high


def high_within(values: np.ndarray, high_percentile: float, within: np.ndarray,
                ignore: np.ndarray | None, default: float) -> float:
    """The ``high`` percentile of the finite, not ignored ``values`` ``within`` a mask (e.g. the
    retina band), or ``default`` where no such voxel is left."""
    chosen = _counted(values, ignore) & within
    return percentiles.percentile(values, high_percentile, chosen) if chosen.any() else default


def _counted(values: np.ndarray, ignore: np.ndarray | None) -> np.ndarray:
    finite = np.isfinite(values)
    return finite if ignore is None else finite & ~ignore


def scale_to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` (float32) mapped linearly from [low, high] to [-1, 1] and clipped; NaN to -1."""
    scale = 2.0 / (high - low) if high > low else 0.0
    return kernels.scale_intensity(np.ascontiguousarray(values), np.float32(low), np.float32(scale))
