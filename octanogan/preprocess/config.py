"""Preprocessing settings, recorded in patch stores and score folders."""

from __future__ import annotations

from dataclasses import dataclass, fields

from octanogan import checks


@dataclass
class PreprocessConfig:
    """Every preprocessing setting, with defaults tuned for Spectralis-like B-scans (~3.9 µm/row).

    Lengths are in pixels: rows (depth) or columns (A-scans) as named.
    """

    # Robust intensity normalisation: these volume percentiles map to -1 and +1.
    low_percentile: float = 1.0
    high_percentile: float = 99.5
    # Flattening: BM goes to row round(target_bm_fraction * depth), moved down if needed so that
    # the ILM keeps flat_margin_rows rows above it (see docs/preprocessing.md).
    target_bm_fraction: float = 0.75
    flat_margin_rows: int = 4
    # Smoothing of the image before edge detection (Gaussian sigmas).
    depth_sigma: float = 2.0
    lateral_sigma: float = 3.0
    # Boundaries are minimal-cost paths across the B-scan that move at most max_slope (depth
    # over width, both in micrometres, converted with the volume's spacing) between neighbouring
    # columns; each row moved beyond the first costs step_cost (an edge pixel costs 0 to 1).
    max_slope: float = 1.5
    step_cost: float = 0.1
    # ILM: the strongest dark-to-bright edge with at most ilm_min_rows rows of tissue above it
    # (tissue: brighter than the vitreous by ilm_threshold times the column's contrast).
    ilm_threshold: float = 0.3
    ilm_min_rows: int = 6
    # RPE: the brightest band (after lateral smoothing, rpe_lateral_sigma columns) between
    # rpe_min_depth and max_thickness_rows below the ILM; BM: the strongest bright-to-dark edge
    # within bm_search_rows below it.
    rpe_min_depth: int = 20
    max_thickness_rows: int = 250
    rpe_lateral_sigma: float = 6.0
    bm_search_rows: int = 8
    # A-scans whose contrast is below min_signal * the B-scan's median contrast are treated as
    # blank or shadowed: their boundaries are interpolated from their neighbours.
    min_signal: float = 0.4
    # Outlier rejection across columns: points further than outlier_rows from a running median
    # of median_columns A-scans are replaced by interpolation.
    median_columns: int = 15
    outlier_rows: float = 4.0
    # BM under lesions: points lifted more than bm_lift_rows above a wide local linear fit
    # (Gaussian weights, sigma bm_baseline_sigma columns) are bridged, so PED and drusen do not
    # pull BM up.
    bm_baseline_sigma: float = 20.0
    bm_lift_rows: float = 3.0
    # Final smoothing of the surfaces across columns (Gaussian sigmas). Across B-scans, a point
    # interpolated within its B-scan takes the mean of the two neighbouring B-scans where both
    # were measured and agree within bscan_tolerance_rows.
    ilm_smooth_columns: float = 1.5
    bm_smooth_columns: float = 4.0
    bscan_tolerance_rows: float = 3.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type == "int":
                checks.integer(item.name, value, 0)
            else:
                checks.number(item.name, value, 0.0)
        checks.number("high_percentile", self.high_percentile, self.low_percentile, 100.0, low_open=True)
        checks.number("target_bm_fraction", self.target_bm_fraction, 0.0, 1.0, True, True)
