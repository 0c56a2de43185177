"""What in a B-scan is not image: constant fill from export and registration.

Exports carry registration fill wedges in their corners (exact 0 or exact 255, as in Kermany
OCT2017), zero padding and letterboxing. Such fill is exact, solid and touches the image border;
speckle never is. Resampling and compression blur the edge of bright fill into a thin line just
short of the maximum (a "frame line" along a crop's border); that rim is fill too. Bright fill is
kept out of the intensity scale and shown as background, and no boundary point is measured on
fill (docs/preprocessing.md).

The search is compiled (numba), one B-scan per thread: it starts from the border and visits only
regions that touch it.
"""

from __future__ import annotations

import numpy as np

from octanogan.preprocess.compiled import njit, prange

#: Side of the square that fill must fill everywhere (speckle-sized runs of the value do not).
_SOLID_PIXELS = 5
#: Smallest fill region, as a fraction of the B-scan.
_MIN_FRACTION = 0.002
#: Pixels connected to bright fill and within this fraction of the B-scan's grey range below its
#: maximum are the fill's blurred rim (a bright line that makes a false ILM edge), not image.
_RIM_TOLERANCE = 0.02


def fill_mask(raw: np.ndarray) -> np.ndarray:
    """Bool ``[B, H, W]``: solid regions of each B-scan's exact minimum or maximum that touch its
    border, with the near-maximum rim of bright regions (regions never connect across B-scans).

    A region is solid where it holds a ``_SOLID_PIXELS`` square around each of its "core" pixels;
    regions of 4-connected cores that touch the border and hold ``_MIN_FRACTION`` of the B-scan
    (at least 64 pixels) are fill, with the pixels of the value within half a square of them.
    """
    raw = np.ascontiguousarray(raw)
    low, high = _extremes(raw)
    minimum_area = int(np.ceil(max(64, _MIN_FRACTION * raw[0].size)))
    return _fill(raw, np.stack([low, high], axis=1), _near_maximum_level(low, high), minimum_area,
                 _SOLID_PIXELS // 2)


def bright_fill(raw: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """The part of ``fill`` at or near each B-scan's maximum (it would set the intensity scale)."""
    raw = np.asarray(raw)
    return fill & (raw >= _near_maximum_level(*_extremes(raw))[:, None, None])


def _extremes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each B-scan's minimum and maximum."""
    flat = raw.reshape(len(raw), -1)
    return flat.min(axis=1), flat.max(axis=1)


def _near_maximum_level(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per B-scan, the level ``_RIM_TOLERANCE`` of the grey range (``low`` to ``high``) below the
    maximum."""
    return high - _RIM_TOLERANCE * (high - low)


@njit(parallel=True, cache=True)
def _fill(raw, extremes, near_level, minimum_area: int, half: int) -> np.ndarray:
    n, height, width = raw.shape
    out = np.zeros(raw.shape, dtype=np.bool_)
    for b in prange(n):
        for extreme in extremes[b]:
            exact = raw[b] == extreme
            if np.count_nonzero(exact) >= minimum_area:
                kept = _border_regions(_square_counts(exact, half) == (2 * half + 1) ** 2, minimum_area)
                out[b] |= (_square_counts(kept, half) > 0) & exact
        near = raw[b] >= near_level[b]
        out[b] |= _connected_to(near, out[b] & near)
    return out


@njit(cache=True)
def _square_counts(mask: np.ndarray, half: int) -> np.ndarray:
    """Set pixels in the ``(2 half + 1)``-square around each pixel of a 2-D mask (the edge
    repeats beyond the border)."""
    height, width = mask.shape
    down = np.zeros((height, width), dtype=np.int32)
    for y in range(height):
        for d in range(-half, half + 1):
            source = min(max(y + d, 0), height - 1)
            for x in range(width):
                down[y, x] += mask[source, x]
    out = np.empty((height, width), dtype=np.int32)
    for y in range(height):
        for x in range(width):
            total = 0
            for d in range(-half, half + 1):
                total += down[y, min(max(x + d, 0), width - 1)]
            out[y, x] = total
    return out


@njit(cache=True)
def _border_regions(cores: np.ndarray, minimum_area: int) -> np.ndarray:
    """The 4-connected regions of ``cores`` that touch the border and hold ``minimum_area``."""
    height, width = cores.shape
    seen = np.zeros((height, width), dtype=np.bool_)
    kept = np.zeros((height, width), dtype=np.bool_)
    region = np.empty(height * width, dtype=np.int64)
    for start in range(height * width):
        y, x = start // width, start % width
        if (0 < y < height - 1 and 0 < x < width - 1) or not cores[y, x] or seen[y, x]:
            continue
        seen[y, x] = True
        region[0], size, done = start, 1, 0
        while done < size:
            y, x = region[done] // width, region[done] % width
            done += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and cores[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    region[size] = ny * width + nx
                    size += 1
        if size >= minimum_area:
            for i in range(size):
                kept[region[i] // width, region[i] % width] = True
    return kept


@njit(cache=True)
def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` 8-connected within it to a ``seeds`` pixel."""
    height, width = mask.shape
    found = seeds.copy()
    queue = np.empty(height * width, dtype=np.int64)
    size = 0
    for i in range(height * width):
        if found[i // width, i % width]:
            queue[size] = i
            size += 1
    done = 0
    while done < size:
        y, x = queue[done] // width, queue[done] % width
        done += 1
        for ny in range(max(y - 1, 0), min(y + 2, height)):
            for nx in range(max(x - 1, 0), min(x + 2, width)):
                if mask[ny, nx] and not found[ny, nx]:
                    found[ny, nx] = True
                    queue[size] = ny * width + nx
                    size += 1
    return found
