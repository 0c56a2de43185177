"""One phantom volume: anatomy, optional lesions, speckle, with its exact ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from octanogan.errors import OctanoganError
from octanogan.io.limits import current_limits
from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.phantom import anatomy
from octanogan.phantom.artefacts import ArtefactConfig, draw_artefacts
from octanogan.phantom.config import DEFAULT_SHAPE
from octanogan.phantom.lesions import paint_lesions, sample_lesions, shape_layers


@dataclass
class PhantomVolume:
    """A synthetic macular SD-OCT volume and its ground truth.

    ``layer_boundaries[i]`` is the top row of ``anatomy.LAYER_NAMES[i]``; the last entry is BM.
    Rows are fractional: pixel ``r`` covers depths ``[r - 0.5, r + 0.5)``. With artefacts (see
    ``octanogan.phantom.artefacts``) BM and every boundary below the ILM are NaN under the optic
    disc, ILM and BM are NaN in columns that are all padding, and ``invalid`` marks fill and padding.
    """

    image: np.ndarray  # float32 [B, H, W], integer grey levels 0..255
    labels: np.ndarray  # uint8 [B, H, W], 0 background, else a MARKERS value
    ilm: np.ndarray  # float32 [B, W], row of the inner limiting membrane (top of the retina)
    bm: np.ndarray  # float32 [B, W], row of Bruch's membrane (bottom of the retina, below the RPE)
    spacing_mm: tuple[float, float, float]
    layer_boundaries: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    invalid: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), bool))  # bool [B, H, W]
    artefacts: dict = field(default_factory=dict)  # what was applied (Artefacts.summary); {} if none

    def layer_mask(self, name: str, margin: float = 0.5) -> np.ndarray:
        """``[B, H, W]`` voxels whose centre lies inside layer ``name`` by at least ``margin`` rows."""
        i = anatomy.LAYER_NAMES.index(name)
        rows = np.arange(self.image.shape[1], dtype=np.float32)[None, :, None]
        top, bottom = self.layer_boundaries[i][:, None, :], self.layer_boundaries[i + 1][:, None, :]
        return (rows >= top + margin) & (rows <= bottom - margin)


def check_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape as three ints, or an error naming the smallest usable shape."""
    try:
        n_b, depth, width = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise OctanoganError(
            f"phantom shape must be three integers (B-scans, depth, width), got {shape!r}") from exc
    low = anatomy.MIN_SHAPE
    if n_b < low[0] or depth < low[1] or width < low[2]:
        raise OctanoganError(
            f"phantom shape {(n_b, depth, width)} is too small for a retina; "
            f"need at least {low[0]} B-scan(s), {low[1]} rows and {low[2]} columns")
    limits = current_limits()  # a phantom octanogan could not read back is refused up front
    if depth * width > limits.max_bscan_pixels or n_b * depth * width > limits.max_voxels:
        raise OctanoganError(
            f"phantom shape {(n_b, depth, width)} is too large: at most {limits.max_bscan_pixels:,} "
            f"pixels per B-scan and {limits.max_voxels:,} voxels per volume on this machine "
            "(docs/reliability.md)")
    return n_b, depth, width


def generate_volume(
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    seed: int = 0,
    diseased: bool = False,
    spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM,
    eye: str = "OD",
    artefacts: ArtefactConfig | None = None,
    speckle: str = "log",
) -> PhantomVolume:
    """A phantom volume ``[B-scans, depth, width]``; the same seed gives the same bytes.

    Anatomy, lesions and speckle draw from separate streams of the seed, so the diseased volume of
    a seed is its healthy volume plus lesions. ``eye="OS"`` mirrors the width axis (nasal left).
    ``artefacts`` adds real-world artefacts drawn from a fourth stream (the eye stays the same);
    ``None`` or ``ArtefactConfig.none()`` gives the clean phantom. An artefact size changes depth and
    width (``spacing_mm`` then scales so that the field of view stays the same). ``speckle``
    "brightness" makes the grain scale with the grey level (``anatomy.add_speckle``).
    """
    shape = check_shape(shape)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OctanoganError(f"phantom seed must be a non-negative integer, got {seed!r}")
    if eye not in ("OD", "OS"):
        raise OctanoganError(f"eye must be 'OD' or 'OS', got {eye!r}")
    if len(spacing_mm) != 3 or not all(float(s) > 0 for s in spacing_mm):
        raise OctanoganError(f"spacing_mm must be three positive numbers, got {spacing_mm!r}")
    if artefacts is not None and not isinstance(artefacts, ArtefactConfig):
        raise OctanoganError(f"artefacts must be an ArtefactConfig or None, got {artefacts!r}")
    streams = np.random.SeedSequence(int(seed)).spawn(4)  # the first three as before artefacts existed
    anatomy_rng, lesion_rng, noise_rng = (np.random.default_rng(s) for s in streams[:3])
    extra = None
    if artefacts is not None and artefacts.enabled:
        extra = draw_artefacts(artefacts, streams[3], shape)
    content = shape if extra is None else extra.content_shape

    grid = anatomy.Grid.for_shape(content)
    subject = anatomy.sample_subject(anatomy_rng, content)
    thickness = anatomy.layer_thickness(subject, grid, anatomy_rng)
    grays = anatomy.layer_grays(subject, grid, anatomy_rng)
    lesions = sample_lesions(lesion_rng, subject, grid) if diseased else []
    if extra is None:
        bm = anatomy.place_bruch_membrane(subject, grid, thickness, anatomy_rng)
    else:
        lesions = extra.prepare(subject, grid, thickness, lesions)  # optic disc: thinning, no lesions
        bm = extra.place(subject, grid, thickness, anatomy_rng)  # tilt, bowl, the disc's cup
    # Lesions lift the layers above them (BM stays), by at most 60 % of a retina's thickness.
    shape_layers(lesions, thickness, grays, max_lift=0.6 * anatomy.retina_rows(content[1]))
    boundaries = anatomy.stack_layers(bm, thickness)
    signal = anatomy.render(subject, grid, boundaries, grays, anatomy_rng)
    labels = paint_lesions(lesions, signal, boundaries)
    noise = subject.noise if extra is None else extra.degrade(subject, grid, signal, boundaries)
    image = anatomy.add_speckle(signal, noise_rng, noise, speckle)
    anatomy.blank_columns(image, anatomy_rng)
    if extra is None:
        invalid = np.zeros(image.shape, bool)
    else:
        image, labels, boundaries, invalid = extra.finish(image, labels, boundaries)
        spacing_mm = tuple(s if n == m else s * n / m  # type: ignore[assignment]
                           for s, n, m in zip(spacing_mm, shape, content))

    if eye == "OS":
        image, labels, boundaries, invalid = (
            np.ascontiguousarray(a[..., ::-1]) for a in (image, labels, boundaries, invalid))
    return PhantomVolume(
        image=image,
        labels=labels,
        ilm=boundaries[0].copy(),
        bm=boundaries[-1].copy(),
        spacing_mm=tuple(float(s) for s in spacing_mm),  # type: ignore[arg-type]
        layer_boundaries=boundaries,
        invalid=invalid,
        artefacts={} if extra is None else extra.summary(eye),
    )
