"""Bootstrap over volumes: resamples as volume weights, and percentile intervals."""

from __future__ import annotations

import numpy as np


def resample_weights(n_volumes: int, n_resamples: int, seed: int) -> np.ndarray:
    """``[n_resamples, n_volumes]``: how often each volume is drawn (with replacement).

    The same seed gives the same resamples, and every level and marker uses the same ones.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_volumes, size=(n_resamples, n_volumes))
    rows = np.repeat(np.arange(n_resamples), n_volumes)
    flat = np.bincount(rows * n_volumes + draws.ravel(), minlength=n_resamples * n_volumes)
    return flat.reshape(n_resamples, n_volumes).astype(np.float64)


def percentile_interval(samples: np.ndarray, confidence: float = 0.95,
                        min_samples: int = 10) -> tuple[float, float]:
    """Percentile interval of the finite ``samples``; NaNs when fewer than ``min_samples``."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) < min_samples:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def chunks(n_resamples: int, n_bins: int, budget: int = 1 << 22) -> list[slice]:
    """Resample slices whose count matrices ``[chunk, n_bins]`` stay under ``budget`` values."""
    size = max(1, min(n_resamples, budget // max(n_bins, 1)))
    return [slice(start, min(start + size, n_resamples)) for start in range(0, n_resamples, size)]
