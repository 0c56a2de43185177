"""ILM and Bruch's membrane (BM) detection per A-scan, regularised across columns and B-scans.

Rows are continuous: a boundary at row 10.5 lies between pixel rows 10 and 11. The ILM is the
vitreous-to-retina (dark-to-bright) edge, BM the RPE-to-choroid (bright-to-dark) edge just below
the RPE. Method and measured accuracy: docs/preprocessing.md.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from octanogan.errors import OctanoganError
from octanogan.preprocess.config import PreprocessConfig
from octanogan.preprocess.normalize import normalize_intensity

#: Rows above the ILM threshold crossing searched for the steepest edge.
_ILM_REFINE_ROWS = 3
#: Volume percentile of the smoothed image taken as the background (vitreous) level.
_BACKGROUND_PERCENTILE = 20.0


def detect_boundaries(data: np.ndarray,
                      config: PreprocessConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ILM and BM rows, float32 ``[B, W]`` each, of a volume ``[B, H, W]`` (any intensity scale)."""
    config = config or PreprocessConfig()
    image = normalize_intensity(data, config.low_percentile, config.high_percentile)
    return detect_boundaries_normalized(image, config)


def detect_boundaries_normalized(image: np.ndarray,
                                 config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect_boundaries` for an image already normalised to [-1, 1]."""
    if image.ndim != 3 or min(image.shape) < 1 or image.shape[1] < 8:
        raise OctanoganError(f"boundary detection needs a volume [B, H>=8, W], got {image.shape}")
    smooth = ndimage.gaussian_filter(image.astype(np.float32, copy=False),
                                     sigma=(0.0, config.depth_sigma, config.lateral_sigma))
    gradient = np.diff(smooth, axis=1)  # gradient[y] = smooth[y + 1] - smooth[y]
    depth = image.shape[1]

    background = np.percentile(smooth.reshape(len(smooth), -1), _BACKGROUND_PERCENTILE, axis=1)
    contrast = smooth.max(axis=1) - background[:, None]
    valid = contrast > config.min_signal * np.median(contrast, axis=1, keepdims=True)

    threshold = background[:, None] + config.ilm_threshold * contrast
    retina_below = _sustained(smooth > threshold[:, None, :], config.ilm_min_rows)
    rising = np.maximum(gradient, 0.0)
    steep = ndimage.maximum_filter1d(rising, 2 * _ILM_REFINE_ROWS + 1, axis=1)
    steep = steep >= config.ilm_edge_fraction * rising.max(axis=1, keepdims=True)
    crossing = np.argmax(retina_below[:, :-1] & steep, axis=1)
    # The steepest edge from just above the crossing to ilm_refine_rows below it: a faint
    # membrane just above the retina can trigger the crossing, the ILM edge is sharper.
    ilm = _steepest_edge(gradient, crossing - _ILM_REFINE_ROWS,
                         _ILM_REFINE_ROWS + config.ilm_refine_rows)
    ilm, ilm_valid = _regularise(ilm, valid, config)

    # The RPE is the brightest laterally continuous band at least rpe_min_depth rows below the
    # ILM (which skips a bright, thick RNFL); extra lateral smoothing averages choroid speckle out.
    banded = ndimage.gaussian_filter1d(smooth, config.rpe_lateral_sigma, axis=2)
    rows = np.arange(depth)[None, :, None]
    deep_enough = rows >= (np.floor(ilm) + config.rpe_min_depth)[:, None, :]
    rpe = np.argmax(np.where(deep_enough, banded, -np.inf), axis=1).astype(np.float32)
    rpe, _ = _regularise(rpe, valid & deep_enough.any(axis=1), config)
    start = np.rint(rpe).astype(np.int64)
    bm = _steepest_edge(-gradient, start, config.bm_search_rows)
    bm, bm_valid = _regularise(bm, valid, config, lift_rows=config.bm_lift_rows)

    ilm = _smooth_surface(ilm, ilm_valid, config.ilm_smooth_columns, config)
    bm = _smooth_surface(bm, bm_valid, config.bm_smooth_columns, config)
    ilm = np.minimum(ilm, bm - 1.0)
    return ilm.astype(np.float32), bm.astype(np.float32)


def _sustained(above: np.ndarray, run_rows: int) -> np.ndarray:
    """Rows from which at least 75 % of the next ``run_rows`` rows are ``above``.

    A thin bright line in the vitreous (posterior hyaloid, floaters) is not the retina.
    """
    counts = np.cumsum(above, axis=1, dtype=np.int32)
    counts = np.concatenate([np.zeros_like(counts[:, :1]), counts], axis=1)
    ends = np.minimum(np.arange(above.shape[1]) + run_rows, above.shape[1])
    return counts[:, ends] - counts[:, :-1] >= 0.75 * run_rows


def _steepest_edge(gradient: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Sub-row position of the largest ``gradient`` in rows ``start .. start + length - 1``.

    ``gradient[y]`` is the step from row y to y + 1, so an edge there lies at y + 0.5; a parabola
    through the peak and its neighbours refines it.
    """
    last = gradient.shape[1] - 1
    rows = np.clip(start[:, None, :] + np.arange(length)[None, :, None], 0, last)
    window = np.take_along_axis(gradient, rows, axis=1)  # [B, length, W]
    peak = np.argmax(window, axis=1)[:, None, :]
    centre = np.take_along_axis(window, peak, axis=1)[:, 0]
    before = np.take_along_axis(window, np.maximum(peak - 1, 0), axis=1)[:, 0]
    after = np.take_along_axis(window, np.minimum(peak + 1, length - 1), axis=1)[:, 0]
    curvature = before - 2.0 * centre + after
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (before - after) / curvature, 0.0)
    offset = np.clip(np.nan_to_num(offset), -0.5, 0.5)
    position = np.take_along_axis(rows, peak, axis=1)[:, 0]
    return (position + offset + 0.5).astype(np.float32)


def _regularise(surface: np.ndarray, valid: np.ndarray, config: PreprocessConfig,
                lift_rows: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replace blank, outlying (and, with ``lift_rows``, lifted) points by interpolation.

    Returns the filled surface and the mask of points that were kept as measured.

    Outliers lie more than ``outlier_rows`` from a running median across columns. Lifted points
    lie more than ``lift_rows`` above (at smaller rows than) a wide local linear fit: this bridges
    PED domes and drusen, under which Bruch's membrane stays in place.
    """
    filled = _interpolate_gaps(surface, valid)
    median = ndimage.median_filter(filled, size=(1, config.median_columns), mode="nearest")
    valid = valid & (np.abs(surface - median) <= config.outlier_rows)
    filled = _interpolate_gaps(surface, valid)
    if lift_rows is not None:
        for _ in range(3):
            baseline = _local_linear_fit(surface, valid, config.bm_baseline_sigma)
            valid = valid & (surface >= baseline - lift_rows)
        filled = _interpolate_gaps(surface, valid)
    return filled, valid


def _local_linear_fit(surface: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted local linear regression of each B-scan's surface across columns.

    Unlike a running mean or median it follows a tilted surface to the image edges unbiased.
    """
    x = np.arange(surface.shape[1], dtype=np.float64) - surface.shape[1] / 2
    w = weights.astype(np.float64)
    y = np.where(weights, surface, 0.0).astype(np.float64)

    def smooth(values: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter1d(values, sigma, axis=1, mode="constant")

    s0, s1, s2 = smooth(w), smooth(w * x), smooth(w * x * x)
    t0, t1 = smooth(y), smooth(y * x)
    determinant = s0 * s2 - s1 * s1
    with np.errstate(divide="ignore", invalid="ignore"):
        intercept = (s2 * t0 - s1 * t1) / determinant
        slope = (s0 * t1 - s1 * t0) / determinant
        fit = intercept + slope * x
        fallback = t0 / s0  # too few points for a slope: local mean
    fit = np.where(np.abs(determinant) > 1e-9 * np.maximum(s0, 1e-12) ** 2, fit, fallback)
    return np.where(np.isfinite(fit), fit, surface).astype(np.float32)


def _interpolate_gaps(surface: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation across invalid columns; B-scans with none valid copy the nearest one."""
    out = surface.astype(np.float32, copy=True)
    columns = np.arange(surface.shape[1])
    has_any = valid.any(axis=1)
    if not has_any.any():
        raise OctanoganError("no retina found: every A-scan is blank or has no contrast")
    for b in np.flatnonzero(has_any & ~valid.all(axis=1)):  # a loop over B-scans, not A-scans
        out[b] = np.interp(columns, columns[valid[b]], surface[b, valid[b]])
    good = np.flatnonzero(has_any)
    for b in np.flatnonzero(~has_any):
        out[b] = out[good[np.argmin(np.abs(good - b))]]
    return out


def _smooth_surface(surface: np.ndarray, measured: np.ndarray, sigma_columns: float,
                    config: PreprocessConfig) -> np.ndarray:
    """Gaussian smoothing across columns, with gaps bridged from the neighbouring B-scans.

    A point that was interpolated across columns (blank, shadowed, outlying) takes the mean of
    the two neighbouring B-scans where both were measured there and agree within
    ``bscan_tolerance_rows``. Measured points are never moved towards other B-scans, which may
    hold different lesions or, in a stack of unrelated B-scans, a different eye.
    """
    out = surface.copy()
    if out.shape[0] >= 3:
        before, after = out[:-2], out[2:]
        bridged = (~measured[1:-1] & measured[:-2] & measured[2:]
                   & (np.abs(before - after) <= config.bscan_tolerance_rows))
        out[1:-1][bridged] = 0.5 * (before + after)[bridged]
    return ndimage.gaussian_filter1d(out, sigma_columns, axis=1, mode="nearest")
