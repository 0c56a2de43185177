"""ILM and Bruch's membrane (BM) as minimal-cost paths, regularised across columns and B-scans.

Rows are continuous: a boundary at row 10.5 lies between pixel rows 10 and 11. The ILM is the
vitreous-to-retina (dark-to-bright) edge, BM the RPE-to-choroid (bright-to-dark) edge just below
the RPE. Both follow the graph search of Chiu et al. (Opt. Express 2010): a path of least cost
across the B-scan, one row per column, that may move ``max_slope`` between columns. Method and
measured accuracy: docs/preprocessing.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from octanogan.errors import OctanoganError
from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.preprocess import kernels, percentiles
from octanogan.preprocess.config import PixelSettings, PreprocessConfig
from octanogan.preprocess.normalize import normalize_intensity
from octanogan.preprocess.paths import min_cost_paths

#: Volume percentile of the smoothed image taken as the background (vitreous) level.
_BACKGROUND_PERCENTILE = 20.0


@dataclass
class Surfaces:
    """ILM and BM rows, float32 ``[B, W]``, and where each was measured rather than bridged."""

    ilm: np.ndarray
    bm: np.ndarray
    ilm_measured: np.ndarray  # bool [B, W]
    bm_measured: np.ndarray   # bool [B, W]


def detect_boundaries(data: np.ndarray, config: PreprocessConfig | None = None,
                      spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """ILM and BM rows, float32 ``[B, W]`` each, of a volume ``[B, H, W]`` (any intensity scale)."""
    config = config or PreprocessConfig()
    image = normalize_intensity(data, config.low_percentile, config.high_percentile)
    surfaces = find_surfaces(image, config, spacing_mm=spacing_mm)
    return surfaces.ilm, surfaces.bm


def find_surfaces(image: np.ndarray, config: PreprocessConfig, fill: np.ndarray | None = None,
                  spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
                  bright: np.ndarray | None = None) -> Surfaces:
    """ILM and BM of a volume ``[B, H, W]`` already normalised to [-1, 1].

    ILM and RPE are minimal-cost paths across each B-scan (``octanogan.preprocess.paths``): the
    ILM on a dark-to-bright edge cost where only vitreous lies above; the RPE on the brightest
    band at a plausible depth below it. BM is the bright-to-dark edge just below the RPE. Points
    measured on export ``fill`` (``invalid.py``) are interpolated like blank A-scans. ``bright``
    fill was set to background (-1): its step into the image is no ILM edge.
    """
    if image.ndim != 3 or min(image.shape) < 1 or image.shape[1] < 8:
        raise OctanoganError(f"boundary detection needs a volume [B, H>=8, W], got {image.shape}")
    fill = np.zeros(image.shape, dtype=bool) if fill is None else fill
    px = config.in_pixels(spacing_mm)
    smooth = kernels.gaussian_filter(image, px.depth_sigma, px.lateral_sigma)
    gradient = np.diff(smooth, axis=1)  # gradient[y] = smooth[y + 1] - smooth[y]
    depth = image.shape[1]
    seen = ~fill

    background = percentiles.per_row(smooth, _BACKGROUND_PERCENTILE)
    contrast = smooth.max(axis=1) - background[:, None]
    valid = contrast > config.min_signal * np.median(contrast, axis=1, keepdims=True)

    rising = np.maximum(gradient, 0.0)
    if bright is not None and bright.any():  # no edge where smoothing spread bright fill's step
        beside = _beside(bright, px)
        rising[beside[:, 1:] | beside[:, :-1]] = 0.0
    rising = _unit(rising, seen[:, 1:])
    tissue_cost = _ilm_cost(rising, smooth, background, contrast, px, config)

    def ilm_surface(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = min_cost_paths(cost, px.max_step, config.step_cost)
        found = _steepest_edge(gradient, rows - 2, 5)
        return _regularise(found, valid & ~_in_fill(fill, found + 2.0), px)

    ilm, ilm_valid = ilm_surface(tissue_cost)

    # The RPE: the brightest laterally continuous band from rpe_min_depth to max_thickness
    # below the ILM; extra lateral smoothing averages choroid speckle out.
    banded = kernels.gaussian_filter(smooth, 0.0, px.rpe_lateral_sigma)
    top = np.floor(ilm)
    first, last = top + px.rpe_min_depth, np.minimum(top + px.max_thickness, depth - 1 - _border_rows(depth))
    cost = kernels.band_cost(_unit(banded - banded.min(), seen), first, last)
    rpe = min_cost_paths(cost, px.max_step, config.step_cost)
    bm = _steepest_edge(-gradient, rpe, px.bm_search)

    bm_valid = valid & (np.maximum(first, 0) <= last) & ~_in_fill(fill, bm - 2.0)
    bm, bm_valid = _regularise(bm, bm_valid, px, lift_rows=px.bm_lift_rows)

    # Second ILM search, at least min_thickness above BM where BM was measured: where the
    # foveal floor is barely brighter than the vitreous, the first search dives to the outer
    # retina's bright bands. (At the optic disc BM is bridged, and the cup may be deep.)
    deepest = bm - px.min_thickness  # edge rows y > deepest are too deep
    too_deep = bm_valid & (np.maximum(np.floor(deepest) + 1, 0) <= np.minimum(top, depth - 2))
    if too_deep.any():
        rows = np.arange(depth - 1)[None, :, None]
        ilm, ilm_valid = ilm_surface(np.where((rows > deepest[:, None, :]) & bm_valid[:, None, :],
                                              1.0, tissue_cost))

    ilm = _smooth_surface(ilm, ilm_valid, px.ilm_smooth_columns, px)
    bm = _smooth_surface(bm, bm_valid, px.bm_smooth_columns, px)
    ilm = np.minimum(ilm, bm - 1.0)
    return Surfaces(ilm.astype(np.float32), bm.astype(np.float32), ilm_valid, bm_valid)


def _unit(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``values`` scaled per B-scan so that the 99.5th percentile of its seen pixels is 1."""
    return kernels.divide_rows(values, percentiles.per_row(values, 99.5, seen))


