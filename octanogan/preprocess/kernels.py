"""Compiled loops of preprocessing (numba), each the exact equivalent of a NumPy/SciPy expression.

Preprocessing runs on every ``extract``, ``score`` and ``predict``; written as whole-volume NumPy
and SciPy calls it cost more than encoder scoring itself (issue 19, docs/benchmarks.md). Each
kernel here does one such expression's arithmetic in the same order, so results are equal to the
last bit (``tests/test_kernels.py`` checks each against the expression it replaces), and runs
B-scans (or image rows) in parallel on ``NUMBA_NUM_THREADS`` threads, or ``OMP_NUM_THREADS`` where
only that is set. Kernels are compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange


def _follow_omp_num_threads() -> None:
    """Use ``OMP_NUM_THREADS`` threads where it is set and ``NUMBA_NUM_THREADS`` is not: jobs
    that share a machine (and torchrun, which sets it to 1 per rank) limit torch that way."""
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if "NUMBA_NUM_THREADS" not in os.environ and wanted.isdigit() and int(wanted) > 0:
        numba.set_num_threads(min(int(wanted), numba.config.NUMBA_NUM_THREADS))


_follow_omp_num_threads()


def gaussian_filter(volume: np.ndarray, sigma_rows: float, sigma_columns: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(volume, (0, sigma_rows, sigma_columns))`` of a float32
    volume ``[B, H, W]`` (mode ``reflect``, truncate 4): rows first, each pass rounded to float32."""
    out = np.ascontiguousarray(volume, dtype=np.float32)
    if sigma_rows > 0:
        out = _correlate_rows(out, gaussian_weights(sigma_rows))
    if sigma_columns > 0:
        out = _correlate_columns(out, gaussian_weights(sigma_columns))
    return out


def gaussian_weights(sigma: float) -> np.ndarray:
    """Half of SciPy's Gaussian kernel (truncate 4), from the centre out: ``w[0]`` is the centre."""
    radius = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return (phi / phi.sum())[radius:].copy()


@njit(cache=True, inline="always")
def _reflect(index: int, length: int) -> int:
    """SciPy's ``reflect`` extension (``d c b a | a b c d | d c b a``), for any distance."""
    index = index % (2 * length)
    return 2 * length - 1 - index if index >= length else index


@njit(parallel=True, cache=True)
def _correlate_rows(volume: np.ndarray, half: np.ndarray) -> np.ndarray:  # pragma: no cover
    """A symmetric kernel along axis 1, summed as SciPy's ``correlate1d`` sums it (in float64,
    outermost taps first); output rows in parallel."""
    n, height, width = volume.shape
    radius = len(half) - 1
    out = np.empty_like(volume)
    for line in prange(n * height):
        b, y = line // height, line % height
        acc = np.empty(width)
        for x in range(width):
            acc[x] = np.float64(volume[b, y, x]) * half[0]
        for j in range(radius, 0, -1):
            above, below = _reflect(y - j, height), _reflect(y + j, height)
            for x in range(width):
                acc[x] += (np.float64(volume[b, above, x]) + np.float64(volume[b, below, x])) * half[j]
        for x in range(width):
            out[b, y, x] = acc[x]
    return out


@njit(parallel=True, cache=True)
def _correlate_columns(volume: np.ndarray, half: np.ndarray) -> np.ndarray:  # pragma: no cover
    """A symmetric kernel along axis 2, summed as SciPy's ``correlate1d`` sums it; image rows in
    parallel."""
    n, height, width = volume.shape
    radius = len(half) - 1
    out = np.empty_like(volume)
    for row in prange(n * height):
        b, y = row // height, row % height
        line = np.empty(width + 2 * radius)  # the row, extended by reflection
        for x in range(width):
            line[x + radius] = volume[b, y, x]
        for i in range(radius):
            line[i] = volume[b, y, _reflect(i - radius, width)]
            line[width + radius + i] = volume[b, y, _reflect(width + i, width)]
        acc = np.empty(width)
        for x in range(width):
            acc[x] = line[x + radius] * half[0]
        for j in range(radius, 0, -1):
            for x in range(width):
                acc[x] += (line[x + radius - j] + line[x + radius + j]) * half[j]
        for x in range(width):
            out[b, y, x] = acc[x]
    return out


