"""Lesions of the diseased phantom: fluid, pigment epithelial detachment, foci, drusen.

Each lesion is an ellipsoid (or an ellipsoidal dome) that spans a few adjacent B-scans. SRF, PED
and drusen give thickness to their own layer of the stack (see ``anatomy.LAYERS``), so they lift
the tissue above them while Bruch's membrane stays in place. IRF cysts swell their host layer (INL
or ONL) by their own height and are painted dark inside it; HRF are bright dots painted into the
nuclear layers. Every lesion writes its marker value into the label map, always between ILM and BM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from octanogan.phantom.anatomy import LAYER_NAMES, Grid, Subject

MARKERS: dict[int, str] = {1: "IRF", 2: "SRF", 3: "PED", 4: "HRF", 5: "drusen"}
MARKER_VALUES: dict[str, int] = {name: value for value, name in MARKERS.items()}
DOMES = ("SRF", "PED", "drusen")  # lesions that are layers of the stack
PAINT_ORDER = ("SRF", "PED", "drusen", "IRF", "HRF")  # later ones win where labels overlap
#: Part of a dome's height taken up by a thinner ONL above it rather than by lifting the ILM.
SQUEEZE = {"SRF": 0.2, "PED": 0.3, "drusen": 0.8}


@dataclass(frozen=True)
class Lesion:
    """One lesion; sizes in B-scans, columns and rows."""

    marker: str
    b: int  # centre B-scan
    x: float  # centre column
    radius_b: float
    radius_x: float
    height: float  # dome height (SRF, PED, drusen) or depth semi-axis (IRF, HRF), in rows
    layer: str  # the stack layer it fills, or the host layer it sits in
    gray: float  # grey level of its content
    depth: float = 0.5  # IRF/HRF: centre position in the host layer, 0 top .. 1 bottom
    power: float = 0.5  # dome profile exponent: 0.5 ellipsoid, larger values taper the rim

    def footprint(self, n_bscans: int, width: int) -> tuple[slice, slice, np.ndarray]:
        """B-scans and columns it covers, and ``1 - rho^2`` there (1 at the centre, 0 at the rim)."""
        b0 = max(0, math.floor(self.b - self.radius_b))
        b1 = min(n_bscans, math.floor(self.b + self.radius_b) + 1)
        x0 = max(0, math.floor(self.x - self.radius_x))
        x1 = min(width, math.ceil(self.x + self.radius_x) + 1)
        b = np.arange(b0, b1, dtype=np.float32)[:, None]
        x = np.arange(x0, x1, dtype=np.float32)[None, :]
        rho2 = ((b - self.b) / self.radius_b) ** 2 + ((x - self.x) / self.radius_x) ** 2
        return slice(b0, b1), slice(x0, x1), np.clip(1 - rho2, 0, None)


@dataclass(frozen=True)
class LesionKind:
    """How one marker's lesions are drawn: counts, sizes (um/mm, minimum rows/columns), content."""

    count: tuple[int, int]
    radius_mm: tuple[float, float]
    height_um: tuple[float, float]
    min_height_px: float
    gray: tuple[float, float]
    spread_mm: float  # standard deviation of the distance from the fovea
    power: tuple[float, float] = (0.5, 0.5)
    min_radius_b: float = 1.2


KINDS: dict[str, LesionKind] = {
    "IRF": LesionKind((2, 7), (0.04, 0.2), (20, 60), 1.2, (4, 22), 0.7),
    "SRF": LesionKind((1, 2), (0.4, 1.0), (60, 180), 3.0, (4, 18), 0.4, power=(0.8, 1.5)),
    "PED": LesionKind((1, 2), (0.3, 0.8), (60, 170), 3.0, (20, 120), 0.8, power=(0.4, 0.8)),
    "HRF": LesionKind((3, 12), (0.015, 0.03), (10, 20), 1.0, (215, 245), 0.9, min_radius_b=0.6),
    "drusen": LesionKind((3, 8), (0.06, 0.2), (20, 60), 1.5, (130, 165), 1.3, power=(0.6, 1.0)),
}


def _host_layer(marker: str, distance_mm: float, rng: np.random.Generator) -> str:
    """Layer a lesion sits in; INL only away from the foveal centre, where the INL is thin."""
    if marker in DOMES:
        return marker
    if marker == "IRF":
        return "INL" if rng.random() < 0.4 else "ONL"
    return "INL" if distance_mm > 0.8 and rng.random() < 0.4 else "ONL"


