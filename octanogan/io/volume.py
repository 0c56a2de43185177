"""The one volume type every reader returns and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Spectralis-like spacing in mm for (B-scan, depth, width).
DEFAULT_SPACING_MM: tuple[float, float, float] = (0.12, 0.0039, 0.0115)


def affine_from_spacing(spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """A 4x4 voxel-to-mm affine for an array indexed ``[bscan, depth, width]``.

    Axis 0 (B-scan, slow scan) maps to y, axis 1 (depth) to z and axis 2 (width, fast scan) to x,
    so that en-face views lie in the x-y plane as in vendor software.
    """
    sb, sd, sw = (float(s) for s in spacing_mm)
    affine = np.zeros((4, 4))
    affine[1, 0] = sb
    affine[2, 1] = -sd  # depth grows away from the viewer: down in z
    affine[0, 2] = sw
    affine[3, 3] = 1.0
    return affine


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel sizes (mm) of the three array axes, from the affine's column norms."""
    norms = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    return (float(norms[0]), float(norms[1]), float(norms[2]))


@dataclass
class OCTVolume:
    """An OCT volume: ``data[n_bscans, depth, width]`` float32 with geometry and metadata.

    ``meta`` carries non-identifying facts (source path, format, laterality, device); readers
    never put patient names, birth dates or patient ids in it.
    """

    data: np.ndarray
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM
    affine: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 3:
            raise ValueError(f"OCT volume must be 3D [bscan, depth, width], got {self.data.shape}")
        self.spacing_mm = tuple(float(s) for s in self.spacing_mm)  # type: ignore[assignment]
        if self.affine is None:
            self.affine = affine_from_spacing(self.spacing_mm)
        self.affine = np.asarray(self.affine, dtype=float)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_bscans, depth, width)``."""
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def n_bscans(self) -> int:
        return int(self.data.shape[0])
