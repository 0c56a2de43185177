"""RETOUCH challenge (Bogunović et al. 2019): ``<set>/<Vendor>/<CASE>/oct.mhd`` + ``reference.mhd``.

Every case becomes ``volumes/<Vendor>_<CASE>.nii.gz`` (its id is the set's public case name);
its fluid reference (1 IRF, 2 SRF, 3 PED) becomes ``labels/<Vendor>_<CASE>.nii.gz`` on the same
grid. All RETOUCH patients have macular edema (AMD or RVO), so every case is ``diseased`` and
in the ``test`` split. Intensities: 8-bit vendors (Cirrus, Topcon) as stored; 16-bit Spectralis
scaled by 255/65535 so all three share a 0..255 range (eyepy's convention for this set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from octanogan.errors import InputError, OctanoganError, Refusal
from octanogan.io.convert import ConversionReport, IdAllocator
from octanogan.io.datasets.common import claim_dataset_output, write_case, write_tables
from octanogan.io.devices import canonical_device
from octanogan.io.metaimage import read_metaimage
from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.outputs.lock import scope

RETOUCH_MARKERS = {1: "IRF", 2: "SRF", 3: "PED"}


def to_display_range(data: np.ndarray) -> np.ndarray:
    """Integer voxels scaled to 0..255 by their type's range; float voxels unchanged."""
    if np.issubdtype(data.dtype, np.integer) and np.iinfo(data.dtype).max > 255:
        return data.astype(np.float32) * (255.0 / np.iinfo(data.dtype).max)
    return data.astype(np.float32)


def _read_case(case: Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray | None]:
    data, spacing = read_metaimage(case / "oct.mhd")
    if data.ndim != 3:
        raise InputError(case / "oct.mhd", f"expected a 3D volume, got shape {data.shape}")
    spacing_mm = tuple(spacing) if len(spacing) == 3 else DEFAULT_SPACING_MM
    reference = case / "reference.mhd"
    if not reference.is_file():
        return to_display_range(data), spacing_mm, None  # type: ignore[return-value]
    labels, _ = read_metaimage(reference)
    if labels.shape != data.shape:
        raise InputError(reference, f"label map shape {labels.shape} differs from the "
                                    f"volume's {data.shape}")
    unknown = sorted(set(np.unique(labels).tolist()) - {0, *RETOUCH_MARKERS})
    if unknown:
        raise InputError(reference, f"holds label values {unknown} outside 0-3")
    return to_display_range(data), spacing_mm, labels.astype(np.uint8)  # type: ignore[return-value]


@scope()
def retouch_to_nifti(
    root: str | Path,
    out_dir: str | Path,
    progress: Callable[[Iterable[Path]], Iterator[Path]] | None = None,
) -> ConversionReport:
    """Convert every RETOUCH case under ``root``; write manifest, annotations and markers."""
    root, out_dir = Path(root), Path(out_dir)
    claim_dataset_output(root, out_dir)
    cases = sorted(p.parent for p in root.rglob("oct.mhd"))
    if not cases:
        raise InputError(root, "no RETOUCH cases found (expected <Vendor>/<CASE>/oct.mhd)")
    report = ConversionReport(out_dir)
    allocate = IdAllocator()
    for case in (progress or iter)(cases):
        vendor = case.parent.name
        volume_id = allocate([f"{vendor}_{case.name}", f"{case.parent.parent.name}_{vendor}_{case.name}"])
        try:
            data, spacing_mm, labels = _read_case(case)
        except OctanoganError as exc:
            report.refused.append(Refusal(str(case), getattr(exc, "problem", str(exc))))
            continue
        image, label_map = write_case(out_dir, volume_id, data, spacing_mm, labels)
        report.rows.append({
            "volume_id": volume_id, "path": image, "label": "diseased", "split": "test",
            "annotation_path": label_map,
            "device": canonical_device(vendor), "eye": "",
        })
    write_tables(report, RETOUCH_MARKERS)
    return report
