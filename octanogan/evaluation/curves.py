"""ROC and precision-recall curves of the count tables, thinned for curves.json and figures."""

from __future__ import annotations

import numpy as np

from octanogan.evaluation.counts import ScoreCounts
from octanogan.evaluation.metrics import auroc, average_precision, pr_curve, roc_curve

MAX_POINTS = 200


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points, evenly spaced along the curve's length, ends kept."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) <= max_points:
        return x, y
    length = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    targets = np.linspace(0.0, length[-1], max_points)
    index = np.unique(np.searchsorted(length, targets).clip(0, len(x) - 1))
    index[0], index[-1] = 0, len(x) - 1
    return x[index], y[index]


def _point_list(values: np.ndarray) -> list[float | None]:
    return [round(float(v), 6) if np.isfinite(v) else None for v in values]


def table_curves(counts: ScoreCounts) -> tuple[dict[str, object], dict[str, object]]:
    """The ROC (``x`` FPR, ``y`` TPR, ``auc``) and PR (``x`` recall, ``y`` precision, ``ap``) curves."""
    tally = counts.totals()
    fpr, tpr = thin(*roc_curve(tally))
    recall, precision = thin(*pr_curve(tally))
    roc = {"x": _point_list(fpr), "y": _point_list(tpr), "auc": float(auroc(tally))}
    pr = {"x": _point_list(recall), "y": _point_list(precision), "ap": float(average_precision(tally))}
    return roc, pr