def _ilm_cost(edges: np.ndarray, smooth: np.ndarray, background: np.ndarray,
              contrast: np.ndarray, px: PixelSettings, config: PreprocessConfig) -> np.ndarray:
    """Cost ``[B, H-1, W]`` of the ILM path: low on strong dark-to-bright edges with vitreous above.

    A pixel with more than ``ilm_tissue_um`` of tissue (brighter than the vitreous by
    ``ilm_threshold`` times the column's contrast) above it cannot be the ILM: that rules out
    the photoreceptor band and the floor of subretinal fluid, while thin vitreous membranes do
    not count as tissue.
    """
    tissue_level = background[:, None] + config.ilm_threshold * contrast
    return kernels.ilm_cost(edges, smooth, tissue_level, px.ilm_tissue_rows,
                            _border_rows(edges.shape[1]))


def _border_rows(depth: int) -> int:
    """Rows at the top and bottom of a B-scan where no boundary is measured: export borders and
    crop lines make strong edges there, and a retina cut by the border cannot be measured."""
    return max(3, round(0.02 * depth))


def _beside(mask: np.ndarray, px: PixelSettings) -> np.ndarray:
    """Bool ``[B, H, W]``: ``mask`` and the pixels within two smoothing sigmas of it."""
    rows, columns = (int(np.ceil(2.0 * s)) for s in (px.depth_sigma, px.lateral_sigma))
    return ndimage.maximum_filter(mask, size=(1, 2 * rows + 1, 2 * columns + 1), mode="constant")


def _in_fill(fill: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``[B, W]``: whether the pixel at ``rows`` of each column is export fill."""
    index = np.clip(np.floor(rows).astype(np.int64), 0, fill.shape[1] - 1)
    return np.take_along_axis(fill, index[:, None, :], axis=1)[:, 0]


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


def _regularise(surface: np.ndarray, valid: np.ndarray, px: PixelSettings,
                lift_rows: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replace blank, outlying (and, with ``lift_rows``, lifted) points by interpolation.

    Returns the filled surface and the mask of points that were kept as measured.

    Outliers lie more than ``outlier_um`` from a running median across columns. Lifted points
    lie more than ``lift_rows`` above (at smaller rows than) a wide local linear fit: this bridges
    PED domes and drusen, under which Bruch's membrane stays in place.
    """
    filled = _interpolate_gaps(surface, valid)
    median = ndimage.median_filter(filled, size=(1, px.median_columns), mode="nearest")
    valid = valid & (np.abs(surface - median) <= px.outlier_rows)
    filled = _interpolate_gaps(surface, valid)
    if lift_rows is not None:
        for _ in range(3):
            baseline = _local_linear_fit(surface, valid, px.bm_baseline_sigma)
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
                    px: PixelSettings) -> np.ndarray:
    """Gaussian smoothing across columns, with gaps bridged from the neighbouring B-scans.

    A point that was interpolated across columns (blank, shadowed, outlying) takes the mean of
    the two neighbouring B-scans where both were measured there and agree within
    ``bscan_tolerance_um``. Measured points are never moved towards other B-scans, which may
    hold different lesions or, in a stack of unrelated B-scans, a different eye.
    """
    out = surface.copy()
    if out.shape[0] >= 3:
        before, after = out[:-2], out[2:]
        bridged = (~measured[1:-1] & measured[:-2] & measured[2:]
                   & (np.abs(before - after) <= px.bscan_tolerance_rows))
        out[1:-1][bridged] = 0.5 * (before + after)[bridged]
    return ndimage.gaussian_filter1d(out, sigma_columns, axis=1, mode="nearest")
