"""Detection metrics from positive and negative counts over an ascending grid of scores.

A :class:`Tally` holds ``pos[..., n]`` and ``neg[..., n]``: how many positives and negatives score
in each bin, bins ordered by increasing score. The grid is either the exact distinct scores
(patch, B-scan and volume levels: results equal scikit-learn's) or fixed-width bins (voxel level:
scores in one bin count as tied). Leading axes are independent problems, such as bootstrap
resamples, computed all at once. A sample is called anomalous when its bin is at or above the
threshold bin ``k``, that is when its score is at least ``grid[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is zero."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def tail_sums(counts: np.ndarray) -> np.ndarray:
    """``out[..., k]`` = counts in bins ``k`` and above, with one extra bin ``n`` holding zero."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.zeros(counts.shape[:-1] + (counts.shape[-1] + 1,))
    np.cumsum(counts[..., ::-1], axis=-1, out=out[..., -2::-1])
    return out


@dataclass
class Tally:
    """Counts per bin and their tails, computed once and shared by every metric.

    ``tp[..., k]`` / ``fp[..., k]``: positives / negatives in bins ``k`` and above, i.e. the true
    and false positives at threshold bin ``k`` (``k = n``: nothing called anomalous).
    """

    pos: np.ndarray
    neg: np.ndarray
    tp: np.ndarray
    fp: np.ndarray

    @classmethod
    def of(cls, pos: np.ndarray, neg: np.ndarray) -> Tally:
        pos = np.asarray(pos, dtype=np.float64)
        neg = np.asarray(neg, dtype=np.float64)
        return cls(pos, neg, tail_sums(pos), tail_sums(neg))

    @property
    def n_pos(self) -> np.ndarray:
        return self.tp[..., 0]

    @property
    def n_neg(self) -> np.ndarray:
        return self.fp[..., 0]


def auroc(t: Tally) -> np.ndarray:
    """Area under the ROC curve: P(positive outscores negative), ties counting one half."""
    wins = np.sum(t.neg * (t.tp[..., 1:] + 0.5 * t.pos), axis=-1)
    return _ratio(wins, t.n_pos * t.n_neg)


def average_precision(t: Tally) -> np.ndarray:
    """Average precision: sum over thresholds of (recall gained) x precision (scikit-learn's)."""
    called = t.tp[..., :-1] + t.fp[..., :-1]
    precision = np.divide(t.tp[..., :-1], called, out=np.zeros_like(called), where=called > 0)
    return _ratio(np.sum(t.pos * precision, axis=-1), t.n_pos)


def roc_curve(t: Tally) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` from the highest threshold down, starting at (0, 0); one 1-D problem."""
    keep = np.r_[True, (t.pos + t.neg)[::-1] > 0]  # (0, 0), then every filled bin
    return _ratio(t.fp[::-1][keep], t.n_neg), _ratio(t.tp[::-1][keep], t.n_pos)


def pr_curve(t: Tally) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)`` at every filled bin from the highest threshold down; 1-D."""
    keep = (t.pos + t.neg) > 0
    tp, fp = t.tp[:-1][keep][::-1], t.fp[:-1][keep][::-1]
    return _ratio(tp, t.n_pos), _ratio(tp, tp + fp)


def operating_point(t: Tally, k: int) -> dict[str, np.ndarray]:
    """Sensitivity (= recall), specificity, precision and Dice (= F1) at threshold bin ``k``."""
    tp, fp = t.tp[..., k], t.fp[..., k]
    fn, tn = t.n_pos - tp, t.n_neg - fp
    sensitivity = _ratio(tp, tp + fn)
    return {
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "recall": sensitivity,
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def youden_bin(t: Tally) -> int:
    """Threshold bin maximising TPR - FPR (the highest such bin on ties); one 1-D problem."""
    youden = _ratio(t.tp[:-1], t.n_pos) - _ratio(t.fp[:-1], t.n_neg)
    youden = np.nan_to_num(youden, nan=-np.inf)
    return int(len(youden) - 1 - np.argmax(youden[::-1]))


def percentile_bin(counts: np.ndarray, percentile: float) -> int:
    """Lowest bin ``k`` with at most ``100 - percentile`` % of ``counts`` in bins ``k`` and above.

    On a fixed-width grid this is the upper edge of the bin holding the percentile, so at least
    ``percentile`` % of the counted samples fall below the threshold.
    """
    tails = tail_sums(counts)
    allowed = (1.0 - percentile / 100.0) * tails[0] * (1 + 1e-12)
    return int(np.argmax(tails <= allowed))
