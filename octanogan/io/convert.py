"""Convert any supported input (vendor files, DICOM, B-scan folders, NIfTI, npy) to NIfTI + manifest.

``convert_inputs`` writes ``OUT/volumes/<safe_id>.nii.gz``, merges one row per volume into
``OUT/manifest.csv`` (rows of earlier runs are kept, so healthy and diseased cohorts can be
converted into one folder in two runs), records each volume's source hash in ``OUT/sources.csv``
and lists this run's refusals in ``OUT/refused.csv`` (``file, reason``). A file that cannot be
used is refused, never fatal. ``OUT`` is marked as a ``converted`` folder (``octanogan.json``);
any other non-empty folder, or one overlapping an input, is refused before anything is read.
Nothing written before is ever overwritten: volume ids and file names are allocated around the
existing rows, and content converted before is refused as a duplicate.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from octanogan.errors import OctanoganError, Refusal
from octanogan.fsutil import atomic_write_text, safe_name, sha256_file
from octanogan.io.devices import canonical_device
from octanogan.io.manifest import MANIFEST, SPLITS
from octanogan.io.readers import (
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    VENDOR_SUFFIXES,
    read_volume,
    write_nifti,
)
from octanogan.io.vocabulary import MANIFEST_LABELS
from octanogan.io.volume import OCTVolume
from octanogan.outputs.cells import FORMULA_STARTS, safe_cell
from octanogan.outputs.folder import claim_output, write_marker
from octanogan.outputs.lock import scope

MANIFEST_COLUMNS = ("volume_id", "path", "label", "split", "annotation_path", "device", "eye")
VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, ".npy", *VENDOR_SUFFIXES)


@dataclass
class ConversionReport:
    """What one conversion run wrote and refused."""

    out_dir: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST

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
        elif not path.is_dir():
            refused.append(Refusal(str(path), "is not a regular file or folder (a pipe, socket or "
                                              "device); give a scan file or a folder"))
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


class IdAllocator:
    """Volume ids that clash neither with each other nor with the rows already in the folder.

    An id is taken when a row (of this run or an earlier one) has it, or when its file
    ``volumes/<safe_name(id)>.nii.gz`` is another row's file (compared without case, for
    case-insensitive file systems). The first free candidate wins, then ``<first>_2``, ``_3``...
    """

    def __init__(self, rows: Iterable[dict[str, str]] = ()) -> None:
        self.ids: set[str] = set()
        self.files: set[str] = set()
        for row in rows:
            self.ids.add(row.get("volume_id", ""))
            self.files.add(Path(row.get("path", "")).as_posix().lower())

    @staticmethod
    def file_for(volume_id: str) -> str:
        """Where the volume of ``volume_id`` is written, relative to the output folder."""
        return f"volumes/{safe_name(volume_id)}.nii.gz"

    def free(self, volume_id: str) -> bool:
        return volume_id not in self.ids and self.file_for(volume_id).lower() not in self.files

    def __call__(self, candidates: list[str]) -> str:
        counter = (f"{candidates[0]}_{n}" for n in itertools.count(2))
        chosen = next(c for c in itertools.chain(candidates, counter) if self.free(c))
        self.ids.add(chosen)
        self.files.add(self.file_for(chosen).lower())
        return chosen


def id_candidates(path: Path, index: int | None, digest: str, pseudo_id: str | None,
                  pseudonymise: bool) -> list[str]:
    """Preferred volume ids of volume ``index`` (None: the only one) of ``path``, best first.

    Pseudonymised: the vendor reader's ``pseudo_id``, else the first 16 hex digits of the
    content's SHA-256 (plus ``-<index>`` in a multi-volume file). With file names: the file name,
    then the parent folder's name in front.
    """
    if pseudonymise:
        return [pseudo_id or (digest[:16] + (f"-{index}" if index is not None else ""))]
    stem = _stem(path).lstrip("".join(FORMULA_STARTS)) or "volume"  # no id a spreadsheet would run
    stem += f"_{index}" if index is not None else ""
    return [stem, f"{path.parent.name}_{stem}"]


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def table_text(rows: Iterable[dict[str, str]], columns: Iterable[str]) -> str:
    """CSV text with the given columns (missing values empty)."""
    columns = list(columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else safe_cell(str(row[c])) for c in columns})
    return buffer.getvalue()


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        return [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _existing_rows(manifest: Path) -> list[dict[str, str]]:
    return _read_csv(manifest)[1]


def write_manifest(out_dir: Path, rows: list[dict[str, str]], merge: bool = True) -> Path:
    """Write ``out_dir/manifest.csv``; with ``merge``, keep earlier rows whose ids differ.

    Columns of an earlier manifest beyond the standard ones (e.g. ``diagnosis``) are kept.
    """
    manifest = out_dir / MANIFEST
    columns, earlier = _read_csv(manifest) if merge else ([], [])
    new_ids = {r["volume_id"] for r in rows}
    kept = [r for r in earlier if r.get("volume_id") not in new_ids]
    extra = tuple(c for c in columns if c not in MANIFEST_COLUMNS)
    atomic_write_text(manifest, table_text(kept + rows, (*MANIFEST_COLUMNS, *extra)))
    return manifest


SOURCES = "sources.csv"
SOURCE_COLUMNS = ("volume_id", "sha256", "series")


def read_sources(out_dir: Path) -> dict[str, tuple[str, str]]:
    """``volume_id -> (sha256 of the source, series index or "")`` recorded in ``out_dir``."""
    return {r["volume_id"]: (r.get("sha256", ""), r.get("series", ""))
            for r in _read_csv(out_dir / SOURCES)[1] if r.get("volume_id") and r.get("sha256")}


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise OctanoganError(f"unknown {what} '{value}' (expected one of {', '.join(choices)})")


def _converted_before(earlier: list[dict[str, str]], sources: dict[str, tuple[str, str]]
                      ) -> dict[str, str]:
    """sha256 -> how to name the first volume of that content (earlier runs; this run adds)."""
    converted: dict[str, str] = {}
    for row in earlier:
        if row.get("volume_id") in sources:
            converted.setdefault(sources[row["volume_id"]][0],
                                 f"already converted as volume '{row['volume_id']}'")
    return converted


def _read_new(path: Path, converted: dict[str, str]
              ) -> tuple[str, list[OCTVolume], Refusal | None]:
    """The input's hash and volumes, or why it is refused (unreadable, or content seen before)."""
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return "", [], Refusal(str(path), f"cannot be read ({exc.strerror or exc})")
    if digest in converted:
        return digest, [], Refusal(str(path), f"{converted[digest]} (same content)")
    try:
        return digest, read_all(path), None
    except OctanoganError as exc:
        return digest, [], Refusal(str(path), getattr(exc, "problem", str(exc)))


