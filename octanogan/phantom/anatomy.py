"""Healthy macular anatomy of the phantom: layers, geometry, vessels, speckle.

Sizes scale with the volume shape: the phantom always images the same 6 x 6 mm macular field,
and the retina fills about 16 % of the depth (about 300 um at 496 rows of 3.9 um). Grey levels
are on the final 8-bit display scale, which is log-compressed, so adding to a grey level multiplies
the linear OCT intensity: a shadow is a negative step that persists down the A-scan.

Rendering works per A-scan on a "step image": each boundary adds a sub-pixel (anti-aliased) step
of grey level at its depth, and one cumulative sum down the depth axis turns the steps into
piecewise-constant layer profiles for the whole volume at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octanogan.errors import OctanoganError
from octanogan.phantom.config import SPECKLES

FIELD_MM = 6.0  # en-face field of view along both the width and the B-scan axis
RETINA_UM = 310.0  # approximate parafoveal ILM-BM thickness the layer table adds up to


@dataclass(frozen=True)
class Layer:
    """One retinal layer: parafoveal thickness, display grey level, change at the foveal centre."""

    name: str
    thickness_um: float
    gray: float
    pit: float = 0.0  # relative thickness change at the foveal centre (-1: absent there)


#: Layers from the ILM down to Bruch's membrane. SRF, drusen and PED have no thickness in a
#: healthy eye; lesions give them thickness, which lifts everything above (BM stays in place).
LAYERS: tuple[Layer, ...] = (
    Layer("RNFL", 25, 200, -1.0),
    Layer("GCL", 45, 118, -0.95),
    Layer("IPL", 38, 145, -0.9),
    Layer("INL", 35, 82, -0.85),
    Layer("OPL", 30, 148, -0.6),
    Layer("ONL", 70, 58, 0.45),
    Layer("ELM", 4, 130),
    Layer("IS", 22, 80, 0.2),
    Layer("EZ", 12, 212),
    Layer("OS", 25, 105, 0.4),
    Layer("IZ", 8, 165),
    Layer("SRF", 0, 12),
    Layer("RPE", 16, 232),
    Layer("drusen", 0, 150),
    Layer("PED", 0, 35),
    Layer("BM", 5, 200),
)
LAYER_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
VITREOUS_GRAY = -30.0  # below black: only the brightest speckle shows, as in real scans
CHOROID_GRAY = 158.0
CHOROID_LUMEN_GRAY = 75.0
SCLERA_GRAY = 100.0
MIN_SHAPE = (1, 64, 32)  # smallest (B-scans, depth, width) that holds a recognisable retina


@dataclass(frozen=True)
class Grid:
    """En-face coordinates of the A-scans: ``b_mm`` is ``[B, 1]``, ``x_mm`` is ``[1, W]``."""

    shape: tuple[int, int, int]
    b_mm: np.ndarray
    x_mm: np.ndarray

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int]) -> Grid:
        n_b, _, width = shape
        half = FIELD_MM / 2
        b_mm = np.linspace(-half, half, n_b, dtype=np.float32) * (n_b - 1) / max(n_b, 1)
        x_mm = np.linspace(-half, half, width, dtype=np.float32)
        return cls(shape, b_mm[:, None], x_mm[None, :])

    @property
    def px_per_mm(self) -> tuple[float, float]:
        """(B-scans per mm, columns per mm)."""
        return self.shape[0] / FIELD_MM, self.shape[2] / FIELD_MM

    def mm_to_index(self, b_mm: float, x_mm: float) -> tuple[float, float]:
        """Fractional (B-scan, column) index of an en-face position in mm."""
        n_b, _, width = self.shape
        return b_mm * n_b / FIELD_MM + (n_b - 1) / 2, (x_mm / FIELD_MM + 0.5) * (width - 1)


@dataclass(frozen=True)
class Subject:
    """One eye's anatomy, drawn from the seed."""

    px_per_um: float  # depth rows per micrometre
    layer_scale: np.ndarray  # [n_layers] thickness factors (whole-retina and per-layer variation)
    fovea_mm: tuple[float, float]  # (b, x) centre of the foveal pit
    pit_sigma_mm: float
    sag: float  # rows the retina rises from the centre to the field corners (eye curvature)
    tilt: tuple[float, float]  # rows across half the field along the B-scan axis and the width
    mid_row: float  # target row of the retina's mid-line
    choroid_px: float
    gain: float  # tissue contrast factor
    brightness: float  # tissue grey-level offset
    noise: float  # speckle strength: grey levels per neper of multiplicative noise


