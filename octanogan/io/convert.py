"""Convert any supported input (vendor files, DICOM, B-scan folders, NIfTI, npy) to NIfTI + manifest.

``convert_inputs`` writes ``OUT/volumes/<safe_id>.nii.gz``, merges one row per volume into
``OUT/manifest.csv`` (rows of earlier runs with other ids are kept, so healthy and diseased
cohorts can be converted into one folder in two runs) and lists this run's refusals in
``OUT/refused.csv`` (``file, reason``). A file that cannot be used is refused, never fatal.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from octanogan.errors import OctanoganError
from octanogan.fsutil import atomic_write_text, safe_name, sha256_file
from octanogan.io.manifest import LABELS, SPLITS
from octanogan.io.readers import (
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    VENDOR_SUFFIXES,
    read_volume,
    write_nifti,
)
from octanogan.io.volume import OCTVolume

MANIFEST_COLUMNS = ("volume_id", "path", "label", "split", "annotation_path", "device", "eye")
VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, ".npy", *VENDOR_SUFFIXES)


@dataclass
class Refusal:
    """An input that was not converted, and why."""

    file: str
    reason: str


@dataclass
class ConversionReport:
    """What one conversion run wrote and refused."""

    out_dir: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / "manifest.csv"

    @property
    def refused_path(self) -> Path:
        return self.out_dir / "refused.csv"


def _name_suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _stem(path: Path) -> str:
    suffix = _name_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in
                                             p.relative_to(folder).parts))


def expand_inputs(paths: Iterable[Path]) -> tuple[list[Path], list[Refusal]]:
    """Files and B-scan folders to convert, and the inputs refused before reading.

    A folder is searched recursively: volume files (NIfTI, npy, vendor) are inputs of their own;
    a folder whose images are not part of a Heidelberg XML export is one B-scan-folder volume;
    any other file is refused as unsupported.
    """
    inputs: list[Path] = []
    refused: list[Refusal] = []
    for path in paths:
        if not path.exists():
            refused.append(Refusal(str(path), "file not found"))
        elif path.is_file():
            inputs.append(path)
        else:
            files = _visible_files(path)
            image_folders = sorted({f.parent for f in files if _name_suffix(f) in IMAGE_SUFFIXES})
            export_folders = {f.parent for f in files if _name_suffix(f) == ".xml"}
            inputs += [f for f in files if _name_suffix(f) in VOLUME_SUFFIXES]
            inputs += [d for d in image_folders if d not in export_folders]
            refused += [Refusal(str(f), f"unsupported file type '{_name_suffix(f) or f.name}'")
                        for f in files
                        if _name_suffix(f) not in (*VOLUME_SUFFIXES, *IMAGE_SUFFIXES)]
            if not files:
                refused.append(Refusal(str(path), "folder holds no files"))
    return inputs, refused


def read_all(path: Path) -> list[OCTVolume]:
    """Every volume in an input: several for a multi-series vendor file, else one."""
    if path.is_file() and _name_suffix(path) in VENDOR_SUFFIXES:
        from octanogan.io.vendor import read_vendor_all

        return read_vendor_all(path)
    return [read_volume(path)]


class _IdAllocator:
    """Volume ids from file names, made unique by the parent folder name, then a counter."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, path: Path, index: int | None) -> str:
        stem = _stem(path) + (f"_{index}" if index is not None else "")
        candidates = [stem, f"{path.parent.name}_{stem}"]
        candidates += [f"{stem}_{n}" for n in range(2, len(self.taken) + 3)]
        chosen = next(c for c in candidates if c not in self.taken)
        self.taken.add(chosen)
        return chosen


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def table_text(rows: Iterable[dict[str, str]], columns: Iterable[str]) -> str:
    """CSV text with the given columns (missing values empty)."""
    columns = list(columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue()


def _existing_rows(manifest: Path) -> list[dict[str, str]]:
    if not manifest.is_file():
        return []
    with open(manifest, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_manifest(out_dir: Path, rows: list[dict[str, str]], merge: bool = True) -> Path:
    """Write ``out_dir/manifest.csv``; with ``merge``, keep earlier rows whose ids differ."""
    manifest = out_dir / "manifest.csv"
    new_ids = {r["volume_id"] for r in rows}
    kept = [r for r in _existing_rows(manifest) if r.get("volume_id") not in new_ids] if merge else []
    atomic_write_text(manifest, table_text(kept + rows, MANIFEST_COLUMNS))
    return manifest


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise OctanoganError(f"unknown {what} '{value}' (expected one of {', '.join(choices)})")


def convert_inputs(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    label: str = "healthy",
    split: str = "train",
    progress: Callable[[Iterable[Path]], Iterator[Path]] | None = None,
    pseudonymise: bool = False,
) -> ConversionReport:
    """Convert every readable input to NIfTI and record it in ``out_dir/manifest.csv``.

    Volume ids are file names, unless ``pseudonymise``: then they are hashes of the file content
    (vendor exports often carry patient ids or names in their file names).
    """
    _check_choice(label, LABELS, "label")
    _check_choice(split, SPLITS, "split")
    out_dir = Path(out_dir)
    inputs, refused = expand_inputs(Path(p) for p in paths)
    report = ConversionReport(out_dir, refused=refused)
    new_id = _IdAllocator()
    for path in (progress or iter)(inputs):
        try:
            volumes = read_all(path)
        except OctanoganError as exc:
            report.refused.append(Refusal(str(path), getattr(exc, "problem", str(exc))))
            continue
        for index, volume in enumerate(volumes):
            volume_id = new_id(path, index if len(volumes) > 1 else None)
            if pseudonymise:
                volume_id = volume.meta.get("pseudo_id") or f"{sha256_file(path)[:16]}-{index}"
            target = out_dir / "volumes" / f"{safe_name(volume_id)}.nii.gz"
            write_nifti(volume.data, volume.affine, target)
            report.rows.append({
                "volume_id": volume_id, "path": _relative(target, out_dir), "label": label,
                "split": split, "annotation_path": "", "device": volume.meta.get("device", ""),
                "eye": volume.meta.get("eye", ""),
            })
    if report.rows:
        write_manifest(out_dir, report.rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report.refused_path,
                      table_text(({"file": r.file, "reason": r.reason} for r in report.refused),
                                 ("file", "reason")))
    return report
