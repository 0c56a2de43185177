"""Compiled loops of preprocessing (numba), each the exact equivalent of a NumPy/SciPy expression.

Preprocessing runs on every ``extract``, ``score`` and ``predict``; written as whole-volume NumPy
and SciPy calls it cost more than encoder scoring itself (issue 19, docs/benchmarks.md). Each
kernel here does one such expression's arithmetic in the same order, so results are equal to the
last bit (``tests/test_kernels.py`` checks each against the expression it replaces), and runs
B-scans (or image rows) in parallel (threads: ``compiled.py``). Kernels are compiled on first use
and cached on disk (``cache=True``). Percentiles have their own module (``percentiles.py``).
"""

from __future__ import annotations

import numpy as np

from octanogan.preprocess.compiled import njit, prange


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
def _correlate_rows(volume: np.ndarray, half: np.ndarray) -> np.ndarray:
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
def _correlate_columns(volume: np.ndarray, half: np.ndarray) -> np.ndarray:
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
def min_cost_path_rows(cost: np.ndarray, max_step: int, step_cost: float) -> np.ndarray:
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
def shift_columns(data: np.ndarray, shifts: np.ndarray, fill) -> np.ndarray:
    """``out[b, y, w] = data[b, y - shifts[b, w], w]``, ``fill`` where that row lies outside."""
    n, height, width = data.shape
    out = np.empty_like(data)
    for b in prange(n):
        for y in range(height):
            for w in range(width):
                source = y - shifts[b, w]
                out[b, y, w] = data[b, source, w] if 0 <= source < height else fill
    return out


@njit(parallel=True, cache=True)
def scale_intensity(values: np.ndarray, low: np.float32, scale: np.float32) -> np.ndarray:
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
             border: int) -> np.ndarray:
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
def divide_rows(values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``clip(values[b] / top[b], 0, 1)`` (float32), 0 for the B-scans where ``top[b] > 0``
    does not hold."""
    out = np.zeros(values.shape, dtype=np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    for b in prange(len(values)):
        if top[b] > 0:
            out[b] = np.minimum(np.maximum(values[b] / top[b], zero), one)
    return out


@njit(parallel=True, cache=True)
def band_cost(unit: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
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
