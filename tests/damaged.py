"""A phantom with B-scans that must fail quality control (shared by the QC tests)."""

from __future__ import annotations

import numpy as np

from octanogan.phantom import generate_volume
from octanogan.phantom.cohort import spacing_for_shape

SHAPE = (4, 248, 256)


def damaged_phantom(seed: int = 3) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A healthy phantom (raw grey levels) with B-scan 1 drowned in noise and B-scan 2 mostly
    hidden by an exact-zero registration wedge over its left three quarters."""
    phantom = generate_volume(SHAPE, seed=seed)
    data = phantom.image.astype(np.float32).copy()
    rng = np.random.default_rng(0)
    data[1] = 0.15 * data[1] + rng.normal(data[1].mean(), 3 * data[1].std(), data[1].shape)
    data[2, :, : 3 * SHAPE[2] // 4] = 0.0
    data = np.clip(data, 1.0, None)  # only the wedge holds exact zeros
    data[2, :, : 3 * SHAPE[2] // 4] = 0.0
    return data, spacing_for_shape(SHAPE)
