"""Where patches go: a grid of patch centres over the retina band of a flattened volume."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from octanogan.errors import OctanoganError

if TYPE_CHECKING:
    from octanogan.preprocess import Preprocessed


def check_fits(shape: tuple[int, ...], patch_size: int) -> None:
    """Refuse B-scans smaller than one patch (wrap in ``errors.about(path)`` to name the file)."""
    depth, width = shape[-2], shape[-1]
    if depth < patch_size or width < patch_size:
        raise OctanoganError(f"B-scans of {depth} x {width} pixels are smaller than the "
                             f"{patch_size} x {patch_size} patches of this model")


def band_centres(top: float, bottom: float, patch_size: int, stride: int, depth: int) -> np.ndarray:
    """Row centres from ``top`` to ``bottom`` at most ``stride`` apart, patches kept in the image."""
    half = patch_size // 2
    top, bottom = max(top, half), min(max(bottom, top), depth - half)
    count = int(np.ceil((bottom - top) / stride)) + 1 if bottom > top else 1
    return np.unique(np.round(np.linspace(top, bottom, count)).astype(int))


def column_centres(width: int, patch_size: int, stride: int) -> np.ndarray:
    """Column centres covering ``[0, width)`` with patches inside the image."""
    half = patch_size // 2
    if width < patch_size:
        raise ValueError(f"B-scan width {width} is smaller than the patch size {patch_size}")
    centres = np.arange(half, width - half + 1, stride)
    if centres[-1] != width - half:
        centres = np.append(centres, width - half)
    return centres


def retina_grid(
    ilm_flat: np.ndarray, bm_row: int, depth: int, patch_size: int, stride: int
) -> np.ndarray:
    """Patch centres ``[n, 3]`` as ``(bscan, y, x)`` over the retina band of a flattened volume.

    Centres lie inside the retina band: from a quarter patch below the highest ILM row of the
    column window down to just above Bruch's membrane, at most ``stride`` apart, so every retinal
    voxel is covered by at least one patch while patches stay centred on retina.
    """
    if depth < patch_size:
        raise ValueError(f"B-scan depth {depth} is smaller than the patch size {patch_size}")
    half = patch_size // 2
    xs = column_centres(ilm_flat.shape[1], patch_size, stride)
    bottom = bm_row - patch_size // 8
    rows = []
    for bscan, ilm in enumerate(ilm_flat):
        for x in xs:
            top = float(np.min(ilm[x - half : x + half])) + patch_size // 4
            for y in band_centres(top, bottom, patch_size, stride, depth):
                rows.append((bscan, y, x))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def patch_centres(prep: Preprocessed, patch_size: int, stride: int, max_invalid: float) -> np.ndarray:
    """The patch grid of a preprocessed volume: :func:`retina_grid`, less the patches whose
    retina is more than ``max_invalid`` of the patch hidden by export fill."""
    centres = retina_grid(prep.ilm_flat, prep.bm_row, prep.flat.shape[1], patch_size, stride)
    return valid_centres(centres, prep.hidden_retina_flat(), patch_size, max_invalid)


def cut_patches(image: np.ndarray, centres: np.ndarray, patch_size: int) -> np.ndarray:
    """Patches ``[n, P, P]`` of a ``[B, H, W]`` image at ``(bscan, y, x)`` centres (a view-free copy)."""
    half = patch_size // 2
    offsets = np.arange(patch_size) - half
    b = centres[:, 0, None, None]
    y = centres[:, 1, None, None] + offsets[None, :, None]
    x = centres[:, 2, None, None] + offsets[None, None, :]
    return image[b, y, x]


def patch_invalid_fraction(invalid: np.ndarray, centres: np.ndarray, patch_size: int) -> np.ndarray:
    """Share of each patch at ``centres`` that is not image (``invalid[B, H, W]``, bool)."""
    if len(centres) == 0:
        return np.zeros(0, dtype=np.float64)
    # summed-area table per B-scan: a patch's count is four lookups, not P x P reads
    table = np.pad(invalid.cumsum(axis=1, dtype=np.int32).cumsum(axis=2, dtype=np.int32),
                   ((0, 0), (1, 0), (1, 0)))
    half = patch_size // 2
    b, y, x = centres[:, 0], centres[:, 1] - half, centres[:, 2] - half
    y2, x2 = y + patch_size, x + patch_size
    count = table[b, y2, x2] - table[b, y, x2] - table[b, y2, x] + table[b, y, x]
    return count / float(patch_size * patch_size)


def valid_centres(centres: np.ndarray, invalid_flat: np.ndarray, patch_size: int,
                  max_invalid: float) -> np.ndarray:
    """The ``centres`` whose patches hold at most ``max_invalid`` non-image pixels."""
    keep = patch_invalid_fraction(invalid_flat, centres, patch_size) <= max_invalid
    return centres[keep]

