"""Flattening to a fixed BM row by integer shifts per A-scan, and its exact inverse."""

from __future__ import annotations

import numpy as np

from octanogan.errors import OctanoganError
from octanogan.preprocess.kernels import shift_columns


def flatten(data: np.ndarray, shifts: np.ndarray, fill: float = -1.0) -> np.ndarray:
    """Move every A-scan column ``data[b, :, w]`` down by ``shifts[b, w]`` rows (negative: up).

    Same shape and dtype as ``data``; rows shifted out are lost, rows shifted in get ``fill``.
    """
    data = np.asarray(data)
    shifts = np.asarray(shifts)
    if data.ndim != 3 or shifts.shape != (data.shape[0], data.shape[2]):
        raise OctanoganError(
            f"flatten needs data [B, H, W] and shifts [B, W], got {data.shape} and {shifts.shape}")
    if not np.issubdtype(shifts.dtype, np.integer):
        raise OctanoganError(f"shifts must be integers for an exact inverse, got {shifts.dtype}")
    return shift_columns(np.ascontiguousarray(data), np.ascontiguousarray(shifts),
                         np.asarray(fill, dtype=data.dtype)[()])


def unflatten(flat: np.ndarray, shifts: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Inverse of :func:`flatten`: exact wherever the voxel was not shifted out."""
    return flatten(flat, -np.asarray(shifts), fill=fill)


def flattening_shifts(ilm: np.ndarray, bm: np.ndarray, depth: int, target_bm_fraction: float,
                      margin_rows: int) -> tuple[np.ndarray, int]:
    """Shifts ``int32 [B, W]`` that put BM at one row, and that row.

    The row is ``round(target_bm_fraction * depth)``, moved down when the thickest retina would
    otherwise push its ILM above ``margin_rows``; it never passes the last row.
    """
    bm_rows = np.rint(bm).astype(np.int64)
    thickest = float(np.max(bm_rows - np.floor(ilm))) if bm.size else 0.0
    bm_row = max(int(round(target_bm_fraction * depth)), int(np.ceil(thickest)) + margin_rows)
    bm_row = min(bm_row, depth - 1)
    return (bm_row - bm_rows).astype(np.int32), bm_row
