"""What the dataset recipes share: writing a volume with its label map, and the tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from octanogan.fsutil import atomic_write_text, safe_name
from octanogan.io.convert import MANIFEST_COLUMNS, ConversionReport, table_text
from octanogan.io.readers import write_nifti
from octanogan.io.volume import affine_from_spacing


def relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes (manifest paths are relative)."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def write_case(
    out_dir: Path,
    volume_id: str,
    data: np.ndarray,
    spacing_mm: tuple[float, float, float],
    labels: np.ndarray | None = None,
) -> tuple[str, str]:
    """Write ``volumes/<id>.nii.gz`` (float32) and ``labels/<id>.nii.gz`` (uint8) on one grid.

    Returns the two paths relative to ``out_dir`` (the second empty without labels).
    """
    affine = affine_from_spacing(spacing_mm)
    name = f"{safe_name(volume_id)}.nii.gz"
    image = write_nifti(data, affine, out_dir / "volumes" / name)
    if labels is None:
        return relative(image, out_dir), ""
    label_path = write_nifti(labels, affine, out_dir / "labels" / name, dtype=np.uint8)
    return relative(image, out_dir), relative(label_path, out_dir)


def write_tables(
    report: ConversionReport,
    markers: dict[int, str] | None = None,
    extra_columns: tuple[str, ...] = (),
) -> None:
    """``manifest.csv``, and with markers ``annotations.csv`` and ``markers.json``, plus
    ``refused.csv`` listing the cases that were skipped."""
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "manifest.csv",
                      table_text(report.rows, (*MANIFEST_COLUMNS, *extra_columns)))
    if markers is not None:
        annotated = [r for r in report.rows if r.get("annotation_path")]
        atomic_write_text(out / "annotations.csv",
                          table_text(annotated, ("volume_id", "annotation_path")))
        atomic_write_text(out / "markers.json",
                          json.dumps({str(k): v for k, v in markers.items()}, indent=2) + "\n")
    atomic_write_text(out / "refused.csv",
                      table_text(({"file": r.file, "reason": r.reason} for r in report.refused),
                                 ("file", "reason")))
