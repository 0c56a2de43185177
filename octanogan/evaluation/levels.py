"""What each volume contributes to the voxel, patch, B-scan and volume levels.

A volume is read once (anomaly map, retina mask, label map, flattening shifts, patch table) and
reduced to small per-level summaries (:class:`VolumeEvidence`); the cohort's count tables are
then built from those summaries, so memory does not grow with the number of voxels.

Codes: label values are mapped to codes ``1..K`` in increasing marker value; in the ``hits``
arrays column 0 means "any marker" (pooled), in the voxel histogram row 0 means background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from octanogan.errors import InputError
from octanogan.evaluation.binning import (
    bin_edges,
    bin_indices,
    bin_width,
    coarsen_histogram,
    range_exponent,
)
from octanogan.evaluation.counts import RegionCounts, ScoreCounts, ScoreSamples
from octanogan.evaluation.metrics import percentile_bin
from octanogan.io import read_label_map
from octanogan.outputs.scores import ScoreFiles
from octanogan.preprocess.flatten import flatten
from octanogan.scoring.aggregate import aggregate_scores

LEVELS = ("voxel", "patch", "bscan", "volume")
POOLED = "pooled"


class MarkerCodes:
    """Maps a label map's values to codes ``1..K`` (0: background) and names them."""

    def __init__(self, markers: dict[int, str]) -> None:
        self.values = sorted(int(v) for v in markers)
        self.names = [str(markers[v]) for v in self.values]
        self.lookup = np.zeros(max(self.values, default=0) + 1, dtype=np.uint8)
        self.lookup[self.values] = np.arange(1, len(self.values) + 1)

    @property
    def n_codes(self) -> int:
        """Background plus one per marker."""
        return len(self.values) + 1

    def table_names(self) -> list[str]:
        """Marker names of the count tables: code 0 is the pooled table."""
        return [POOLED, *self.names]

    def encode(self, labels: np.ndarray, path: Path) -> np.ndarray:
        """Codes of a label map; a value that names no marker is an error naming the file."""
        present = np.flatnonzero(np.bincount(labels.ravel()))
        unknown = [int(v) for v in present if v != 0 and v not in self.values]
        if unknown:
            raise InputError(path, f"label value(s) {unknown} not in the marker table "
                                   f"(known: {dict(zip(self.values, self.names))})")
        return self.lookup[labels]


@dataclass
class VolumeEvidence:
    """One volume's share of every level (all arrays small)."""

    volume_id: str
    label: str
    has_truth: bool  # annotated, or healthy: voxel/patch/B-scan classes are known
    score: float
    patch_scores: np.ndarray
    bscan_scores: np.ndarray
    patch_hits: np.ndarray  # [n_patches, n_codes] patch holds code c (column 0: any marker)
    bscan_hits: np.ndarray  # [n_scored_bscans, n_codes]
    volume_hits: np.ndarray  # [n_codes]
    voxel_exponent: int = 0
    voxel_hist: np.ndarray | None = None  # [n_codes, n_bins] retina voxels per code and bin
    regions: dict[int, RegionCounts] = field(default_factory=dict)  # by code, 0: any marker
    outside_retina: np.ndarray | None = None  # [n_codes] annotated voxels outside the retina