def retina_rows(depth: int) -> float:
    """Nominal retina thickness in rows: 16 % of the depth, at least 36 rows on small shapes."""
    return max(0.16 * depth, min(0.4 * depth, 36.0))


def sample_subject(rng: np.random.Generator, shape: tuple[int, int, int]) -> Subject:
    """Draw thickness, curvature, tilt, brightness and noise level of one eye."""
    depth = shape[1]
    px_per_um = retina_rows(depth) / RETINA_UM
    scale = rng.uniform(0.9, 1.1) * rng.uniform(0.88, 1.12, len(LAYERS))
    return Subject(
        px_per_um=px_per_um,
        layer_scale=scale.astype(np.float32),
        fovea_mm=(float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.35, 0.35))),
        pit_sigma_mm=float(rng.uniform(0.35, 0.5)),
        sag=depth * float(rng.uniform(0.03, 0.08)),
        tilt=(depth * float(rng.uniform(-0.03, 0.03)), depth * float(rng.uniform(-0.06, 0.06))),
        mid_row=depth * float(rng.uniform(0.40, 0.50)),
        choroid_px=min(250 * px_per_um, 0.13 * depth) * float(rng.uniform(0.75, 1.25)),
        gain=float(rng.uniform(0.9, 1.05)),
        brightness=float(rng.uniform(-12, 12)),
        noise=float(rng.uniform(22, 34)),
    )


def smooth_field(rng: np.random.Generator, grid: Grid, cycles: float = 1.5, n_waves: int = 3) -> np.ndarray:
    """A smooth random ``[B, W]`` field of unit amplitude: a few plane waves across the field."""
    field = np.zeros((grid.b_mm.shape[0], grid.x_mm.shape[1]), np.float32)
    for _ in range(n_waves):
        fb, fx = rng.uniform(-cycles, cycles, 2) / FIELD_MM
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(2 * np.pi * (fb * grid.b_mm + fx * grid.x_mm) + phase).astype(np.float32)
    return field / np.sqrt(n_waves / 2)


def foveal_distance_mm(subject: Subject, grid: Grid) -> np.ndarray:
    """``[B, W]`` en-face distance of every A-scan from the foveal centre."""
    fb, fx = subject.fovea_mm
    return np.sqrt((grid.b_mm - fb) ** 2 + (grid.x_mm - fx) ** 2)