@njit(parallel=True, cache=True)
def min_cost_path_rows(cost: np.ndarray, max_step: int, step_cost: float) -> np.ndarray:  # pragma: no cover
    """Dynamic programming of ``paths.min_cost_paths`` (see there), one B-scan per thread.

    Predecessors are tried straight, then one row down and up, then two, ...; the first minimum
    wins (strict ``<``), as ``np.argmin`` over that order does. Sums are float64.
    """
    n, height, width = cost.shape
    reach = min(max_step, height - 1)
    rows = np.empty((n, width), dtype=np.int64)
    for b in prange(n):
        total = np.empty(height)
        update = np.empty(height)
        back = np.empty((width, height), dtype=np.int8)  # row offset of each predecessor
        for y in range(height):
            total[y] = cost[b, y, 0]
        for x in range(1, width):
            for y in range(height):
                best = total[y]
                step = 0
                for s in range(1, reach + 1):
                    penalty = step_cost * (s - 1)
                    for offset in (-s, s):
                        source = y + offset
                        if 0 <= source < height and total[source] + penalty < best:
                            best = total[source] + penalty
                            step = offset
                update[y] = best + cost[b, y, x]
                back[x, y] = step
            total, update = update, total
        row = np.argmin(total)
        rows[b, width - 1] = row
        for x in range(width - 1, 0, -1):
            row = row + back[x, row]
            rows[b, x - 1] = row
    return rows


@njit(parallel=True, cache=True)
def shift_columns(data: np.ndarray, shifts: np.ndarray, fill) -> np.ndarray:  # pragma: no cover
    """``out[b, y, w] = data[b, y - shifts[b, w], w]``, ``fill`` where that row lies outside."""
    n, height, width = data.shape
    out = np.empty_like(data)
    for b in prange(n):
        for y in range(height):
            for w in range(width):
                source = y - shifts[b, w]
                out[b, y, w] = data[b, source, w] if 0 <= source < height else fill
    return out


def percentile(values: np.ndarray, q: float, mask: np.ndarray) -> np.float32:
    """``np.percentile(values[mask], q)`` (a float32 scalar) of float32 ``values [B, ...]``."""
    count = int(_counts(_rows(mask)).sum())
    virtual = _virtual_indexes(np.array([count]), np.float64(q) / 100)[0]
    below, above = _volume_order_statistics(_rows(values), _rows(mask), _neighbours(virtual))
    return _lerp(below[0], above[0], float(virtual - np.floor(virtual)))


def percentiles(values: np.ndarray, q: tuple[float, ...], mask: np.ndarray) -> np.ndarray:
    """``np.percentile(values[mask], list(q))`` (float64, as NumPy returns it for a list) of
    float32 ``values [B, ...]``."""
    count = int(_counts(_rows(mask)).sum())
    virtual = _virtual_indexes(np.full(len(q), count), np.asarray(q, dtype=np.float64) / 100)
    ranks = np.concatenate([_neighbours(v) for v in virtual])
    below, above = _volume_order_statistics(_rows(values), _rows(mask), ranks)
    gamma = virtual - np.floor(virtual)  # an array gamma: float64 arithmetic
    difference = above - below  # float32, times a float64 weight
    return np.where(gamma >= 0.5, above - difference * (1 - gamma), below + difference * gamma)


def percentiles_per_row(values: np.ndarray, q: float, mask: np.ndarray | None = None) -> np.ndarray:
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


def _neighbours(virtual: float) -> np.ndarray:
    """The ranks of the two order statistics around a virtual index."""
    if not np.isfinite(virtual):
        raise ValueError("a percentile of no values")
    rank = int(np.floor(virtual))
    return np.array([rank, rank + 1], dtype=np.int64)


@njit(parallel=True, cache=True)
def _counts(mask: np.ndarray) -> np.ndarray:  # pragma: no cover
    counts = np.zeros(len(mask), dtype=np.int64)
    for b in prange(len(mask)):
        counts[b] = np.count_nonzero(mask[b])
    return counts


_BINS = 1024
#: A window of at most this many values is sorted; a larger one is histogrammed again.
_SORTED = 8192