def window_sums(mask: np.ndarray, bscan: np.ndarray, y: np.ndarray, x: np.ndarray,
                patch_size: int) -> np.ndarray:
    """Voxels of ``mask [B, D, W]`` inside each patch (rows y-P/2..y+P/2-1, same for columns).

    Uses a summed-area table per B-scan; windows are clipped to the B-scan.
    """
    n_bscans, depth, width = mask.shape
    table = np.zeros((n_bscans, depth + 1, width + 1), dtype=np.int32)
    table[:, 1:, 1:] = mask.cumsum(axis=1, dtype=np.int32).cumsum(axis=2, dtype=np.int32)
    top = np.clip(y - patch_size // 2, 0, depth)
    left = np.clip(x - patch_size // 2, 0, width)
    bottom = np.clip(y - patch_size // 2 + patch_size, 0, depth)
    right = np.clip(x - patch_size // 2 + patch_size, 0, width)
    return (table[bscan, bottom, right] - table[bscan, top, right]
            - table[bscan, bottom, left] + table[bscan, top, left])


def patch_hits(flat_codes: np.ndarray, bscan: np.ndarray, y: np.ndarray, x: np.ndarray,
               patch_size: int, n_codes: int) -> np.ndarray:
    """``[n_patches, n_codes]``: the patch holds a voxel of code c (column 0: of any marker).

    ``flat_codes`` is the code map in the flattened geometry the patch centres refer to.
    """
    hits = np.zeros((len(bscan), n_codes), dtype=bool)
    present = np.flatnonzero(np.bincount(flat_codes.ravel(), minlength=n_codes))
    for code in present[present > 0]:
        hits[:, code] = window_sums(flat_codes == code, bscan, y, x, patch_size) > 0
    hits[:, 0] = hits[:, 1:].any(axis=1)
    return hits


def _codes_per_bscan(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """``[B, n_codes]``: the B-scan holds code c (column 0: any marker)."""
    present = np.stack([np.bincount(b.ravel(), minlength=n_codes) > 0 for b in codes])
    present[:, 0] = present[:, 1:].any(axis=1)
    return present


def _voxel_summary(anomaly: np.ndarray, retina: np.ndarray, codes: np.ndarray, n_codes: int,
                   n_bins: int) -> tuple[int, np.ndarray, dict[int, RegionCounts], np.ndarray]:
    """Per-code histograms of retina voxel scores, annotated regions, voxels outside the retina."""
    scores = anomaly[retina]
    exponent = range_exponent(float(scores.max()) if scores.size else 0.0)
    bins = bin_indices(scores, exponent, n_bins)
    inside = codes[retina].astype(np.int64)
    hist = np.bincount(inside * n_bins + bins, minlength=n_codes * n_bins).reshape(n_codes, n_bins)
    regions = {}
    for code in np.flatnonzero(hist[1:].sum(axis=1)) + 1:
        labelled, _ = ndimage.label((codes == code) & retina)
        regions[int(code)] = RegionCounts.from_labels(labelled[retina], bins)
    if len(regions):
        labelled, _ = ndimage.label((codes > 0) & retina)
        regions[0] = RegionCounts.from_labels(labelled[retina], bins)
    outside = np.bincount(codes[~retina].ravel(), minlength=n_codes)
    return exponent, hist, regions, outside


def _annotation_hits(files: ScoreFiles, volume_id: str, codes: np.ndarray, bscans: np.ndarray,
                     patches: pd.DataFrame, n_codes: int) -> tuple[np.ndarray, ...]:
    """Which codes the volume, each scored B-scan and each patch hold (column 0: any marker)."""
    per_bscan = _codes_per_bscan(codes, n_codes)
    last = len(codes) - 1
    if len(bscans) and (bscans.min() < 0 or bscans.max() > last):
        raise InputError(files.root / "bscans.csv",
                         f"volume '{volume_id}' has B-scan indices outside 0..{last}")
    centre = [patches[c].to_numpy(np.int64) for c in ("bscan", "y", "x")]
    if len(centre[0]) and (centre[0].min() < 0 or centre[0].max() > last):
        raise InputError(files.root / "patches",
                         f"the patch table of '{volume_id}' has B-scan indices outside 0..{last}")
    flat = flatten(codes, files.shifts(volume_id, codes.shape), fill=0)
    return (per_bscan.any(axis=0), per_bscan[bscans],
            patch_hits(flat, *centre, files.patch_size, n_codes))


def read_evidence(files: ScoreFiles, volume_id: str, label: str, annotation: str | None,
                  markers: MarkerCodes, n_bins: int, use_annotation: bool = True,
                  top_fraction: float | None = None) -> VolumeEvidence:
    """Read one scored volume and reduce it to its :class:`VolumeEvidence`.

    Without an annotation a healthy volume counts as all background; a diseased one only enters
    the volume level (its voxel, patch and B-scan classes are unknown). ``use_annotation=False``
    (threshold volumes) treats the volume as all background. B-scan and volume scores come from
    the scores tables, or are recomputed from the patches with ``top_fraction`` when given.
    """
    n_codes = markers.n_codes
    patches = files.patches(volume_id)
    if top_fraction is None:
        bscans, score = files.bscan_scores(volume_id), files.volume_score(volume_id)
    else:
        bscans, score = aggregate_scores(patches, top_fraction)
    evidence = VolumeEvidence(
        volume_id=volume_id, label=label,
        has_truth=label == "healthy" or (use_annotation and bool(annotation)),
        score=score,
        patch_scores=patches["score"].to_numpy(np.float64),
        bscan_scores=bscans["score"].to_numpy(np.float64),
        patch_hits=np.zeros((len(patches), n_codes), dtype=bool),
        bscan_hits=np.zeros((len(bscans), n_codes), dtype=bool),
        volume_hits=np.zeros(n_codes, dtype=bool),
    )
    if not evidence.has_truth:
        return evidence
    anomaly = files.anomaly_map(volume_id)
    retina = files.retina_mask(volume_id, anomaly.shape)
    codes = np.zeros(anomaly.shape, dtype=np.uint8)
    if use_annotation and annotation:
        labels = read_label_map(annotation, shape=anomaly.shape)
        codes = markers.encode(labels, Path(annotation))
    evidence.voxel_exponent, evidence.voxel_hist, evidence.regions, evidence.outside_retina = (
        _voxel_summary(anomaly, retina, codes, n_codes, n_bins))
    if codes.any():
        evidence.volume_hits, evidence.bscan_hits, evidence.patch_hits = _annotation_hits(
            files, volume_id, codes, bscans["bscan"].to_numpy(np.int64), patches, n_codes)
    return evidence


@dataclass
class LevelTables:
    """Count tables of the evaluated volumes: ``tables[level][marker]``, PRO regions by marker."""

    tables: dict[str, dict[str, ScoreCounts | ScoreSamples]]
    regions: dict[str, RegionCounts]
    voxel_exponent: int


def _exact_tables(scores: list[np.ndarray], hits: list[np.ndarray], markers: MarkerCodes,
                  keep: list[bool]) -> dict[str, ScoreSamples]:
    """Tables of one exact level: positive = holds the marker, negative = holds no marker."""
    volume = np.concatenate([np.full(len(s), i) for i, s in enumerate(scores)])
    used = np.concatenate([np.full(len(s), k, dtype=bool) for s, k in zip(scores, keep)])
    all_scores, all_hits = np.concatenate(scores), np.concatenate(hits)
    tables = {}
    for code, name in enumerate(markers.table_names()):
        positive, negative = all_hits[:, code], ~all_hits[:, 0]
        selected = used & (positive | negative)
        tables[name] = ScoreSamples(all_scores[selected], positive[selected], volume[selected],
                                    len(scores))
    return tables


def _volume_tables(evidence: list[VolumeEvidence], markers: MarkerCodes) -> dict[str, ScoreSamples]:
    """Pooled: diseased vs healthy label. Per marker: holds it vs healthy and unannotated."""
    scores = np.array([e.score for e in evidence])
    volume = np.arange(len(evidence))
    diseased = np.array([e.label == "diseased" for e in evidence])
    tables = {POOLED: ScoreSamples(scores, diseased, volume, len(evidence))}
    for code, name in enumerate(markers.names, start=1):
        positive = np.array([e.has_truth and e.volume_hits[code] for e in evidence])
        negative = np.array([e.has_truth and not diseased[i] and not e.volume_hits[0]
                             for i, e in enumerate(evidence)])
        selected = positive | negative
        tables[name] = ScoreSamples(scores[selected], positive[selected], volume[selected],
                                    len(evidence))
    return tables


def _voxel_tables(evidence: list[VolumeEvidence], markers: MarkerCodes, exponent: int,
                  n_bins: int) -> tuple[dict[str, ScoreCounts], dict[str, RegionCounts]]:
    hist = np.zeros((len(evidence), markers.n_codes, n_bins))
    region_parts: dict[int, list[RegionCounts]] = {c: [] for c in range(markers.n_codes)}
    for i, e in enumerate(evidence):
        if e.voxel_hist is None:
            continue
        hist[i] = coarsen_histogram(e.voxel_hist, e.voxel_exponent, exponent)
        for code, regions in e.regions.items():
            region_parts[code].append(regions.with_volume(i).coarsened(e.voxel_exponent, exponent))
    grid = bin_edges(exponent, n_bins)
    tables, regions = {}, {}
    for code, name in enumerate(markers.table_names()):
        positive = hist[:, 1:].sum(axis=1) if code == 0 else hist[:, code]
        tables[name] = ScoreCounts(grid, positive, hist[:, 0])
        regions[name] = RegionCounts.concatenate(region_parts[code])
    return tables, regions


def build_tables(evidence: list[VolumeEvidence], markers: MarkerCodes, n_bins: int,
                 voxel_exponent: int) -> LevelTables:
    """Every level's count tables for the evaluated volumes (voxel grid ``2**voxel_exponent``)."""
    keep = [e.has_truth for e in evidence]
    voxel, regions = _voxel_tables(evidence, markers, voxel_exponent, n_bins)
    tables = {
        "voxel": voxel,
        "patch": _exact_tables([e.patch_scores for e in evidence],
                               [e.patch_hits for e in evidence], markers, keep),
        "bscan": _exact_tables([e.bscan_scores for e in evidence],
                               [e.bscan_hits for e in evidence], markers, keep),
        "volume": _volume_tables(evidence, markers),
    }
    return LevelTables(tables, regions, voxel_exponent)


def healthy_thresholds(evidence: list[VolumeEvidence], percentile: float, n_bins: int,
                       voxel_exponent: int) -> dict[str, float]:
    """Per level, the ``percentile`` of healthy scores (voxels: inside the retina, on the grid).

    The voxel threshold is the upper edge of the grid bin holding the percentile.
    """
    thresholds: dict[str, float] = {}
    hists = [coarsen_histogram(e.voxel_hist.sum(axis=0), e.voxel_exponent, voxel_exponent)
             for e in evidence if e.voxel_hist is not None]
    if hists and np.sum(hists) > 0:
        k = percentile_bin(np.sum(hists, axis=0), percentile)
        thresholds["voxel"] = k * bin_width(voxel_exponent, n_bins)
    for level, values in (("patch", [e.patch_scores for e in evidence]),
                          ("bscan", [e.bscan_scores for e in evidence]),
                          ("volume", [np.array([e.score]) for e in evidence])):
        pooled = np.concatenate(values) if values else np.zeros(0)
        if pooled.size:
            thresholds[level] = float(np.percentile(pooled, percentile))
    return thresholds
