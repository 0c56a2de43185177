"""Exact percentiles (``np.percentile``'s 'linear' method, equal to the last bit), compiled.

``np.percentile`` partitions a copy of the selected voxels; here the two order statistics around
the percentile are found through histograms that narrow down to the bins holding them, without a
copy, in parallel over B-scans, and NumPy's interpolation is applied to them unchanged
(``tests/test_kernels.py`` compares with NumPy on ties, masks and constant data).
"""

from __future__ import annotations

import numpy as np

from octanogan.preprocess.compiled import njit, prange


def percentile(values: np.ndarray, q: float, mask: np.ndarray) -> np.float32:
    """``np.percentile(values[mask], q)`` (a float32 scalar) of float32 ``values [B, ...]``."""
    virtual, below, above = _around(values, np.array([q], dtype=np.float64), mask)
    return _lerp(below[0], above[0], float(virtual[0] - np.floor(virtual[0])))


def percentiles(values: np.ndarray, q: tuple[float, ...], mask: np.ndarray) -> np.ndarray:
    """``np.percentile(values[mask], list(q))`` (float64, as NumPy returns it for a list) of
    float32 ``values [B, ...]``."""
    virtual, below, above = _around(values, np.asarray(q, dtype=np.float64), mask)
    gamma = virtual - np.floor(virtual)  # an array gamma: float64 arithmetic
    difference = above - below  # float32, times a float64 weight
    return np.where(gamma >= 0.5, above - difference * (1 - gamma), below + difference * gamma)


def _around(values: np.ndarray, q: np.ndarray, mask: np.ndarray):
    """For each percentile ``q`` of all of ``values[mask]``: NumPy's virtual index and the two
    order statistics around it."""
    rows, chosen = _rows(values), _rows(mask)
    count = int(_counts(chosen).sum())
    virtual = _virtual_indexes(np.full(len(q), count), q / 100)
    if not np.isfinite(virtual).all():
        raise ValueError("a percentile of no values")
    pairs = [_volume_select(rows, chosen, int(np.floor(v)), min(int(np.floor(v)) + 1, count - 1))
             for v in virtual]
    return (virtual, np.array([p[0] for p in pairs], dtype=rows.dtype),
            np.array([p[1] for p in pairs], dtype=rows.dtype))


def per_row(values: np.ndarray, q: float, mask: np.ndarray | None = None) -> np.ndarray:
    """``np.percentile(values[b][mask[b]], q)`` for every ``b`` (float32 ``[B]``; NaN where
    ``mask[b]`` is empty) of float32 ``values [B, ...]``, B-scans in parallel."""
    rows = _rows(values)
    mask = np.ones(rows.shape, dtype=bool) if mask is None else _rows(mask)
    virtual = _virtual_indexes(_counts(mask), np.float64(q) / 100)
    ranks = np.where(np.isfinite(virtual), np.floor(np.nan_to_num(virtual)), -1).astype(np.int64)
    below, above = _order_statistics(rows, mask, ranks)
    out = np.full(len(rows), np.nan, dtype=np.float32)
    for b in np.flatnonzero(np.isfinite(virtual)):
        out[b] = _lerp(below[b], above[b], float(virtual[b] - np.floor(virtual[b])))
    return out


def _rows(array: np.ndarray) -> np.ndarray:
    """``array`` as contiguous rows, one per B-scan (float arrays as float32)."""
    array = np.asarray(array)
    if array.dtype != np.bool_:
        array = array.astype(np.float32, copy=False)
    return np.ascontiguousarray(array).reshape(len(array), -1)


def _lerp(below: np.float32, above: np.float32, gamma: float) -> np.float32:
    """NumPy's ``_lerp`` of two float32 order statistics with a Python-float (weak) weight."""
    difference = above - below
    return above - difference * (1 - gamma) if gamma >= 0.5 else below + difference * gamma


def _virtual_indexes(counts: np.ndarray, quantile: np.ndarray | np.float64) -> np.ndarray:
    """NumPy's 'linear' virtual index ``(n - 1) q``, clipped as NumPy clips it; NaN where a
    count is 0."""
    virtual = (counts - 1) * quantile
    virtual = np.where(virtual >= counts - 1, counts - 1, np.maximum(virtual, 0.0))
    return np.where(counts > 0, virtual, np.nan)


@njit(parallel=True, cache=True)
def _counts(mask: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(mask), dtype=np.int64)
    for b in prange(len(mask)):
        counts[b] = np.count_nonzero(mask[b])
    return counts


_BINS = 1024
#: A window of at most this many values is sorted; a larger one is histogrammed again.
_SORTED = 8192