@scope()
def convert_inputs(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    label: str = "healthy",
    split: str = "train",
    progress: Callable[[Iterable[Path]], Iterator[Path]] | None = None,
    pseudonymise: bool = True,
) -> ConversionReport:
    """Convert every readable input to NIfTI and record it in ``out_dir/manifest.csv``.

    ``out_dir`` must be new, empty or an earlier conversion's folder, and may not overlap an
    input (:func:`octanogan.outputs.folder.claim_output`). Volume ids are hashes of the content
    (vendor exports often carry patient ids or names in their file names) unless
    ``pseudonymise=False``: then file names. Nothing already in ``out_dir`` is overwritten: an
    input whose content was converted before (this run or earlier) is refused, and an id or file
    name that is taken gets another one (:class:`IdAllocator`). ``sources.csv`` records the
    SHA-256 of each volume's source (hashes only, no file names).
    """
    _check_choice(label, MANIFEST_LABELS, "label")
    _check_choice(split, SPLITS, "split")
    out_dir = Path(out_dir)
    paths = [Path(p) for p in paths]
    marked = claim_output(out_dir, "converted", paths)
    earlier = _existing_rows(out_dir / MANIFEST)
    sources = read_sources(out_dir)
    earlier_ids = {r.get("volume_id", "") for r in earlier}
    converted = _converted_before(earlier, sources)
    inputs, refused = expand_inputs(paths)
    report = ConversionReport(out_dir, refused=refused)
    allocate = IdAllocator(earlier)

    def mark() -> None:
        nonlocal marked
        if not marked:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_marker(out_dir, "converted")
            marked = True

    for path in (progress or iter)(inputs):
        digest, volumes, refusal = _read_new(path, converted)
        if refusal is not None:
            report.refused.append(refusal)
            continue
        ids: list[str] = []
        for index, volume in enumerate(volumes):
            position = index if len(volumes) > 1 else None
            volume_id = allocate(id_candidates(path, position, digest, volume.meta.get("pseudo_id"),
                                               pseudonymise))
            target = out_dir / IdAllocator.file_for(volume_id)
            mark()
            write_nifti(volume.data, volume.affine, target)
            sources[volume_id] = (digest, "" if position is None else str(position))
            ids.append(volume_id)
            report.rows.append({
                "volume_id": volume_id, "path": _relative(target, out_dir), "label": label,
                "split": split, "annotation_path": "",
                "device": canonical_device(volume.meta.get("device")),
                "eye": volume.meta.get("eye", ""),
                "source": str(path),  # for the caller only: never written to the manifest
            })
        if ids:
            converted[digest] = f"same content as {path} (volume '{ids[0]}')"
    mark()
    if report.rows:
        kept = earlier_ids | {r["volume_id"] for r in report.rows}
        atomic_write_text(out_dir / SOURCES, table_text(
            ({"volume_id": i, "sha256": d, "series": s} for i, (d, s) in sorted(sources.items())
             if i in kept), SOURCE_COLUMNS))
        write_manifest(out_dir, report.rows)
    atomic_write_text(report.refused_path,
                      table_text(({"file": r.file, "reason": r.reason} for r in report.refused),
                                 ("file", "reason")))
    return report