@njit(cache=True)
def _histogram(values: np.ndarray, mask: np.ndarray, low: float, high: float, counts: np.ndarray,
               smallest: np.ndarray, largest: np.ndarray) -> None:  # pragma: no cover
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
def _window(counts: np.ndarray, smallest: np.ndarray, largest: np.ndarray, first: int, second: int):  # pragma: no cover
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
def _sorted_within(values: np.ndarray, mask: np.ndarray, low: float, high: float, size: int) -> np.ndarray:  # pragma: no cover
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
def _range(values: np.ndarray, mask: np.ndarray):  # pragma: no cover
    low, high = np.inf, -np.inf
    for i in range(values.size):
        if mask[i]:
            low = min(low, values[i])
            high = max(high, values[i])
    return low, high


@njit(cache=True)
def _select(values: np.ndarray, mask: np.ndarray, first: int, second: int):  # pragma: no cover
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
def _order_statistics(rows: np.ndarray, mask: np.ndarray, rank: np.ndarray):  # pragma: no cover
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
def _volume_select(rows: np.ndarray, mask: np.ndarray, first: int, second: int):  # pragma: no cover
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


def _volume_order_statistics(rows: np.ndarray, mask: np.ndarray, ranks: np.ndarray):
    """For pairs of ``ranks`` (``[r0, r0 + 1, r1, r1 + 1, ...]``), the order statistics of all
    of ``rows[mask]`` (a rank past the last gives the last), as ``(below, above)`` per pair."""
    last = int(np.count_nonzero(mask)) - 1
    pairs = [_volume_select(rows, mask, int(ranks[i]), min(int(ranks[i + 1]), last))
             for i in range(0, len(ranks), 2)]
    return (np.array([p[0] for p in pairs], dtype=rows.dtype),
            np.array([p[1] for p in pairs], dtype=rows.dtype))


@njit(parallel=True, cache=True)
def scale_intensity(values: np.ndarray, low: np.float32, scale: np.float32) -> np.ndarray:  # pragma: no cover
    """``clip(nan_to_num((values - low) * scale - 1, nan=-1, posinf=1, neginf=-1), -1, 1)`` in
    float32, as NumPy computes it."""
    flat = values.reshape(-1)
    out = np.empty(flat.size, dtype=np.float32)
    one = np.float32(1.0)
    for i in prange(flat.size):
        value = (flat[i] - low) * scale - one
        if np.isnan(value):
            value = -one
        out[i] = min(max(value, -one), one)
    return out.reshape(values.shape)


@njit(parallel=True, cache=True)
def ilm_cost(edges: np.ndarray, smooth: np.ndarray, tissue_level: np.ndarray, tissue_rows: int,
             border: int) -> np.ndarray:  # pragma: no cover
    """Cost ``float32 [B, H-1, W]`` of the ILM path (``boundaries._ilm_cost``): ``1 - edges``
    where rows ``0..y`` of the column hold at most ``tissue_rows`` pixels of ``smooth`` above
    ``tissue_level [B, W]``, else 1; the first ``border`` rows cost 1."""
    n, rows, width = edges.shape
    out = np.empty(edges.shape, dtype=np.float32)
    one = np.float32(1.0)
    for b in prange(n):
        tissue = np.zeros(width, dtype=np.int32)
        for y in range(rows):
            for x in range(width):
                tissue[x] += smooth[b, y, x] > tissue_level[b, x]
                out[b, y, x] = one - edges[b, y, x] if tissue[x] <= tissue_rows and y >= border else one
    return out


@njit(parallel=True, cache=True)
def divide_rows(values: np.ndarray, top: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``clip(values[b] / top[b], 0, 1)`` (float32), 0 for the B-scans where ``top[b] > 0``
    does not hold."""
    out = np.zeros(values.shape, dtype=np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    for b in prange(len(values)):
        if top[b] > 0:
            out[b] = np.minimum(np.maximum(values[b] / top[b], zero), one)
    return out


@njit(parallel=True, cache=True)
def band_cost(unit: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``1 - unit`` on rows ``first[b, w] .. last[b, w]`` of each column, 2 elsewhere (float32)."""
    n, height, width = unit.shape
    out = np.empty(unit.shape, dtype=np.float32)
    one, outside = np.float32(1.0), np.float32(2.0)
    for b in prange(n):
        for y in range(height):
            for x in range(width):
                inside = first[b, x] <= y <= last[b, x]
                out[b, y, x] = one - unit[b, y, x] if inside else outside
    return out
