"""One call from a raw volume to everything later stages need: normalised, flattened, masked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.preprocess.boundaries import find_surfaces
from octanogan.preprocess.config import PreprocessConfig
from octanogan.preprocess.flatten import flatten, flattening_shifts
from octanogan.preprocess.invalid import bright_fill, fill_mask
from octanogan.preprocess.normalize import high_within, intensity_range, scale_to_unit
from octanogan.preprocess.quality import Quality, assess_quality


@dataclass
class Preprocessed:
    """A preprocessed volume; ``[B, H, W]`` arrays, ``[B, W]`` surfaces (rows)."""

    image: np.ndarray        # float32, normalised to [-1, 1], original geometry
    flat: np.ndarray         # float32, flattened: BM at row bm_row in every column
    shifts: np.ndarray       # int32 [B, W], for flatten/unflatten
    ilm: np.ndarray          # float32 [B, W], detected ILM rows, original geometry
    bm: np.ndarray           # float32 [B, W], detected BM rows, original geometry
    bm_row: int              # BM row in the flattened image
    ilm_flat: np.ndarray     # float32 [B, W], ILM rows in the flattened image
    retina_mask: np.ndarray  # bool, ILM..BM inclusive and not fill, original geometry
    invalid: np.ndarray      # bool, export fill (not image), original geometry
    qc: Quality              # QC figures and failures per B-scan

    def retina_mask_flat(self) -> np.ndarray:
        """The retina mask in flattened geometry (bool ``[B, H, W]``)."""
        return flatten(self.retina_mask, self.shifts, fill=False)

    def geometry(self) -> dict[str, np.ndarray]:
        """What a scores folder keeps of the preprocessing (``maps/<stem>_geometry.npz``)."""
        return {"shifts": self.shifts, "bm_row": np.asarray(self.bm_row), "ilm": self.ilm,
                "bm": self.bm, "invalid": self.invalid, **self.qc.to_arrays()}

    def hidden_retina_flat(self) -> np.ndarray:
        """Export fill between ILM and BM (bridged across it), in flattened geometry.

        Fill elsewhere looks like background once normalised, and a dark vitreous clipped to the
        export's minimum is found as fill too, so only fill that hides retina keeps patches out.
        """
        band = retina_mask(self.ilm, self.bm, self.image.shape[1])
        return flatten(self.invalid & band, self.shifts, fill=False)


def retina_mask(ilm: np.ndarray, bm: np.ndarray, depth: int) -> np.ndarray:
    """Bool ``[B, depth, W]``: rows whose centre lies between the ILM and BM surfaces."""
    rows = np.arange(depth, dtype=np.float32)[None, :, None]
    return (rows >= ilm[:, None, :]) & (rows <= bm[:, None, :])


def preprocess_volume(data: np.ndarray, config: PreprocessConfig | None = None,
                      spacing_mm: tuple[float, float, float] = DEFAULT_SPACING_MM) -> Preprocessed:
    """Find export fill, normalise, detect ILM and BM, flatten BM to one row and mask the retina.

    Bright fill (e.g. white registration wedges) is left out of the intensity scale and shown
    as background (-1), so it neither compresses the retina's contrast nor makes edges. With
    ``intensity_reference="retina"`` the scale is set again once the retina is found (boundaries
    are always found on the whole-image scale, so they do not depend on this setting).
    """
    config = config or PreprocessConfig()
    values = np.asarray(data, dtype=np.float32)
    invalid = fill_mask(data)
    bright = bright_fill(data, invalid)
    low, high = intensity_range(values, config.low_percentile, config.high_percentile, ignore=bright)
    image = scale_to_unit(values, low, high)
    image[bright] = -1.0
    surfaces = find_surfaces(image, config, fill=invalid, spacing_mm=spacing_mm, bright=bright)
    ilm, bm = surfaces.ilm, surfaces.bm
    shifts, bm_row = flattening_shifts(ilm, bm, image.shape[1], config.target_bm_fraction,
                                       config.flat_margin_rows)
    band = retina_mask(ilm, bm, image.shape[1])
    if config.intensity_reference == "retina":
        high = high_within(values, config.high_percentile, band & ~invalid, bright, default=high)
        image = scale_to_unit(values, low, high)
        image[bright] = -1.0
    flat = flatten(image, shifts, fill=-1.0)
    if config.outside_retina == "grey":
        flat[~flatten(band, shifts, fill=False)] = 0.0
    return Preprocessed(
        image=image,
        flat=flat,
        shifts=shifts,
        ilm=ilm,
        bm=bm,
        bm_row=bm_row,
        ilm_flat=(ilm + shifts).astype(np.float32),
        retina_mask=band & ~invalid,
        invalid=invalid,
        qc=assess_quality(image, invalid, band, ilm, surfaces.ilm_measured & surfaces.bm_measured,
                          config, spacing_mm),
    )
