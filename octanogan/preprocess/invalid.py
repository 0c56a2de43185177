"""What in a B-scan is not image: constant fill from export and registration.

Exports carry registration fill wedges in their corners (exact 0 or exact 255, as in Kermany
OCT2017), zero padding and letterboxing. Such fill is exact, solid and touches the image border;
speckle never is. Resampling and compression blur the edge of bright fill into a thin line just
short of the maximum (a "frame line" along a crop's border); that rim is fill too. Bright fill is
kept out of the intensity scale and shown as background, and no boundary point is measured on
fill (docs/preprocessing.md).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from octanogan.preprocess.kernels import square_counts

#: Side of the square that fill must fill everywhere (speckle-sized runs of the value do not).
_SOLID_PIXELS = 5
#: Smallest fill region, as a fraction of the B-scan.
_MIN_FRACTION = 0.002
#: Pixels connected to bright fill and within this fraction of the B-scan's grey range below its
#: maximum are the fill's blurred rim (a bright line that makes a false ILM edge), not image.
_RIM_TOLERANCE = 0.02


def fill_mask(raw: np.ndarray) -> np.ndarray:
    """Bool ``[B, H, W]``: solid regions of each B-scan's exact minimum or maximum that touch its
    border, with the near-maximum rim of bright regions (all B-scans at once; regions never
    connect across B-scans)."""
    raw = np.asarray(raw)
    flat = raw.reshape(len(raw), -1)
    out = np.zeros(raw.shape, dtype=bool)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    minimum_area = max(64, _MIN_FRACTION * flat.shape[1])
    for extreme in (flat.min(axis=1), flat.max(axis=1)):
        exact = raw == extreme[:, None, None]
        if not (exact.reshape(len(raw), -1).sum(axis=1) >= minimum_area).any():
            continue
        cores = square_counts(exact, _SOLID_PIXELS // 2) == _SOLID_PIXELS ** 2  # erosion
        labels, count = ndimage.label(cores, structure=in_plane)
        if not count:
            continue
        border = np.unique(np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(),
                                           labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
        areas = np.bincount(labels.ravel(), minlength=count + 1)
        keep = np.zeros(count + 1, dtype=bool)
        keep[border] = True
        keep &= areas >= minimum_area
        keep[0] = False
        # the erosion trimmed each region's rim by half the square: take it back
        grown = square_counts(keep[labels], _SOLID_PIXELS // 2) > 0
        out |= grown & exact
    return out | _bright_rim(raw, out)


def _near_maximum(raw: np.ndarray) -> np.ndarray:
    """Bool ``[B, H, W]``: pixels within ``_RIM_TOLERANCE`` of the grey range below the maximum."""
    flat = raw.reshape(len(raw), -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    return raw >= (high - _RIM_TOLERANCE * (high - low))[:, None, None]


def _bright_rim(raw: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Near-maximum pixels connected, within their B-scan, to bright ``fill``."""
    near = _near_maximum(raw)
    seeds = fill & near
    if not seeds.any():
        return np.zeros(raw.shape, dtype=bool)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 2)
    labels, _ = ndimage.label(near, structure=in_plane)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[labels[seeds]] = True
    keep[0] = False
    return keep[labels]


def bright_fill(raw: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """The part of ``fill`` at or near each B-scan's maximum (it would set the intensity scale)."""
    return fill & _near_maximum(np.asarray(raw))
