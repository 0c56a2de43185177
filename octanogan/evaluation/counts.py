"""The count tables every metric and every bootstrap resample is computed from.

:class:`ScoreCounts` holds counts per volume and score bin (the voxel level, and every level while
resampling); :class:`ScoreSamples` one row per patch, B-scan or volume, from which exact counts
are made. Keeping counts per volume makes the bootstrap over volumes cheap: a resample is a vector
of volume weights (how often each volume was drawn), and its counts are one matrix product.
:class:`RegionCounts` holds the annotated regions for the per-region overlap (PRO).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octanogan.evaluation.binning import coarsen
from octanogan.evaluation.metrics import Tally

#: Most bins a resampling grid gets: beyond this many distinct scores, bootstrap resamples are
#: counted on quantile bins (point estimates stay exact).
RESAMPLING_BINS = 4096


@dataclass
class ScoreCounts:
    """Positives and negatives per volume over an ascending score grid.

    ``grid[k]`` is the lowest score of bin ``k`` (the exact score on exact grids); ``pos`` and
    ``neg`` are dense ``[n_volumes, n_bins]`` counts.
    """

    grid: np.ndarray
    pos: np.ndarray
    neg: np.ndarray

    @classmethod
    def from_scores(cls, scores: np.ndarray, positive: np.ndarray, volume: np.ndarray,
                    n_volumes: int = 1, grid: np.ndarray | None = None) -> ScoreCounts:
        """Counts of samples on ``grid`` (bin lower edges), by default the exact distinct scores."""
        scores = np.asarray(scores, dtype=np.float64)
        positive = np.asarray(positive, dtype=bool)
        if grid is None:
            grid, bins = np.unique(scores, return_inverse=True)
        else:
            bins = np.clip(np.searchsorted(grid, scores, side="right") - 1, 0, None)
        cell = np.asarray(volume, dtype=np.int64) * len(grid) + bins.ravel()
        size, shape = n_volumes * len(grid), (n_volumes, len(grid))
        return cls(np.asarray(grid, dtype=np.float64),
                   np.bincount(cell[positive], minlength=size).reshape(shape).astype(np.float64),
                   np.bincount(cell[~positive], minlength=size).reshape(shape).astype(np.float64))

    @property
    def n_pos(self) -> int:
        return int(round(self.pos.sum()))

    @property
    def n_neg(self) -> int:
        return int(round(self.neg.sum()))

    def totals(self, weights: np.ndarray | None = None) -> Tally:
        """Counts summed over volumes, or per resample for volume weights ``[R, n_volumes]``."""
        if weights is None:
            return Tally.of(self.pos.sum(axis=0), self.neg.sum(axis=0))
        return Tally.of(weights @ self.pos, weights @ self.neg)

    def threshold_bin(self, threshold: float) -> int:
        """First bin whose scores are all at least ``threshold``."""
        return int(np.searchsorted(self.grid, threshold, side="left"))

    def point(self) -> ScoreCounts:
        """Counts for point estimates and curves (these already are)."""
        return self

    def resampling(self, thresholds: list[float]) -> ScoreCounts:
        """Counts for bootstrap resamples (these already are, thresholds lie on bin edges)."""
        return self


@dataclass
class ScoreSamples:
    """One score, class and volume index per sample (patches, B-scans or volumes)."""

    scores: np.ndarray
    positive: np.ndarray
    volume: np.ndarray
    n_volumes: int

    @property
    def n_pos(self) -> int:
        return int(np.sum(self.positive))

    @property
    def n_neg(self) -> int:
        return int(np.sum(~np.asarray(self.positive, dtype=bool)))

    def point(self) -> ScoreCounts:
        """All samples as one count row on the exact grid (results equal scikit-learn's)."""
        return ScoreCounts.from_scores(self.scores, self.positive, np.zeros(len(self.scores), int))

    def resampling(self, thresholds: list[float]) -> ScoreCounts:
        """Per-volume counts for the bootstrap: exact grid when it has at most
        ``RESAMPLING_BINS`` scores, else quantile bins; ``thresholds`` are always bin edges."""
        grid = np.unique(self.scores)
        if len(grid) > RESAMPLING_BINS:
            quantiles = np.quantile(self.scores, np.linspace(0, 1, RESAMPLING_BINS))
            grid = np.unique(np.r_[quantiles, thresholds])
        return ScoreCounts.from_scores(self.scores, self.positive, self.volume, self.n_volumes, grid)


@dataclass
class RegionCounts:
    """Connected annotated regions and the binned scores of their voxels (for PRO).

    ``volume`` and ``size`` have one entry per region; ``region``, ``bin``, ``count`` one per
    (region, bin) pair holding voxels.
    """

    volume: np.ndarray
    size: np.ndarray
    region: np.ndarray
    bin: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls) -> RegionCounts:
        nothing = np.zeros(0, dtype=np.int64)
        return cls(nothing, nothing, nothing, nothing, nothing)

    @classmethod
    def from_labels(cls, regions: np.ndarray, bins: np.ndarray, volume: int = 0) -> RegionCounts:
        """From a region id per voxel (0: no region, 1..r: regions) and each voxel's bin."""
        regions = np.asarray(regions, dtype=np.int64).ravel()
        inside = regions > 0
        if not inside.any():
            return cls.empty()
        n_regions = int(regions.max())
        n_bins = int(bins.max()) + 1
        pairs, count = np.unique((regions[inside] - 1) * n_bins + np.asarray(bins).ravel()[inside],
                                 return_counts=True)
        size = np.bincount(regions[inside] - 1, minlength=n_regions)
        return cls(np.full(n_regions, volume, dtype=np.int64), size, pairs // n_bins,
                   pairs % n_bins, count)

    @classmethod
    def concatenate(cls, parts: list[RegionCounts]) -> RegionCounts:
        """All regions of ``parts`` (region indices renumbered)."""
        if not parts:
            return cls.empty()
        offsets = np.cumsum([0] + [len(p.size) for p in parts[:-1]])
        return cls(np.concatenate([p.volume for p in parts]),
                   np.concatenate([p.size for p in parts]),
                   np.concatenate([p.region + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.bin for p in parts]),
                   np.concatenate([p.count for p in parts]))

    def with_volume(self, volume: int) -> RegionCounts:
        """The same regions, assigned to volume index ``volume``."""
        return RegionCounts(np.full_like(self.volume, volume), self.size, self.region, self.bin,
                            self.count)

    def coarsened(self, exponent: int, target_exponent: int) -> RegionCounts:
        """The same regions with bins moved onto a coarser grid (see ``binning``)."""
        return RegionCounts(self.volume, self.size, self.region,
                            coarsen(self.bin, exponent, target_exponent), self.count)

    @property
    def n_regions(self) -> int:
        return len(self.size)

    def overlap(self, k: int) -> np.ndarray:
        """Fraction of each region's voxels in bins ``k`` and above (called anomalous)."""
        above = np.bincount(self.region[self.bin >= k], weights=self.count[self.bin >= k],
                            minlength=self.n_regions)
        return above / np.maximum(self.size, 1)

    def pro(self, k: int, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-region overlap: mean region overlap, regions weighted by their volume's weight."""
        if weights is None:
            return np.asarray(np.mean(self.overlap(k)) if self.n_regions else np.nan)
        region_weights = np.asarray(weights, dtype=np.float64)[..., self.volume]
        total = region_weights.sum(axis=-1)
        out = np.full(total.shape, np.nan)
        return np.divide(region_weights @ self.overlap(k), total, out=out, where=total > 0)
