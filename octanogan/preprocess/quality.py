"""Quality control per B-scan: how much is image, whether its boundaries were measured, and
how clearly its retina stands out from the vitreous (docs/preprocessing.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from octanogan.preprocess.config import PreprocessConfig

#: Columns whose retina is at least this much export fill are not image columns.
_FILL_COLUMN = 0.5
#: Rows between the ILM and the vitreous sample, so the ILM edge's blur does not count as noise.
_VITREOUS_GAP_UM = 20.0
#: Fewer vitreous pixels than this (a tight crop) cannot estimate the noise: CNR is not measured.
_MIN_VITREOUS_PIXELS = 200

REASONS = {
    "invalid": "retina mostly hidden by export fill",
    "unmeasured": "boundaries mostly bridged, not measured",
    "low_contrast": "retina hardly brighter than the noise",
}


@dataclass
class Quality:
    """QC figures of each B-scan of a volume (arrays ``[B]``) and the reasons each one fails."""

    invalid_fraction: np.ndarray  # share of the retina band (ILM..BM, bridged) that is fill
    measured_fraction: np.ndarray
    cnr: np.ndarray  # NaN where there is too little vitreous to measure the noise
    reasons: list[list[str]]

    @property
    def passed(self) -> np.ndarray:
        return np.array([not r for r in self.reasons], dtype=bool)

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per B-scan: ``bscan``, the figures, ``qc_passed`` and ``qc_reasons``."""
        return [{"bscan": b, "invalid_fraction": round(float(self.invalid_fraction[b]), 4),
                 "measured_fraction": round(float(self.measured_fraction[b]), 4),
                 "cnr": round(float(self.cnr[b]), 3), "qc_passed": not self.reasons[b],
                 "qc_reasons": ";".join(self.reasons[b])} for b in range(len(self.reasons))]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for an ``.npz`` file (no pickling); :meth:`from_arrays` reads them back."""
        return {"qc_invalid_fraction": self.invalid_fraction.astype(np.float32),
                "qc_measured_fraction": self.measured_fraction.astype(np.float32),
                "qc_cnr": self.cnr.astype(np.float32),
                "qc_reasons": np.array([";".join(r) for r in self.reasons], dtype=str)}

    @classmethod
    def from_arrays(cls, arrays: Any) -> Quality:
        """The QC stored by :meth:`to_arrays` (a mapping such as an open ``.npz`` file)."""
        reasons = [[r for r in str(text).split(";") if r] for text in arrays["qc_reasons"]]
        return cls(np.asarray(arrays["qc_invalid_fraction"], np.float64),
                   np.asarray(arrays["qc_measured_fraction"], np.float64),
                   np.asarray(arrays["qc_cnr"], np.float64), reasons)

    def failure_counts(self) -> dict[str, int]:
        """B-scans failing for each reason (a B-scan may fail for several)."""
        counts = {name: sum(name in r for r in self.reasons) for name in REASONS}
        return {name: n for name, n in counts.items() if n}

    def failure_text(self) -> str:
        """``"invalid 1, low_contrast 2"``: B-scans failing for each reason."""
        return ", ".join(f"{name} {n}" for name, n in self.failure_counts().items())

    def describe_failures(self) -> str:
        """``"3 of 49 B-scans fail quality control (invalid 1, low_contrast 2)"``, or ``""``."""
        failed = len(self.reasons) - int(self.passed.sum())
        if not failed:
            return ""
        return f"{failed} of {len(self.reasons)} B-scans fail quality control ({self.failure_text()})"


def assess_quality(image: np.ndarray, invalid: np.ndarray, band: np.ndarray, ilm: np.ndarray,
                   measured: np.ndarray, config: PreprocessConfig,
                   spacing_mm: tuple[float, float, float]) -> Quality:
    """QC of every B-scan of a preprocessed volume.

    ``image`` is normalised ``[B, H, W]``, ``invalid`` its export fill, ``band`` the rows between
    ILM and BM (bridged across fill), ``ilm`` the ILM ``[B, W]`` and ``measured`` where both
    surfaces were measured rather than bridged.
    """
    depth = image.shape[1]
    rows = np.arange(depth, dtype=np.float32)[None, :, None]
    hidden = (band & invalid).sum(axis=1)  # [B, W] fill pixels in each column's retina
    invalid_fraction = hidden.sum(axis=1) / np.maximum(band.sum(axis=(1, 2)), 1)
    image_columns = hidden < _FILL_COLUMN * band.sum(axis=1)
    measured_fraction = (measured & image_columns).sum(axis=1) / np.maximum(image_columns.sum(axis=1), 1)

    gap = _VITREOUS_GAP_UM / (1000.0 * float(spacing_mm[1]))
    retina = band & ~invalid
    vitreous = (rows < ilm[:, None, :] - gap) & (rows >= max(3, round(0.02 * depth))) & ~invalid
    cnr = np.full(len(image), np.nan)
    for b in range(len(image)):
        noise = image[b][vitreous[b]]
        if noise.size >= _MIN_VITREOUS_PIXELS and retina[b].any():
            cnr[b] = (image[b][retina[b]].mean() - noise.mean()) / max(float(noise.std()), 1e-3)

    reasons = []
    for b in range(len(image)):
        fails = [("invalid", invalid_fraction[b] > config.qc_max_invalid),
                 ("unmeasured", measured_fraction[b] < config.qc_min_measured),
                 ("low_contrast", bool(cnr[b] < config.qc_min_cnr))]
        reasons.append([name for name, fired in fails if fired])
    return Quality(invalid_fraction, measured_fraction, cnr, reasons)
