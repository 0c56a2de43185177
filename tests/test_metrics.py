"""Count-based metrics against scikit-learn, binning, bootstrap, PRO and the patch rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

from octanogan.evaluation import metrics
from octanogan.evaluation.binning import (
    bin_edges,
    bin_indices,
    coarsen_histogram,
    range_exponent,
)
from octanogan.evaluation.bootstrap import percentile_interval, resample_weights
from octanogan.evaluation.counts import RESAMPLING_BINS, RegionCounts, ScoreCounts, ScoreSamples
from octanogan.evaluation.curves import thin
from octanogan.evaluation.levels import patch_hits, window_sums
from octanogan.evaluation.rows import metric_rows


def tied_scores(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Integer scores (many ties) whose positives tend to score higher."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 12, n).astype(float)
    positive = rng.random(n) < 0.1 + 0.06 * scores
    return scores, positive


def exact_tally(scores: np.ndarray, positive: np.ndarray) -> metrics.Tally:
    return ScoreCounts.from_scores(scores, positive, np.zeros(len(scores), int)).totals()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_grid_matches_sklearn_with_ties(seed: int) -> None:
    scores, positive = tied_scores(seed)
    tally = exact_tally(scores, positive)
    assert metrics.auroc(tally) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)
    assert metrics.average_precision(tally) == pytest.approx(
        average_precision_score(positive, scores), abs=1e-12)
    fpr, tpr = metrics.roc_curve(tally)
    sk_fpr, sk_tpr, _ = roc_curve(positive, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_metrics_vectorise_over_leading_axes() -> None:
    scores, positive = tied_scores(0)
    tallies = [exact_tally(scores, positive & (np.arange(len(scores)) % 3 != i)) for i in range(3)]
    stacked = metrics.Tally.of(np.stack([t.pos for t in tallies]), np.stack([t.neg for t in tallies]))
    np.testing.assert_allclose(metrics.auroc(stacked), [float(metrics.auroc(t)) for t in tallies])
    np.testing.assert_allclose(metrics.average_precision(stacked),
                               [float(metrics.average_precision(t)) for t in tallies])


def test_binned_equals_sklearn_when_scores_lie_on_the_grid() -> None:
    rng = np.random.default_rng(3)
    exponent, n_bins = 0, 64
    scores = bin_edges(exponent, n_bins)[rng.integers(0, n_bins, 2000)]
    positive = rng.random(2000) < scores
    bins = bin_indices(scores, exponent, n_bins)
    tally = metrics.Tally.of(np.bincount(bins[positive], minlength=n_bins),
                             np.bincount(bins[~positive], minlength=n_bins))
    assert metrics.auroc(tally) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)
    assert metrics.average_precision(tally) == pytest.approx(
        average_precision_score(positive, scores), abs=1e-12)


def test_binned_close_to_sklearn_for_continuous_scores() -> None:
    rng = np.random.default_rng(4)
    scores = rng.gamma(2.0, 0.1, 50_000)
    positive = rng.random(50_000) < np.clip(scores, 0, 1)
    exponent = range_exponent(scores.max())
    bins = bin_indices(scores, exponent, 2048)
    tally = metrics.Tally.of(np.bincount(bins[positive], minlength=2048),
                             np.bincount(bins[~positive], minlength=2048))
    assert abs(metrics.auroc(tally) - roc_auc_score(positive, scores)) < 1e-3
    assert abs(metrics.average_precision(tally) - average_precision_score(positive, scores)) < 1e-3


def test_range_exponent_and_coarsening_are_exact() -> None:
    assert range_exponent(0.3) == -1  # 0.3 < 2**-1
    assert range_exponent(0.5) == 0  # the maximum must lie below the grid's top
    assert 0.5 < 2.0 ** range_exponent(0.5)
    rng = np.random.default_rng(5)
    values = rng.random(1000) * 0.4
    fine, coarse = range_exponent(values.max()), range_exponent(values.max()) + 3
    direct = np.bincount(bin_indices(values, coarse, 100), minlength=100)
    merged = coarsen_histogram(np.bincount(bin_indices(values, fine, 100), minlength=100), fine, coarse)
    np.testing.assert_array_equal(merged, direct)


def test_operating_point_matches_confusion_matrix() -> None:
    scores, positive = tied_scores(6)
    counts = ScoreCounts.from_scores(scores, positive, np.zeros(len(scores), int))
    threshold = 7.0
    point = metrics.operating_point(counts.totals(), counts.threshold_bin(threshold))
    tn, fp, fn, tp = confusion_matrix(positive, scores >= threshold).ravel()
    assert point["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert point["recall"] == point["sensitivity"]
    assert point["specificity"] == pytest.approx(tn / (tn + fp))
    assert point["precision"] == pytest.approx(tp / (tp + fp))
    assert point["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_youden_bin_is_the_best_roc_point() -> None:
    scores, positive = tied_scores(7)
    counts = ScoreCounts.from_scores(scores, positive, np.zeros(len(scores), int))
    k = metrics.youden_bin(counts.totals())
    fpr, tpr, thresholds = roc_curve(positive, scores)
    assert counts.grid[k] == thresholds[np.argmax(tpr - fpr)]


def test_percentile_bin_keeps_the_tail_under_the_allowed_fraction() -> None:
    counts = np.ones(1000)
    k = metrics.percentile_bin(counts, 99.0)
    assert counts[k:].sum() <= 10 < counts[k - 1:].sum()


def test_bootstrap_is_deterministic_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(8)
    n_volumes = 12
    volume = rng.integers(0, n_volumes, 3000)
    scores = rng.normal(size=3000)
    positive = rng.random(3000) < 1 / (1 + np.exp(-2 * scores))
    samples = ScoreSamples(scores, positive, volume, n_volumes)
    weights = resample_weights(n_volumes, 300, seed=1)
    assert weights.sum(axis=1).tolist() == [n_volumes] * 300
    np.testing.assert_array_equal(weights, resample_weights(n_volumes, 300, seed=1))
    assert not np.array_equal(weights, resample_weights(n_volumes, 300, seed=2))
    rows = metric_rows("patch", "pooled", samples, {"fixed": 0.5}, weights)
    again = metric_rows("patch", "pooled", samples, {"fixed": 0.5}, weights)
    assert rows == again
    by_metric = {(r["metric"], r["operating_point"]): r for r in rows}
    assert by_metric[("auroc", "")]["value"] == pytest.approx(roc_auc_score(positive, scores))
    for row in rows:
        assert row["ci_low"] <= row["value"] <= row["ci_high"], row
        assert row["ci_low"] < row["ci_high"]


def test_percentile_interval_needs_enough_finite_samples() -> None:
    assert np.isnan(percentile_interval(np.array([0.5, np.nan]))[0])
    low, high = percentile_interval(np.linspace(0, 1, 1001))
    assert low == pytest.approx(0.025) and high == pytest.approx(0.975)


def test_no_rows_without_positives() -> None:
    samples = ScoreSamples(np.arange(5.0), np.zeros(5, bool), np.zeros(5, int), 1)
    assert metric_rows("patch", "IRF", samples, {}, resample_weights(1, 10, 0)) == []


def test_weighted_totals_equal_counts_of_the_resampled_volumes() -> None:
    scores, positive = tied_scores(9, n=300)
    volume = np.arange(300) % 3
    counts = ScoreSamples(scores, positive, volume, 3).resampling([])
    drawn = np.r_[np.flatnonzero(volume == 0), np.flatnonzero(volume == 0), np.flatnonzero(volume == 2)]
    direct = exact_tally(scores[drawn], positive[drawn])
    weighted = counts.totals(np.array([[2.0, 0.0, 1.0]]))
    assert float(metrics.auroc(weighted)[0]) == pytest.approx(float(metrics.auroc(direct)))
    assert float(metrics.average_precision(weighted)[0]) == pytest.approx(
        float(metrics.average_precision(direct)))


def test_many_distinct_scores_resample_on_quantile_bins_with_exact_thresholds() -> None:
    rng = np.random.default_rng(10)
    n = 3 * RESAMPLING_BINS
    scores = rng.normal(size=n)
    positive = rng.random(n) < 1 / (1 + np.exp(-scores))
    samples = ScoreSamples(scores, positive, np.zeros(n, int), 1)
    binned = samples.resampling([0.123])
    assert len(binned.grid) <= RESAMPLING_BINS + 1 and 0.123 in binned.grid
    exact, coarse = samples.point().totals(), binned.totals(np.ones((1, 1)))
    assert abs(float(metrics.auroc(coarse)[0]) - float(metrics.auroc(exact))) < 1e-3
    k_exact, k_coarse = samples.point().threshold_bin(0.123), binned.threshold_bin(0.123)
    assert metrics.operating_point(coarse, k_coarse)["dice"][0] == pytest.approx(
        float(metrics.operating_point(exact, k_exact)["dice"]))


def test_per_region_overlap_on_a_hand_built_case() -> None:
    # Region 1: four voxels, three in bins >= 2; region 2: two voxels, both below.
    regions_map = np.array([1, 1, 1, 1, 2, 2, 0, 0])
    bins = np.array([0, 2, 3, 3, 0, 1, 3, 3])
    regions = RegionCounts.from_labels(regions_map, bins)
    np.testing.assert_allclose(regions.overlap(2), [0.75, 0.0])
    assert float(regions.pro(2)) == pytest.approx(0.375)
    assert float(regions.pro(0)) == pytest.approx(1.0)
    # Weighting by volume: a second volume whose single region is fully detected.
    other = RegionCounts.from_labels(np.array([1, 1]), np.array([3, 3])).with_volume(1)
    both = RegionCounts.concatenate([regions, other])
    np.testing.assert_allclose(both.pro(2, np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])),
                               [0.375, 1.0, 1.75 / 3])


def test_patch_rule_on_a_flattened_case() -> None:
    codes = np.zeros((2, 16, 16), dtype=np.uint8)
    codes[0, 5, 9] = 1  # one voxel of marker 1
    codes[1, 12:14, 2:4] = 2  # a block of marker 2
    bscan = np.array([0, 0, 0, 0, 1, 1, 1])
    y = np.array([4, 4, 2, 8, 12, 8, 15])
    x = np.array([8, 6, 8, 12, 4, 8, 1])
    hits = patch_hits(codes, bscan, y, x, patch_size=4, n_codes=3)
    # Patch rows y-2..y+1, columns x-2..x+1; brute force for the same rule:
    expected = np.zeros_like(hits)
    for i, (b, r, c) in enumerate(zip(bscan, y, x)):
        window = codes[b, max(r - 2, 0):r + 2, max(c - 2, 0):c + 2]
        expected[i, 1:] = [(window == 1).any(), (window == 2).any()]
        expected[i, 0] = window.any()
    np.testing.assert_array_equal(hits, expected)
    assert hits[:, 1].tolist() == [True, False, False, False, False, False, False]
    assert hits[:, 2].tolist() == [False, False, False, False, True, False, True]
    # The last window is clipped at the B-scan's corner.
    assert window_sums(codes == 2, bscan, y, x, 4).tolist() == [0, 0, 0, 0, 4, 0, 1]


def test_thin_keeps_the_ends_and_at_most_200_points() -> None:
    x = np.linspace(0, 1, 5000) ** 3
    y = np.sqrt(np.linspace(0, 1, 5000))
    tx, ty = thin(x, y)
    assert len(tx) <= 200 and (tx[0], ty[0], tx[-1], ty[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(tx) >= 0)