def layer_thickness(subject: Subject, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """``[n_layers, B, W]`` thickness in rows: foveal pit, nasal RNFL, smooth individual variation."""
    rho = foveal_distance_mm(subject, grid)
    pit_shape = np.exp(-(rho**2) / (2 * subject.pit_sigma_mm**2))
    # Right-eye orientation: nasal (towards the optic disc) is +x.
    nasal = grid.x_mm - subject.fovea_mm[1]
    rnfl = (0.45 + 1.0 / (1 + np.exp(-(nasal - 0.8) / 0.7))) * (
        1 + 0.3 * np.minimum(np.abs(grid.b_mm - subject.fovea_mm[0]) / 2.5, 1))
    rnfl = rnfl * (1 - np.exp(-(rho**2) / (2 * (1.6 * subject.pit_sigma_mm) ** 2)))
    perifovea = 1 - 0.3 * np.clip((rho - 1.0) / 2.0, 0, 1)
    thickness = np.empty((len(LAYERS), *rho.shape), np.float32)
    for i, layer in enumerate(LAYERS):
        shape = rnfl if layer.name == "RNFL" else 1 + layer.pit * pit_shape
        if layer.name in ("GCL", "IPL", "INL"):
            shape = shape * perifovea
        wobble = 1 + 0.06 * smooth_field(rng, grid)
        thickness[i] = layer.thickness_um * subject.px_per_um * subject.layer_scale[i] * shape * wobble
    return np.maximum(thickness, 0)


def place_bruch_membrane(
    subject: Subject, grid: Grid, thickness: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``[B, W]`` row of Bruch's membrane, the anchor of the curved and tilted retina.

    Curvature and tilt shrink if needed so that the retina and choroid stay inside the image, with
    room above the ILM for lesions that lift the retina.
    """
    depth = grid.shape[1]
    shape_field = _bm_shape_field(subject, grid, rng)
    total = thickness.sum(axis=0)
    low, high = 0.06 * depth + 0.6 * retina_rows(depth), 0.94 * depth  # headroom for lifting lesions
    for _ in range(8):
        top, bottom = (shape_field - total).min(), (shape_field + subject.choroid_px).max()
        if bottom - top <= high - low:
            break
        shape_field = shape_field * 0.7
    top, bottom = (shape_field - total).min(), (shape_field + subject.choroid_px).max()
    mid = float(np.mean(shape_field - total / 2))
    offset = np.clip(subject.mid_row - mid, low - top, high - bottom)
    return (shape_field + offset).astype(np.float32)


def _bm_shape_field(subject: Subject, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """``[B, W]`` the eye's own curvature, tilt and waviness of BM, before placement in depth."""
    bn, xn = grid.b_mm / (FIELD_MM / 2), grid.x_mm / (FIELD_MM / 2)
    return (subject.tilt[0] * bn + subject.tilt[1] * xn - subject.sag * (bn**2 + xn**2)
            + 0.008 * grid.shape[1] * smooth_field(rng, grid))


def place_bruch_membrane_with(
    subject: Subject, grid: Grid, thickness: np.ndarray, rng: np.random.Generator, extra: np.ndarray
) -> tuple[np.ndarray, float]:
    """BM like :func:`place_bruch_membrane` plus an ``extra`` ``[B, W]`` shape (artefact tilt, bowl).

    Returns BM and the factor ``extra`` was scaled by to fit (1.0 unless the image is too shallow).
    The choroid may leave the image at the bottom, as in real tilted or curved scans; the retina,
    with room above it for lifting lesions, stays inside. The eye's own curvature and tilt shrink
    first, then ``extra``.
    """
    depth = grid.shape[1]
    shape_field = _bm_shape_field(subject, grid, rng)
    total = thickness.sum(axis=0)
    low, high = 0.06 * depth + 0.6 * retina_rows(depth), 0.98 * depth
    below = 0.25 * subject.choroid_px  # the part of the choroid that stays in view

    def span(field: np.ndarray) -> float:
        return float((field + below).max() - (field - total).min())

    scale = 1.0
    for _ in range(8):
        if span(shape_field + scale * extra) <= high - low:
            break
        shape_field = shape_field * 0.7
    for _ in range(12):
        if span(shape_field + scale * extra) <= high - low:
            break
        scale *= 0.8
    field = shape_field + scale * extra
    top, bottom = (field - total).min(), (field + below).max()
    mid = float(np.mean(field - total / 2))
    offset = np.clip(subject.mid_row - mid, low - top, high - bottom)
    return (field + offset).astype(np.float32), scale


def stack_layers(bm: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    """``[n_layers + 1, B, W]`` boundary rows: the top of each layer stacked up from BM, then BM."""
    above = np.cumsum(thickness[::-1], axis=0)[::-1]  # thickness from each layer's top down to BM
    return np.concatenate([bm - above, bm[None]]).astype(np.float32)


def layer_grays(subject: Subject, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """``[n_layers, B, W]`` mean grey level of every layer, varying slowly across the field."""
    grays = np.empty((len(LAYERS), grid.b_mm.shape[0], grid.x_mm.shape[1]), np.float32)
    for i, layer in enumerate(LAYERS):
        grays[i] = layer.gray * subject.gain + subject.brightness + 5 * smooth_field(rng, grid, cycles=3)
    return grays


def add_steps(steps: np.ndarray, b: np.ndarray, rows: np.ndarray, x: np.ndarray, values: np.ndarray) -> None:
    """Add anti-aliased grey-level steps at fractional ``rows`` of A-scans ``(b, x)``.

    Pixel ``r`` covers depths ``[r - 0.5, r + 0.5)``; a step at depth ``p`` changes pixel
    ``floor(p + 0.5)`` by the part of it below ``p`` and every pixel after it fully.
    """
    q = np.clip(rows + 0.5, 0, steps.shape[1] - 2)
    r0 = q.astype(np.intp)
    below = (q - r0).astype(np.float32)
    values = np.asarray(values, np.float32)
    np.add.at(steps, (b, r0, x), values * (1 - below))
    np.add.at(steps, (b, r0 + 1, x), values * below)


def _retinal_vessels(subject: Subject, grid: Grid, boundaries: np.ndarray, rng: np.random.Generator,
                     steps: np.ndarray) -> None:
    """Retinal vessels in the inner retina: a bright oval and a dark shadow below it."""
    n_b, _, width = grid.shape
    rnfl_top, gcl_top, ipl_top = (boundaries[LAYER_NAMES.index(n)] for n in ("RNFL", "GCL", "IPL"))
    inner = ipl_top - rnfl_top
    centre = gcl_top + 0.3 * (ipl_top - gcl_top)
    columns = np.arange(width, dtype=np.float32)[None, :]
    bn = grid.b_mm / (FIELD_MM / 2)
    aspect = FIELD_MM * 1000 / width * subject.px_per_um  # depth rows per column at equal size
    outside_fovea = foveal_distance_mm(subject, grid) > 0.45
    for _ in range(int(rng.integers(2, 7))):
        path = rng.uniform(0.03, 0.97) * width + rng.uniform(-0.25, 0.25) * width * bn \
            + rng.uniform(-0.12, 0.12) * width * bn**2
        radius = max(1.0, width * rng.uniform(0.003, 0.008))
        across = (columns - path) / radius
        b, x = np.nonzero((np.abs(across) < 1) & outside_fovea)
        profile = np.sqrt(1 - across[b, x] ** 2)
        half = np.minimum(radius * aspect, 0.45 * inner[b, x] + 1) * profile
        c = centre[b, x]
        add_steps(steps, b, c - half, x, np.full(b.size, 18.0))
        add_steps(steps, b, c + half, x, -18.0 - rng.uniform(45, 80) * np.sqrt(profile))


def _choroid_vessels(grid: Grid, bm: np.ndarray, choroid: np.ndarray, rng: np.random.Generator,
                     steps: np.ndarray) -> None:
    """Dark vessel lumens in the choroid: small ones (Sattler) above large ones (Haller)."""
    n_b, _, width = grid.shape
    per_mm_b, per_mm_x = grid.px_per_mm
    # (depth range as a fraction of choroid thickness, lateral radius mm, depth radius fraction)
    tiers = (((0.15, 0.35), (0.04, 0.09), (0.06, 0.11)), ((0.45, 0.75), (0.1, 0.22), (0.1, 0.18)))
    for (d_lo, d_hi), (r_lo, r_hi), (h_lo, h_hi) in tiers:
        step_x = 2.4 * r_hi * per_mm_x
        step_b = max(1.0, 2.0 * r_hi * per_mm_b)
        bc, xc = np.meshgrid(np.arange(0, n_b, step_b), np.arange(0, width, max(step_x, 2.0)), indexing="ij")
        bc = np.clip(np.round(bc.ravel() + rng.uniform(-0.5, 0.5, bc.size) * step_b), 0, n_b - 1)
        xc = xc.ravel() + rng.uniform(-0.4, 0.4, xc.size) * step_x
        n = bc.size
        rx = np.maximum(1.0, rng.uniform(r_lo, r_hi, n) * per_mm_x)
        rb = np.maximum(0.6, rng.uniform(r_lo, 3 * r_hi, n) * per_mm_b)
        depth_frac, height_frac = rng.uniform(d_lo, d_hi, n), rng.uniform(h_lo, h_hi, n)
        contrast = rng.uniform(0.5, 1.0, n) * (CHOROID_GRAY - CHOROID_LUMEN_GRAY)
        ob = np.arange(-int(np.ceil(rb.max())), int(np.ceil(rb.max())) + 1)
        ox = np.arange(-int(np.ceil(rx.max())), int(np.ceil(rx.max())) + 1)
        b = bc[:, None, None] + ob[None, :, None]
        x = np.round(xc)[:, None, None] + ox[None, None, :]
        rho2 = (((b - bc[:, None, None]) / rb[:, None, None]) ** 2
                + ((x - xc[:, None, None]) / rx[:, None, None]) ** 2)
        b, x = np.broadcast_arrays(b, x)
        inside = (rho2 < 1) & (b >= 0) & (b < n_b) & (x >= 0) & (x < width)
        vessel = np.nonzero(inside)[0]
        b, x = b[inside].astype(np.intp), x[inside].astype(np.intp)
        thick, rho2 = choroid[b, x], rho2[inside]
        centre = bm[b, x] + depth_frac[vessel] * thick
        for core in (1.0, 0.6):  # a dark core inside a half-dark rim: soft lumen walls
            half = height_frac[vessel] * thick * np.sqrt(np.clip(core**2 - rho2, 0, None))
            add_steps(steps, b, centre - half, x, -0.5 * contrast[vessel])
            add_steps(steps, b, centre + half, x, 0.5 * contrast[vessel])


def render(subject: Subject, grid: Grid, boundaries: np.ndarray, grays: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """``[B, H, W]`` float32 noise-free grey levels: layers, choroid, sclera, vessels, shadows."""
    n_b, depth, width = grid.shape
    steps = np.zeros((n_b, depth + 2, width), np.float32)
    b, x = np.meshgrid(np.arange(n_b), np.arange(width), indexing="ij")
    steps[:, 0, :] = VITREOUS_GRAY
    shading = 8 * smooth_field(rng, grid, cycles=2)  # A-scan brightness, as in real scans
    previous = np.full((n_b, width), VITREOUS_GRAY, np.float32) - shading
    for i in range(len(LAYERS)):
        add_steps(steps, b, boundaries[i], x, grays[i] - previous)
        previous = grays[i]
    bm = boundaries[-1]
    choroid = subject.choroid_px * (1 + 0.15 * smooth_field(rng, grid)) * (1 - 0.06 * grid.x_mm / 3)
    tissue = subject.gain * np.array([CHOROID_GRAY, SCLERA_GRAY], np.float32) + subject.brightness
    add_steps(steps, b, bm, x, tissue[0] - previous)
    add_steps(steps, b, bm + choroid, x, np.full(bm.shape, tissue[1] - tissue[0]))
    _retinal_vessels(subject, grid, boundaries, rng, steps)
    _choroid_vessels(grid, bm, choroid, rng, steps)
    signal = np.cumsum(steps, axis=1, dtype=np.float32)[:, :depth]
    # Attenuation below the RPE: exponential in linear intensity, so linear in grey level.
    below_bm = np.arange(depth, dtype=np.float32)[None, :, None] - bm[:, None, :]
    signal -= (75.0 / subject.choroid_px) * np.maximum(below_bm, 0)
    return signal


#: With ``speckle="brightness"``: grey level at which the speckle has its nominal strength, and the
#: least share of it kept in the darkest tissue.
SPECKLE_REFERENCE_GRAY, SPECKLE_FLOOR = 120.0, 0.15


def add_speckle(signal: np.ndarray, rng: np.random.Generator, noise: float | np.ndarray,
                kind: str = "log") -> np.ndarray:
    """Multiplicative speckle on linear intensity, log compression, 8-bit quantisation.

    In the log-compressed (grey-level) domain multiplicative noise ``S`` adds ``noise * ln S``.
    ``S`` sums four exponential (fully developed speckle) samples over 2 x 2 pixels, a gamma-like
    variable whose grains span about two pixels, as in lightly averaged SD-OCT. ``noise`` is a
    number, or a ``[B, 1, 1]`` array of one strength per B-scan. ``kind="brightness"`` scales
    the grain with the local grey level (``signal / SPECKLE_REFERENCE_GRAY``, at least
    ``SPECKLE_FLOOR``), as real exports show it: bright layers grainy, dark fluid and nuclear
    layers smooth, so the absolute residual |x - G(z)| is largest on bright tissue.
    """
    if kind not in SPECKLES:
        raise OctanoganError(f"speckle must be one of {SPECKLES}, got {kind!r}")
    n_b, depth, width = signal.shape
    exp = rng.standard_exponential((n_b, depth + 1, width + 1), dtype=np.float32)
    speckle = exp[:, :-1, :-1] + exp[:, 1:, :-1]
    speckle += exp[:, :-1, 1:]
    speckle += exp[:, 1:, 1:]
    del exp
    np.log(speckle, out=speckle)
    speckle -= np.float32(speckle.mean(dtype=np.float64))
    speckle *= np.asarray(noise, np.float32)
    if kind == "brightness":
        speckle *= np.clip(signal / np.float32(SPECKLE_REFERENCE_GRAY), SPECKLE_FLOOR, None)
    speckle += signal
    np.clip(speckle, 0, 255, out=speckle)
    return np.rint(speckle, out=speckle)


def blank_columns(image: np.ndarray, rng: np.random.Generator) -> None:
    """Blank a few A-scans (lost signal, as in real scans): near-zero values down the whole column."""
    n_b, depth, width = image.shape
    for _ in range(int(rng.poisson(0.05 * n_b))):
        b, x = int(rng.integers(n_b)), int(rng.integers(width))
        run = int(rng.integers(1, 4))
        image[b, :, x:x + run] = rng.integers(0, 3, (depth, min(run, width - x)))
