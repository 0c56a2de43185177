"""Real-world artefacts of OCT exports, for the phantom: fill, padding, tilt, noise, an optic disc.

Real B-scans (Spectralis, Topcon, Cirrus exports; the public Kermany OCT2017 set) differ from the
clean phantom: registration fill wedges of exact 0 or 255 in the corners, letterboxed images with
constant rows or columns, strongly tilted or bowl-shaped retinas, vignetting towards the left and
right edges, dark vessel shadows, B-scans with much less signal and more noise, the optic disc at
the nasal edge, and every size from 248 to 1024 rows and 256 to 1536 columns.

:class:`ArtefactConfig` holds the chance of every artefact (0 never, 1 always) and its strengths;
:func:`draw_artefacts` turns it into the artefacts of one volume (:class:`Artefacts`), drawn from the
volume seed. Each kind draws from its own random stream (a fourth child of the volume seed, which
the anatomy, lesion and speckle streams do not use), so switching one kind on or off changes
neither the others nor the eye: the eye of a seed is the same with and without artefacts.

The ground truth follows the artefacts: ILM and BM rows move with the tilt, the bowl, the padding
and the optic-disc cup; BM (and every layer boundary below the ILM) is NaN where the disc has no
Bruch's membrane; ILM and BM are NaN in columns that are all padding; ``invalid`` marks the pixels
that are fill or padding rather than image. Strengths in rows are given at 496 rows and scale with
the depth. See docs/phantom.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from octanogan.errors import OctanoganError
from octanogan.phantom import anatomy
from octanogan.phantom.anatomy import FIELD_MM, LAYER_NAMES, MIN_SHAPE, Grid, Subject
from octanogan.phantom.config import ARTEFACT_PRESETS

REFERENCE_DEPTH = 496  # strengths in rows are given at this depth (Spectralis) and scale with it
KINDS = ("size", "letterbox", "fill_wedges", "tilt", "curvature", "vignetting", "vessel_shadows",
         "low_snr", "optic_disc")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
#: Grey level a low-SNR B-scan fades towards: the vitreous turns noisy grey, as in dim real exports.
LOW_SNR_FLOOR = 60.0


@dataclass(frozen=True)
class ArtefactConfig:
    """Chances (0 never .. 1 always, per volume) and strengths of the artefacts of a phantom volume.

    The default, :meth:`none`, has no artefacts: ``generate_volume`` then makes the same bytes as
    without a config. Ranges ``(low, high)`` are drawn from uniformly, per volume or B-scan.
    """

    #: Another depth x width: the shape's depth and width times a factor drawn from each list, at
    #: least the smallest phantom shape and at most ``max_size`` (or the shape, if larger). The
    #: anatomy scales: the field stays 6 x 6 mm. From 496 x 512: 248..992 rows, 256..1536 columns.
    size: float = 0.0
    depth_factors: tuple[float, ...] = (0.5, 1.0, 1.0, 2.0)
    width_factors: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    max_size: tuple[int, int] = (1024, 1536)
    #: Letterboxing: the image shrunk into a box of zero rows (top/bottom) and/or columns.
    letterbox: float = 0.0
    letterbox_fraction: tuple[float, float] = (0.1, 0.35)  # share of the depth padded (width: a third)
    #: Registration fill: exact 0 or 255 triangles (or quadrilaterals) at one or two corners.
    fill_wedges: float = 0.0
    fill_wedge_bscans: float = 1.0  # share of an affected volume's B-scans with wedges
    fill_wedge_rows: tuple[float, float] = (0.08, 0.35)  # how far down (or up) the side, share of depth
    fill_wedge_columns: tuple[float, float] = (0.1, 1.3)  # along the edge, share of width; > 1: quadrilateral
    #: Linear tilt: the retina rises or falls by this many rows across the width (sign random).
    tilt: float = 0.0
    tilt_rows: tuple[float, float] = (20.0, 60.0)
    #: A deeper bowl (high myopia): the centre lies this many rows below the left/right edges.
    curvature: float = 0.0
    curvature_rows: tuple[float, float] = (30.0, 90.0)
    #: Vignetting: grey levels lost at the farther left/right edge, falling off from a centre.
    vignetting: float = 0.0
    vignetting_gray: tuple[float, float] = (25.0, 70.0)
    #: Extra vessel shadows: vertical dark stripes from the inner retina down.
    vessel_shadows: float = 0.0
    vessel_shadow_count: tuple[int, int] = (2, 6)
    vessel_shadow_gray: tuple[float, float] = (35.0, 75.0)
    #: Low-SNR B-scans: contrast times ``low_snr_contrast``, speckle times ``low_snr_noise``.
    low_snr: float = 0.0
    low_snr_bscans: float = 0.3  # share of an affected volume's B-scans (at least one)
    low_snr_contrast: tuple[float, float] = (0.35, 0.6)
    low_snr_noise: tuple[float, float] = (1.3, 1.8)
    #: Optic disc at the nasal edge: the retina thins and dips into a cup; no BM, RPE or choroid.
    optic_disc: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in KINDS or f.name in ("fill_wedge_bscans", "low_snr_bscans"):
                if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
                    raise OctanoganError(f"artefact chance {f.name} must be between 0 and 1, got {value!r}")
            elif f.name == "max_size":
                if len(value) != 2 or not all(int(v) > 0 for v in value):
                    raise OctanoganError(f"artefact max_size must be (depth, width), got {value!r}")
            elif f.name.endswith("factors"):
                if not value or not all(float(v) > 0 for v in value):
                    raise OctanoganError(f"artefact {f.name} must be positive numbers, got {value!r}")
            elif len(value) != 2 or not 0 <= value[0] <= value[1]:
                raise OctanoganError(f"artefact range {f.name} must be (low, high) with 0 <= low <= high, "
                                     f"got {value!r}")

    @classmethod
    def none(cls) -> ArtefactConfig:
        """No artefacts: the clean phantom."""
        return cls()

    @classmethod
    def realistic(cls) -> ArtefactConfig:
        """A random mix like a real multi-vendor export, drawn per volume and B-scan from the seed.

        About half the volumes get another size; most are tilted; a third to a half have fill
        wedges, vignetting or extra vessel shadows; half have low-SNR B-scans (half of their
        B-scans: dim, noisy exports with a grey background are common in real sets); some are
        letterboxed, bowl shaped or show the optic disc.
        """
        return cls(size=0.5, letterbox=0.2, fill_wedges=0.45, fill_wedge_bscans=0.7, tilt=0.7,
                   curvature=0.3, vignetting=0.4, vessel_shadows=0.5, low_snr=0.5, low_snr_bscans=0.5,
                   optic_disc=0.25)

    @classmethod
    def named(cls, name: str) -> ArtefactConfig:
        """The preset called ``name``: ``"none"`` or ``"realistic"`` (the CLI's choices)."""
        if name not in ARTEFACT_PRESETS:
            raise OctanoganError(f"unknown artefact preset {name!r}; choose one of "
                                 f"{', '.join(ARTEFACT_PRESETS)}")
        return cls.none() if name == "none" else cls.realistic()

    @property
    def enabled(self) -> bool:
        """Whether any artefact can occur."""
        return any(getattr(self, kind) > 0 for kind in KINDS)


@dataclass(frozen=True)
class Wedge:
    """A fill wedge of B-scan ``bscan``: pixels with ``dx / columns + dy / rows < 1`` from the corner."""

    bscan: int
    corner: str
    value: int  # 0 or 255
    rows: float
    columns: float


@dataclass(frozen=True)
class Shadow:
    """An extra vessel shadow: its column path across the B-scans, as shares of the width."""

    x: float
    slope: float
    bend: float
    radius: float
    gray: float


@dataclass(frozen=True)
class Disc:
    """The optic disc, relative to the fovea (mm) and to the retina (rows as its share)."""

    bscan: int  # a B-scan through the disc
    db_mm: float  # offset along the B-scan axis from that B-scan's position
    dx_mm: float  # nasal distance of the disc centre from the fovea
    radius_mm: float  # radius of the Bruch's membrane opening
    cup: float  # depth of the cup below BM, share of the retina's thickness
    rim: float  # peripapillary RNFL thickening, share of the retina's thickness
    gray: float  # grey level of the nerve tissue under the cup surface


@dataclass
class Artefacts:
    """The artefacts of one volume, and the steps of ``generate_volume`` that apply them."""

    shape: tuple[int, int, int]  # of the image
    content_shape: tuple[int, int, int]  # of the eye rendered inside the padding
    padding: tuple[int, int, int, int] | None = None  # rows top, bottom, columns left, right
    wedges: tuple[Wedge, ...] = ()
    tilt_rows: np.ndarray | None = None  # [B] rise across the width, rows of the content
    curvature_rows: float | None = None
    vignetting: tuple[float, float, float] | None = None  # grey levels, centre (-1..1), power
    shadows: tuple[Shadow, ...] = ()
    low_snr: np.ndarray | None = None  # [B] bool
    snr_contrast: np.ndarray | None = None  # [B]
    snr_noise: np.ndarray | None = None  # [B]
    disc: Disc | None = None
    # Set while the volume is made:
    fit_scale: float = 1.0  # how much tilt and bowl had to shrink to keep the retina in the image
    disc_distance: np.ndarray | None = None  # [B, W] en-face mm from the disc centre
    disc_dip: np.ndarray | None = None  # [B, W] rows the cup lowers the retina
    disc_centre_mm: tuple[float, float] | None = None  # en-face (b, x) of the disc centre

    # --- the steps, in the order generate_volume calls them ---------------------------------

    def prepare(self, subject: Subject, grid: Grid, thickness: np.ndarray, lesions: list) -> list:
        """Thin the layers towards the optic disc (in place); return the lesions clear of it."""
        if self.disc is None:
            return lesions
        disc, depth = self.disc, grid.shape[1]
        b_mm = float(grid.b_mm[self.disc.bscan, 0]) + disc.db_mm
        x_mm = subject.fovea_mm[1] + disc.dx_mm
        d = np.sqrt((grid.b_mm - b_mm) ** 2 + (grid.x_mm - x_mm) ** 2)
        radius, retina = disc.radius_mm, anatomy.retina_rows(depth)
        taper = np.clip((d - radius) / 0.35, 0, 1)
        taper = taper * taper * (3 - 2 * taper)  # smoothstep: layers end at the disc margin
        u2 = np.clip(d / radius, 0, 1) ** 2
        inside = d < radius
        rnfl = thickness[0] + disc.rim * retina * np.exp(-(((d - radius) / 0.45) ** 2))
        thickness[0] = np.where(inside, rnfl * u2, rnfl)  # the neural rim slopes into the cup
        thickness[1:] *= taper
        self.disc_distance = d.astype(np.float32)
        self.disc_centre_mm = (b_mm, x_mm)
        self.disc_dip = np.where(inside, disc.cup * retina * (1 - u2), 0).astype(np.float32)
        keep = []
        for lesion in lesions:  # only lesions whose footprint (an IRF's swelling too) stays clear
            area = lesion if lesion.marker != "IRF" else replace(
                lesion, radius_b=3 * lesion.radius_b, radius_x=3 * lesion.radius_x)
            bs, xs, profile = area.footprint(grid.shape[0], grid.shape[2])
            if np.all(d[bs, xs][profile > 0] > radius + 0.35):
                keep.append(lesion)
        return keep

    def place(self, subject: Subject, grid: Grid, thickness: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        """``[B, W]`` BM row with the tilt and bowl, and the cup's dip (a virtual BM inside the disc)."""
        extra = np.zeros((grid.shape[0], grid.shape[2]), np.float32)
        xs = grid.x_mm / FIELD_MM  # -0.5 .. 0.5 across the width
        if self.tilt_rows is not None:
            extra += self.tilt_rows[:, None] * xs
        if self.curvature_rows is not None:
            bn = grid.b_mm / (FIELD_MM / 2)
            extra -= self.curvature_rows * ((2 * xs) ** 2 + 0.5 * bn**2)
        bm, self.fit_scale = anatomy.place_bruch_membrane_with(subject, grid, thickness, rng, extra)
        if self.disc_dip is not None:
            self.disc_dip = np.minimum(self.disc_dip, np.maximum(grid.shape[1] - 3 - bm, 0))
            bm = bm + self.disc_dip
        return bm

    def degrade(self, subject: Subject, grid: Grid, signal: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
        """Disc tissue, vessel shadows, vignetting and low SNR on the noise-free ``signal`` (in
        place); return the ``[B, 1, 1]`` speckle strength of every B-scan."""
        n_b, depth, width = signal.shape
        rows = np.arange(depth, dtype=np.float32)[None, :, None]
        ilm = boundaries[0]
        if self.disc is not None and self.disc_distance is not None:
            radius = self.disc.radius_mm
            weight = np.clip((radius - self.disc_distance) / (0.2 * radius), 0, 1)
            bs = np.nonzero(weight.any(axis=1))[0]
            if bs.size:
                below = rows - ilm[bs, None, :]
                tissue = (self.disc.gray * subject.gain + subject.brightness
                          - 90.0 * below / anatomy.retina_rows(depth))  # nerve tissue, fading with depth
                tissue = np.where(below >= 0, np.maximum(tissue, anatomy.VITREOUS_GRAY), signal[bs])
                signal[bs] += weight[bs, None, :] * (tissue - signal[bs])
        if self.shadows:
            amount = np.zeros((n_b, width), np.float32)
            columns = np.arange(width, dtype=np.float32)[None, :]
            bn = grid.b_mm / (FIELD_MM / 2)
            for shadow in self.shadows:
                path = (shadow.x + shadow.slope * bn + shadow.bend * bn**2) * width
                across = (columns - path) / max(1.0, shadow.radius * width)
                amount += shadow.gray * np.sqrt(np.clip(1 - across**2, 0, None))
            start = boundaries[LAYER_NAMES.index("GCL")]  # vessels lie in the nerve fibre layer
            signal -= amount[:, None, :] * np.clip(rows - start[:, None, :] + 0.5, 0, 1)
        if self.vignetting is not None:
            gray, centre, power = self.vignetting
            xn = grid.x_mm / (FIELD_MM / 2)
            signal -= (gray * (np.abs(xn - centre) / (1 + abs(centre))) ** power)[:, None, :]
        noise = np.full((n_b, 1, 1), subject.noise, np.float32)
        if self.low_snr is not None:
            for b in np.nonzero(self.low_snr)[0]:
                contrast = np.float32(self.snr_contrast[b])
                signal[b] = contrast * signal[b] + (1 - contrast) * np.float32(LOW_SNR_FLOOR)
                noise[b] *= self.snr_noise[b]
        return noise

    def finish(self, image: np.ndarray, labels: np.ndarray, boundaries: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Padding, fill wedges and the truth that goes with them: image, labels, boundaries, invalid."""
        boundaries = boundaries.copy()
        if self.disc_distance is not None:
            boundaries[1:, self.disc_distance < self.disc.radius_mm] = np.nan  # no BM under the disc
        invalid = np.zeros(image.shape, bool)
        if self.padding is not None:
            top, bottom, left, right = self.padding
            pads = ((0, 0), (top, bottom), (left, right))
            image = np.pad(image, pads, constant_values=0)
            labels = np.pad(labels, pads, constant_values=0)
            invalid = np.pad(invalid, pads, constant_values=True)
            boundaries = np.pad(boundaries + np.float32(top), ((0, 0), (0, 0), (left, right)),
                                constant_values=np.nan)
        depth, width = image.shape[1:]
        if self.wedges:
            dy = np.arange(depth, dtype=np.float32)[:, None]
            dx = np.arange(width, dtype=np.float32)[None, :]
            for wedge in self.wedges:
                vertical, horizontal = wedge.corner.split("-")
                rows = dy if vertical == "top" else depth - 1 - dy
                cols = dx if horizontal == "left" else width - 1 - dx
                mask = cols / wedge.columns + rows / wedge.rows < 1
                image[wedge.bscan][mask] = wedge.value
                invalid[wedge.bscan] |= mask
        return image, labels, boundaries.astype(np.float32), invalid

    def summary(self, eye: str = "OD") -> dict[str, Any]:
        """What was applied, JSON-ready, in the image's own orientation (``eye="OS"`` is mirrored)."""
        flip = eye == "OS"
        width = self.shape[2]
        out: dict[str, Any] = {"shape": list(self.shape), "content_shape": list(self.content_shape)}
        padding = None
        if self.padding is not None:
            top, bottom, left, right = self.padding
            if flip:
                left, right = right, left
            padding = {"top": top, "bottom": bottom, "left": left, "right": right, "value": 0}
        out["padding"] = padding
        wedges = []
        for w in self.wedges:
            corner = w.corner
            if flip:
                vertical, horizontal = corner.split("-")
                corner = f"{vertical}-{'right' if horizontal == 'left' else 'left'}"
            wedges.append({**asdict(w), "corner": corner, "rows": round(w.rows, 2),
                           "columns": round(w.columns, 2)})
        out["fill_wedges"] = wedges
        tilt = None
        if self.tilt_rows is not None:
            tilt = [round(float(t) * self.fit_scale * (-1 if flip else 1), 3) for t in self.tilt_rows]
        out["tilt_rows"] = tilt
        out["curvature_rows"] = (None if self.curvature_rows is None
                                 else round(self.curvature_rows * self.fit_scale, 3))
        vignetting = None
        if self.vignetting is not None:
            gray, centre, power = self.vignetting
            vignetting = {"gray": round(gray, 2), "centre": round(-centre if flip else centre, 3),
                          "power": round(power, 2)}
        out["vignetting"] = vignetting
        out["vessel_shadows"] = len(self.shadows)
        out["low_snr_bscans"] = [] if self.low_snr is None else [int(b) for b in np.nonzero(self.low_snr)[0]]
        disc = None
        if self.disc is not None and self.disc_centre_mm is not None:
            left = self.padding[2] if self.padding else 0
            content_width = self.content_shape[2]
            column = (self.disc_centre_mm[1] / FIELD_MM + 0.5) * (content_width - 1) + left
            disc = {"bscan": self.disc.bscan, "column": round(width - 1 - column if flip else column, 1),
                    "radius_mm": round(self.disc.radius_mm, 3),
                    "radius_columns": round(self.disc.radius_mm / FIELD_MM * (content_width - 1), 1),
                    "cup_rows": round(self.disc.cup * anatomy.retina_rows(self.content_shape[1]), 1)}
        out["optic_disc"] = disc
        return out

    def summary_json(self, eye: str = "OD") -> str:
        return json.dumps(self.summary(eye), sort_keys=True)


def _scaled(value: float, depth: int) -> float:
    return value * depth / REFERENCE_DEPTH


def draw_artefacts(config: ArtefactConfig, seed_sequence: np.random.SeedSequence,
                   shape: tuple[int, int, int]) -> Artefacts:
    """The artefacts of one volume of ``shape``, drawn from ``seed_sequence`` (the volume seed's
    fourth child), one independent stream per kind."""
    rngs = {kind: np.random.default_rng(s) for kind, s in zip(KINDS, seed_sequence.spawn(len(KINDS)))}

    def on(kind: str) -> bool:
        return bool(rngs[kind].random() < getattr(config, kind))

    n_b, depth, width = shape
    if on("size"):
        r = rngs["size"]
        depth_factor = float(r.choice(config.depth_factors))
        width_factor = float(r.choice(config.width_factors))
        depth = max(MIN_SHAPE[1], min(round(depth * depth_factor), max(depth, config.max_size[0])))
        width = max(MIN_SHAPE[2], min(round(width * width_factor), max(width, config.max_size[1])))
    padding = None
    content_depth, content_width = depth, width
    if on("letterbox"):
        r = rngs["letterbox"]
        mode = r.choice(["rows", "columns", "both"], p=[0.5, 0.2, 0.3])
        top = bottom = left = right = 0
        if mode != "columns":
            total = min(round(depth * r.uniform(*config.letterbox_fraction)), depth - MIN_SHAPE[1])
            top = round(total * r.uniform(0.3, 1.0))
            bottom = max(total - top, 0)
        if mode != "rows":
            total = min(round(width * r.uniform(*config.letterbox_fraction) / 3), width - MIN_SHAPE[2])
            left = round(total * r.uniform(0.0, 1.0))
            right = max(total - left, 0)
        if top + bottom + left + right > 0:
            padding = (top, bottom, left, right)
            content_depth, content_width = depth - top - bottom, width - left - right
    artefacts = Artefacts(shape=(n_b, depth, width), content_shape=(n_b, content_depth, content_width),
                          padding=padding)

    if on("fill_wedges"):
        r = rngs["fill_wedges"]
        value = 255 if r.random() < 0.5 else 0
        corners = r.choice(4, size=1 if r.random() < 0.6 else 2, replace=False, p=[0.3, 0.3, 0.2, 0.2])
        wedges = []
        for b in range(n_b):
            if r.random() >= config.fill_wedge_bscans:
                continue
            for c in sorted(int(c) for c in corners):
                wedges.append(Wedge(bscan=b, corner=CORNERS[c], value=value,
                                    rows=max(2.0, depth * float(r.uniform(*config.fill_wedge_rows))),
                                    columns=max(2.0, width * float(r.uniform(*config.fill_wedge_columns)))))
        artefacts.wedges = tuple(wedges)
    if on("tilt"):
        r = rngs["tilt"]
        rise = float(r.uniform(*config.tilt_rows)) * (1 if r.random() < 0.5 else -1)
        per_bscan = rise + r.normal(0, 0.05 * abs(rise), n_b)  # a little B-scan to B-scan motion
        artefacts.tilt_rows = np.asarray(_scaled(per_bscan, content_depth), np.float32)
    if on("curvature"):
        artefacts.curvature_rows = _scaled(float(rngs["curvature"].uniform(*config.curvature_rows)),
                                           content_depth)
    if on("vignetting"):
        r = rngs["vignetting"]
        artefacts.vignetting = (float(r.uniform(*config.vignetting_gray)), float(r.uniform(-0.25, 0.25)),
                                float(r.uniform(2.0, 4.0)))
    if on("vessel_shadows"):
        r = rngs["vessel_shadows"]
        low, high = config.vessel_shadow_count
        artefacts.shadows = tuple(
            Shadow(x=float(r.uniform(0.03, 0.97)), slope=float(r.uniform(-0.2, 0.2)),
                   bend=float(r.uniform(-0.1, 0.1)), radius=float(r.uniform(0.003, 0.01)),
                   gray=float(r.uniform(*config.vessel_shadow_gray)))
            for _ in range(int(r.integers(int(low), int(high) + 1))))
    if on("low_snr"):
        r = rngs["low_snr"]
        chosen = r.random(n_b) < config.low_snr_bscans
        chosen[int(r.integers(n_b))] = True
        artefacts.low_snr = chosen
        artefacts.snr_contrast = r.uniform(*config.low_snr_contrast, n_b).astype(np.float32)
        artefacts.snr_noise = r.uniform(*config.low_snr_noise, n_b).astype(np.float32)
    if on("optic_disc"):
        r = rngs["optic_disc"]
        radius = float(r.uniform(0.75, 0.95))
        artefacts.disc = Disc(bscan=int(r.integers(n_b)), db_mm=float(r.uniform(-0.4, 0.4)) * radius,
                              dx_mm=float(r.uniform(2.2, 3.0)), radius_mm=radius,
                              cup=float(r.uniform(0.2, 0.8)), rim=float(r.uniform(0.2, 0.45)),
                              gray=float(r.uniform(120, 160)))
    return artefacts