def sample_lesions(rng: np.random.Generator, subject: Subject, grid: Grid) -> list[Lesion]:
    """Three to five marker types, several lesions each, clustered around the fovea."""
    n_b, _, width = grid.shape
    per_mm_b, per_mm_x = grid.px_per_mm
    markers = rng.choice(PAINT_ORDER, size=int(rng.integers(3, 6)), replace=False)
    lesions = []
    for marker in sorted(markers, key=PAINT_ORDER.index):
        kind = KINDS[marker]
        for _ in range(int(rng.integers(kind.count[0], kind.count[1] + 1))):
            offset = np.clip(rng.normal(0, kind.spread_mm, 2), -2.4, 2.4)
            b_mm, x_mm = subject.fovea_mm[0] + offset[0], subject.fovea_mm[1] + offset[1]
            b_index, x_index = grid.mm_to_index(b_mm, x_mm)
            radius_mm = rng.uniform(*kind.radius_mm)
            lesions.append(Lesion(
                marker=marker,
                b=int(np.clip(round(b_index), 0, n_b - 1)),
                x=float(np.clip(x_index, 0.05 * width, 0.95 * width)),
                radius_b=max(kind.min_radius_b, radius_mm * rng.uniform(0.6, 1.4) * per_mm_b),
                radius_x=max(1.0, radius_mm * per_mm_x),
                height=max(kind.min_height_px, rng.uniform(*kind.height_um) * subject.px_per_um),
                layer=_host_layer(marker, float(np.hypot(*offset)), rng),
                gray=float(rng.uniform(*kind.gray)),
                depth=float(rng.uniform(0.3, 0.7)),
                power=float(rng.uniform(*kind.power)),
            ))
    return lesions


def shape_layers(lesions: list[Lesion], thickness: np.ndarray, grays: np.ndarray, max_lift: float) -> None:
    """Give dome lesions their layer's thickness and content grey; swell IRF host layers.

    The thickness lesions add to one A-scan is capped at ``max_lift`` rows, so the retina stays
    inside the image.
    """
    n_b, width = thickness.shape[1:]
    onl = LAYER_NAMES.index("ONL")
    lifted = np.zeros((n_b, width), np.float32)
    for lesion in lesions:
        k = LAYER_NAMES.index(lesion.layer)
        if lesion.marker == "IRF":  # oedema: the host layer swells, over three times the cyst's radius
            lesion = replace(lesion, radius_b=3 * lesion.radius_b, radius_x=3 * lesion.radius_x)
        bs, xs, profile = lesion.footprint(n_b, width)
        if lesion.marker in DOMES:
            grays[k, bs, xs] = np.where(profile > 0, lesion.gray, grays[k, bs, xs])
            added = lesion.height * profile**lesion.power
        else:
            added = 2 * lesion.height * profile
        added = np.clip(added, 0, max_lift - lifted[bs, xs])
        lifted[bs, xs] += added
        thickness[k, bs, xs] += added
        if lesion.marker in DOMES:
            thickness[onl, bs, xs] -= SQUEEZE[lesion.marker] * np.minimum(added, 0.6 * thickness[onl, bs, xs])


def paint_lesions(lesions: list[Lesion], signal: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Paint IRF and HRF into ``signal`` (in place) and return the uint8 ``[B, H, W]`` label map.

    A voxel is labelled when its centre lies inside the lesion; grey levels blend by coverage.
    """
    n_b, depth, width = signal.shape
    labels = np.zeros(signal.shape, np.uint8)
    for lesion in sorted(lesions, key=lambda lesion: PAINT_ORDER.index(lesion.marker)):
        bs, xs, profile = lesion.footprint(n_b, width)
        k = LAYER_NAMES.index(lesion.layer)
        layer_top, layer_bottom = boundaries[k, bs, xs], boundaries[k + 1, bs, xs]
        if lesion.marker in DOMES:
            top, bottom = layer_top, layer_bottom
        else:
            extent = np.minimum(2 * lesion.height * np.sqrt(profile), layer_bottom - layer_top)
            top = layer_top + lesion.depth * (layer_bottom - layer_top - extent)
            bottom = top + extent
        bottom = np.where(profile > 0, bottom, top)
        r0 = max(0, math.floor(top.min()))
        r1 = min(depth, math.ceil(bottom.max()) + 1)
        rows = np.arange(r0, r1, dtype=np.float32)[None, :, None]
        top, bottom = top[:, None, :], bottom[:, None, :]
        labels[bs, r0:r1, xs][(rows >= top) & (rows < bottom)] = MARKER_VALUES[lesion.marker]
        if lesion.marker not in DOMES:
            coverage = np.clip(np.minimum(rows + 0.5, bottom) - np.maximum(rows - 0.5, top), 0, 1)
            block = signal[bs, r0:r1, xs]
            block += coverage * (lesion.gray - block)
    return labels

