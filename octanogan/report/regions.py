"""Flagged regions: 3D connected components of an anomaly map above the voxel threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Region:
    """One connected region of voxels above the threshold (index ranges are inclusive, 0-based)."""

    bscans: tuple[int, int]
    rows: tuple[int, int]
    columns: tuple[int, int]
    n_voxels: int
    volume_mm3: float
    peak: float
    peak_bscan: int


def voxel_volume_mm3(affine: np.ndarray) -> float:
    """Volume of one voxel in mm^3 (absolute determinant of the affine's 3x3 part)."""
    return float(abs(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3])))


def flagged_regions(anomaly: np.ndarray, threshold: float, affine: np.ndarray,
                    mask: np.ndarray | None = None, top_n: int = 10, min_voxels: int = 1
                    ) -> tuple[list[Region], int]:
    """The ``top_n`` largest regions of at least ``min_voxels`` where ``anomaly > threshold``.

    Only voxels inside ``mask`` count. Regions are 6-connected in 3D (``scipy.ndimage.label``).
    Returns them largest first, and the total number of regions of any size.
    """
    above = anomaly > threshold
    if mask is not None:
        above &= mask.astype(bool)
    labels, n_found = ndimage.label(above)
    if n_found == 0:
        return [], 0
    sizes = np.bincount(labels.ravel(), minlength=n_found + 1)[1:]
    big = [i for i in range(n_found) if sizes[i] >= min_voxels]
    order = sorted(big, key=lambda i: -sizes[i])[:top_n]
    boxes = ndimage.find_objects(labels)
    voxel_mm3 = voxel_volume_mm3(affine)
    regions = []
    for i in order:
        box = boxes[i]
        inside = labels[box] == i + 1
        local = np.where(inside, anomaly[box], -np.inf)
        peak_at = np.unravel_index(int(np.argmax(local)), local.shape)
        regions.append(Region(
            bscans=(box[0].start, box[0].stop - 1),
            rows=(box[1].start, box[1].stop - 1),
            columns=(box[2].start, box[2].stop - 1),
            n_voxels=int(sizes[i]),
            volume_mm3=float(sizes[i]) * voxel_mm3,
            peak=float(local[peak_at]),
            peak_bscan=box[0].start + int(peak_at[0]),
        ))
    return regions, n_found
