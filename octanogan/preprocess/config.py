"""Preprocessing settings, recorded in patch stores and score folders."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from octanogan import checks

INTENSITY_REFERENCES = ("image", "retina")
OUTSIDE_RETINA = ("keep", "grey")


@dataclass
class PreprocessConfig:
    """Every preprocessing setting.

    Lengths are physical: ``_um`` settings are micrometres, converted to rows (depth) or columns
    (lateral) with each volume's spacing by :meth:`in_pixels`, so 248- and 1,024-row scans of the
    same retina get the same settings. The comments give the pixels at Spectralis-like sampling
    (3.9 µm per row, 11.5 µm per column): the defaults are the earlier pixel defaults at that
    sampling, so such scans are preprocessed exactly as before.
    """

    # Robust intensity normalisation: these volume percentiles map to -1 and +1. With
    # intensity_reference "retina" the high percentile is taken over the retina band (ILM to BM)
    # once the boundaries are found, so how much vitreous and choroid an image holds does not
    # change the retina's grey levels; "image" takes both over the whole volume.
    low_percentile: float = 1.0
    high_percentile: float = 99.5
    intensity_reference: str = "retina"
    # What patches see outside the retina band (ILM to BM) of the flattened image: "keep" the
    # vitreous and choroid, or "grey" them out (0, mid-grey), so the model learns retina only and
    # cannot imitate dark fluid with the vitreous it has seen.
    outside_retina: str = "keep"
    # Flattening: BM goes to row round(target_bm_fraction * depth), moved down if needed so that
    # the ILM keeps flat_margin_rows rows above it (a patch-grid margin, hence rows).
    target_bm_fraction: float = 0.75
    flat_margin_rows: int = 4
    # Smoothing of the image before edge detection (Gaussian sigmas; 2 rows, 3 columns).
    depth_sigma_um: float = 7.8
    lateral_sigma_um: float = 34.5
    # Boundaries are minimal-cost paths across the B-scan that move at most max_slope (depth
    # over width, both in micrometres) between neighbouring columns; each row moved beyond the
    # first costs step_cost (an edge pixel costs 0 to 1).
    max_slope: float = 1.5
    step_cost: float = 0.1
    # ILM: the strongest dark-to-bright edge with at most ilm_tissue_um (6 rows) of tissue above
    # it (tissue: brighter than the vitreous by ilm_threshold times the column's contrast).
    ilm_threshold: float = 0.3
    ilm_tissue_um: float = 23.4
    # RPE: the brightest band (after lateral smoothing, rpe_lateral_sigma_um: 6 columns) between
    # rpe_min_depth_um (20 rows) and max_thickness_um (250 rows) below the ILM; BM: the strongest
    # bright-to-dark edge within bm_search_um (8 rows) below it.
    rpe_min_depth_um: float = 78.0
    # The ILM lies at least min_thickness_um above BM where BM was measured (the foveal floor of
    # a healthy eye is about twice as thick; at the optic disc BM is bridged, not measured).
    min_thickness_um: float = 100.0
    max_thickness_um: float = 975.0
    rpe_lateral_sigma_um: float = 69.0
    bm_search_um: float = 31.2
    # A-scans whose contrast is below min_signal * the B-scan's median contrast are treated as
    # blank or shadowed: their boundaries are interpolated from their neighbours.
    min_signal: float = 0.4
    # Outlier rejection across columns: points further than outlier_um (4 rows) from a running
    # median over median_um (15 columns) are replaced by interpolation.
    median_um: float = 172.5
    outlier_um: float = 15.6
    # BM under lesions: points lifted more than bm_lift_um (3 rows) above a wide local linear fit
    # (Gaussian weights, sigma bm_baseline_sigma_um: 20 columns) are bridged, so PED and drusen
    # do not pull BM up.
    bm_baseline_sigma_um: float = 230.0
    bm_lift_um: float = 11.7
    # Final smoothing of the surfaces across columns (Gaussian sigmas: 1.5 and 4 columns). Across
    # B-scans, a point interpolated within its B-scan takes the mean of the two neighbouring
    # B-scans where both were measured and agree within bscan_tolerance_um (3 rows).
    ilm_smooth_um: float = 17.25
    bm_smooth_um: float = 46.0
    bscan_tolerance_um: float = 11.7
    # Quality control per B-scan (docs/preprocessing.md): a B-scan fails when more than
    # qc_max_invalid of it is export fill, when its boundaries were measured (not interpolated)
    # in fewer than qc_min_measured of its image columns, or when its retina stands out from the
    # vitreous by less than qc_min_cnr (contrast-to-noise ratio).
    qc_max_invalid: float = 0.5
    qc_min_measured: float = 0.5
    qc_min_cnr: float = 1.0
    # Patches with more than this share of their pixels on retina hidden by export fill are
    # left out of the patch grid in extract and score.
    max_patch_invalid: float = 0.05

    def __post_init__(self) -> None:
        checks.choice("intensity_reference", self.intensity_reference, INTENSITY_REFERENCES)
        checks.choice("outside_retina", self.outside_retina, OUTSIDE_RETINA)
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type == "str":
                continue
            if item.type == "int":
                checks.integer(item.name, value, 0)
            else:
                checks.number(item.name, value, 0.0)
        checks.number("high_percentile", self.high_percentile, self.low_percentile, 100.0, low_open=True)
        checks.number("target_bm_fraction", self.target_bm_fraction, 0.0, 1.0, True, True)
        for name in ("qc_max_invalid", "qc_min_measured", "max_patch_invalid"):
            checks.number(name, getattr(self, name), 0.0, 1.0)

    def in_pixels(self, spacing_mm: tuple[float, float, float]) -> PixelSettings:
        """The physical settings in rows and columns of a volume with ``spacing_mm``
        (B-scan, row, column spacing in millimetres)."""
        row_um, column_um = 1000.0 * float(spacing_mm[1]), 1000.0 * float(spacing_mm[2])

        def rows(um: float) -> float:
            return um / row_um

        def columns(um: float) -> float:
            return um / column_um

        return PixelSettings(
            depth_sigma=rows(self.depth_sigma_um),
            lateral_sigma=columns(self.lateral_sigma_um),
            max_step=min(max(math.ceil(self.max_slope * column_um / row_um), 1), 16),
            ilm_tissue_rows=round(rows(self.ilm_tissue_um)),
            rpe_min_depth=max(1, round(rows(self.rpe_min_depth_um))),
            min_thickness=rows(self.min_thickness_um),
            max_thickness=max(2, round(rows(self.max_thickness_um))),
            rpe_lateral_sigma=columns(self.rpe_lateral_sigma_um),
            bm_search=max(2, round(rows(self.bm_search_um))),
            median_columns=max(1, 2 * round((columns(self.median_um) - 1) / 2) + 1),
            outlier_rows=rows(self.outlier_um),
            bm_baseline_sigma=columns(self.bm_baseline_sigma_um),
            bm_lift_rows=rows(self.bm_lift_um),
            ilm_smooth_columns=columns(self.ilm_smooth_um),
            bm_smooth_columns=columns(self.bm_smooth_um),
            bscan_tolerance_rows=rows(self.bscan_tolerance_um),
        )


@dataclass(frozen=True)
class PixelSettings:
    """:class:`PreprocessConfig`'s lengths in pixels of one volume (rows: depth; columns: lateral)."""

    depth_sigma: float
    lateral_sigma: float
    max_step: int
    ilm_tissue_rows: int
    rpe_min_depth: int
    min_thickness: float
    max_thickness: int
    rpe_lateral_sigma: float
    bm_search: int
    median_columns: int
    outlier_rows: float
    bm_baseline_sigma: float
    bm_lift_rows: float
    ilm_smooth_columns: float
    bm_smooth_columns: float
    bscan_tolerance_rows: float