@njit(cache=True)
def _histogram(values: np.ndarray, mask: np.ndarray, low: float, high: float, counts: np.ndarray,
               smallest: np.ndarray, largest: np.ndarray) -> None:
    """Add ``values[mask]`` within ``[low, high]`` (1-D) to ``len(counts)`` equal bins, with each
    bin's smallest and largest value."""
    scale = len(counts) / (high - low)
    for i in range(values.size):
        value = values[i]
        if mask[i] and low <= value <= high:
            k = min(int((value - low) * scale), len(counts) - 1)
            counts[k] += 1
            smallest[k] = min(smallest[k], value)
            largest[k] = max(largest[k], value)


@njit(cache=True)
def _window(counts: np.ndarray, smallest: np.ndarray, largest: np.ndarray, first: int, second: int):
    """The bins from rank ``first``'s to rank ``second``'s: their value range, how many values
    they hold and how many lie in earlier bins. Binning is monotone, so exactly the values within
    that range fall in these bins."""
    start, seen, before = -1, 0, 0
    for stop in range(len(counts)):
        if start < 0 and seen + counts[stop] > first:
            start, before = stop, seen
        seen += counts[stop]
        if seen > second:
            break
    return smallest[start:stop + 1].min(), largest[start:stop + 1].max(), seen - before, before


@njit(cache=True)
def _sorted_within(values: np.ndarray, mask: np.ndarray, low: float, high: float, size: int) -> np.ndarray:
    """The ``size`` values of ``values[mask]`` within ``[low, high]``, sorted."""
    picked = np.empty(size, dtype=values.dtype)
    j = 0
    for i in range(values.size):
        if mask[i] and low <= values[i] <= high:
            picked[j] = values[i]
            j += 1
    picked.sort()
    return picked


@njit(cache=True)
def _range(values: np.ndarray, mask: np.ndarray):
    low, high = np.inf, -np.inf
    for i in range(values.size):
        if mask[i]:
            low = min(low, values[i])
            high = max(high, values[i])
    return low, high


@njit(cache=True)
def _select(values: np.ndarray, mask: np.ndarray, first: int, second: int):
    """The ``first``-th and ``second``-th smallest (0-based, ``first <= second``) of
    ``values[mask]`` (1-D): the window of bins holding them is binned again while it holds more
    than ``_SORTED`` values, then sorted."""
    low, high = _range(values, mask)
    while low < high:
        counts = np.zeros(_BINS, dtype=np.int64)
        smallest, largest = np.full(_BINS, np.inf), np.full(_BINS, -np.inf)
        _histogram(values, mask, low, high, counts, smallest, largest)
        low, high, size, before = _window(counts, smallest, largest, first, second)
        first, second = first - before, second - before
        if size <= _SORTED:
            picked = _sorted_within(values, mask, low, high, size)
            return picked[first], picked[second]
    return values.dtype.type(low), values.dtype.type(low)


@njit(parallel=True, cache=True)
def _order_statistics(rows: np.ndarray, mask: np.ndarray, rank: np.ndarray):
    """The ``rank[b]``-th and next smallest of ``rows[b][mask[b]]`` (0-based; the next is the
    same where ``rank[b]`` is the last), rows in parallel; rows with ``rank[b] < 0`` are left 0."""
    n = len(rows)
    below = np.zeros(n, dtype=rows.dtype)
    above = np.zeros(n, dtype=rows.dtype)
    for b in prange(n):
        if rank[b] >= 0:
            count = np.count_nonzero(mask[b])
            below[b], above[b] = _select(rows[b], mask[b], rank[b], min(rank[b] + 1, count - 1))
    return below, above


@njit(parallel=True, cache=True)
def _volume_select(rows: np.ndarray, mask: np.ndarray, first: int, second: int):
    """:func:`_select` over all rows together, each histogram filled row by row in parallel."""
    n = len(rows)
    lows, highs = np.empty(n), np.empty(n)
    for b in prange(n):
        lows[b], highs[b] = _range(rows[b], mask[b])
    low, high = lows.min(), highs.max()
    while low < high:
        counts = np.zeros((n, _BINS), dtype=np.int64)
        smallest, largest = np.full((n, _BINS), np.inf), np.full((n, _BINS), -np.inf)
        for b in prange(n):
            _histogram(rows[b], mask[b], low, high, counts[b], smallest[b], largest[b])
        total, least, most = counts[0].copy(), smallest[0].copy(), largest[0].copy()
        for b in range(1, n):
            total += counts[b]
            least = np.minimum(least, smallest[b])
            most = np.maximum(most, largest[b])
        low, high, size, before = _window(total, least, most, first, second)
        first, second = first - before, second - before
        if size <= _SORTED:
            picked = _sorted_within(rows.reshape(-1), mask.reshape(-1), low, high, size)
            return picked[first], picked[second]
    return rows.dtype.type(low), rows.dtype.type(low)

