"""Metric rows (docs/formats.md) of one level and marker, with bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np

from octanogan.evaluation.bootstrap import chunks, percentile_interval
from octanogan.evaluation.counts import RegionCounts, ScoreCounts, ScoreSamples
from octanogan.evaluation.metrics import auroc, average_precision, operating_point

ROW_COLUMNS = ("level", "marker", "metric", "operating_point", "value", "ci_low", "ci_high",
               "n_pos", "n_neg")

MetricKey = tuple[str, str]  # (metric, operating point); "" for threshold-free metrics


def table_metrics(counts: ScoreCounts, thresholds: dict[str, float],
                  weights: np.ndarray | None = None,
                  regions: RegionCounts | None = None) -> tuple[dict[MetricKey, np.ndarray], np.ndarray]:
    """Every metric of one table, for the full set (no weights) or each resample ``[R, V]``.

    Returns the metrics and, per resample, whether it holds both classes (others are skipped).
    """
    tally = counts.totals(weights)
    both_classes = (tally.n_pos > 0) & (tally.n_neg > 0)
    values: dict[MetricKey, np.ndarray] = {
        ("auroc", ""): auroc(tally),
        ("ap", ""): average_precision(tally),
    }
    for name, threshold in thresholds.items():
        k = counts.threshold_bin(threshold)
        if regions is not None and regions.n_regions:
            values[("pro", name)] = regions.pro(k, weights)
        for metric, value in operating_point(tally, k).items():
            values[(metric, name)] = value
    return values, both_classes


def metric_rows(level: str, marker: str, table: ScoreCounts | ScoreSamples,
                thresholds: dict[str, float], weights: np.ndarray,
                regions: RegionCounts | None = None,
                confidence: float = 0.95) -> list[dict[str, object]]:
    """One row per metric: point estimate on all volumes, percentile CI over ``weights``.

    Returns no rows when the evaluated set lacks positives or negatives for this table.
    """
    n_pos, n_neg = table.n_pos, table.n_neg
    if n_pos == 0 or n_neg == 0:
        return []
    point, _ = table_metrics(table.point(), thresholds, None, regions)
    resampled = table.resampling(list(thresholds.values()))
    samples: dict[MetricKey, list[np.ndarray]] = {key: [] for key in point}
    for part in chunks(len(weights), len(resampled.grid)):
        values, both_classes = table_metrics(resampled, thresholds, weights[part], regions)
        for key, value in values.items():
            samples[key].append(np.where(both_classes, value, np.nan))
    rows = []
    for (metric, operating), value in point.items():
        drawn = np.concatenate(samples[(metric, operating)]) if len(weights) else np.zeros(0)
        low, high = percentile_interval(drawn, confidence)
        rows.append({
            "level": level, "marker": marker, "metric": metric, "operating_point": operating,
            "value": float(value), "ci_low": low, "ci_high": high,
            "n_pos": regions.n_regions if metric == "pro" and regions is not None else n_pos,
            "n_neg": n_neg,
        })
    return rows
