"""Robust intensity normalisation to [-1, 1]."""

from __future__ import annotations

import numpy as np

from octanogan.errors import OctanoganError


def normalize_intensity(data: np.ndarray, low_percentile: float = 1.0,
                        high_percentile: float = 99.5, ignore: np.ndarray | None = None,
                        high_from: np.ndarray | None = None) -> np.ndarray:
    """Map the volume's ``low``/``high`` percentiles to -1/+1 linearly and clip (float32).

    Percentiles are taken over the whole volume but the ``ignore`` voxels (export fill), so a
    few saturated or dead voxels do not set the scale; ``high_from`` (bool, e.g. the retina band)
    restricts the high percentile to those voxels. A constant volume maps to -1 everywhere.
    """
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise OctanoganError(
            f"normalisation percentiles must satisfy 0 <= low < high <= 100, "
            f"got low={low_percentile}, high={high_percentile}")
    values = np.asarray(data, dtype=np.float32)
    counted = np.isfinite(values) if ignore is None else np.isfinite(values) & ~ignore
    finite = values[counted] if counted.any() else values[np.isfinite(values)]
    if finite.size == 0:
        raise OctanoganError("cannot normalise a volume with no finite values")
    low, high = np.percentile(finite, [low_percentile, high_percentile])
    if high_from is not None and (counted & high_from).any():
        high = np.percentile(values[counted & high_from], high_percentile)
    scale = 2.0 / (high - low) if high > low else 0.0
    out = (values - np.float32(low)) * np.float32(scale) - np.float32(1.0)
    out = np.nan_to_num(out, nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.clip(out, -1.0, 1.0, out=out).astype(np.float32, copy=False)
