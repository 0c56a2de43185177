"""What the dataset recipes share: claiming the output folder, writing a volume with its label
map, and the tables.

A dataset conversion writes a whole folder of its own (its manifest, annotations and markers
describe that dataset alone): ``--out`` must be new or empty, or an unfinished conversion (marked
``converted``, no ``manifest.csv`` yet) that a rerun completes. Volume ids are the dataset's own
public case names (``Subject_01``, ``Cirrus_TRAIN001``, ``CNV-1234-1``), not patient names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from octanogan.errors import InputError
from octanogan.fsutil import atomic_write_text, safe_name
from octanogan.io.convert import MANIFEST_COLUMNS, ConversionReport, table_text
from octanogan.io.manifest import MANIFEST
from octanogan.io.readers import write_nifti
from octanogan.io.volume import affine_from_spacing
from octanogan.outputs.folder import claim_output, marker_kind, write_marker


def claim_dataset_output(root: Path, out_dir: Path) -> None:
    """Refuse an ``out_dir`` that overlaps ``root``, is someone else's, or holds a finished
    conversion (a dataset's tables would replace its manifest)."""
    if claim_output(out_dir, "converted", [root]) and (out_dir / MANIFEST).exists():
        raise InputError(out_dir, "holds converted volumes already; convert a dataset into a new "
                                  "or empty folder (its manifest, annotations and markers describe "
                                  "that dataset alone)")


def mark_output(out_dir: Path) -> None:
    """Mark ``out_dir`` as a ``converted`` folder before the first file is written into it."""
    if marker_kind(out_dir) != "converted":
        out_dir.mkdir(parents=True, exist_ok=True)
        write_marker(out_dir, "converted")


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
    mark_output(out_dir)
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
    mark_output(out)
    atomic_write_text(out / MANIFEST,
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
