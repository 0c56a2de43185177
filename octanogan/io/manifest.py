"""Manifest CSV loading and validation (schema: data_manifests/README.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from octanogan.errors import InputError, ManifestError
from octanogan.io.vocabulary import MANIFEST_LABELS, SPLITS, UNKNOWN
from octanogan.outputs.cells import formula_like, formula_problem

#: The file name of the manifest every cohort and converted folder carries.
MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("volume_id", "path", "label", "split")
OPTIONAL_COLUMNS = ("annotation_path", "device", "eye")
EYES = ("OD", "OS", "")


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, "manifest is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable CSV ({exc})") from exc
    table.columns = [c.strip() for c in table.columns]
    return table.apply(lambda col: col.str.strip())


def _resolve(base: Path, value: str) -> Path:
    """``value`` as an absolute path; a relative one is relative to ``base`` (the table's folder),
    whatever the working directory, so later stages never resolve it again."""
    return Path(os.path.abspath(base / Path(value).expanduser()))


def require_labels(manifest: pd.DataFrame, path: str | Path, split: str = "test") -> None:
    """Refuse a manifest whose ``split`` volumes include unlabelled ones (evaluate needs labels)."""
    rows = [i for i, (label, part) in enumerate(zip(manifest["label"], manifest["split"]), start=1)
            if part == split and label == UNKNOWN]
    if rows:
        shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
        raise InputError(path, f"evaluate needs the label healthy or diseased for every {split} "
                               f"volume; row(s) {shown} have none (score or predict them instead)")


def load_manifest(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Load and validate a manifest; paths come back absolute (relative ones are to its folder).

    Every problem raises :class:`ManifestError` naming the row (1-based, header excluded), the
    column and the problem.
    """
    path = Path(path)
    table = _read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(path, None, missing[0], f"required column missing (have: {list(table.columns)})")
    if table.empty:
        raise ManifestError(path, None, None, "manifest lists no volumes")
    for column in OPTIONAL_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    base = path.parent
    table["label"] = table["label"].replace("", UNKNOWN)
    seen: dict[str, int] = {}
    for i, row in enumerate(table.itertuples(index=False), start=1):
        vid = row.volume_id
        if not vid:
            raise ManifestError(path, i, "volume_id", "empty volume id")
        if formula_like(vid):
            raise ManifestError(path, i, "volume_id", formula_problem(vid))
        if vid in seen:
            raise ManifestError(path, i, "volume_id", f"duplicate id '{vid}' (first in row {seen[vid]})")
        seen[vid] = i
        if row.label not in MANIFEST_LABELS:
            raise ManifestError(path, i, "label", f"unknown label '{row.label}' (expected one of "
                                                  f"{MANIFEST_LABELS}, or empty)")
        if row.split not in SPLITS:
            raise ManifestError(path, i, "split", f"unknown split '{row.split}' (expected one of {SPLITS})")
        if row.eye not in EYES:
            raise ManifestError(path, i, "eye", f"unknown eye '{row.eye}' (expected OD or OS)")
        if not row.path:
            raise ManifestError(path, i, "path", "empty path")
        if check_files:
            for column in ("path", "annotation_path"):
                value = getattr(row, column)
                if value and not _resolve(base, value).exists():
                    raise ManifestError(path, i, column, f"file not found: {_resolve(base, value)}")
    table["path"] = [str(_resolve(base, p)) for p in table["path"]]
    table["annotation_path"] = [str(_resolve(base, p)) if p else "" for p in table["annotation_path"]]
    return table


def select(manifest: pd.DataFrame, label: str | None = None, split: str | None = None) -> pd.DataFrame:
    """Rows with the given label and/or split."""
    keep = pd.Series(True, index=manifest.index)
    if label:
        keep &= manifest["label"] == label
    if split:
        keep &= manifest["split"] == split
    return manifest[keep].reset_index(drop=True)


def load_annotations(path: str | Path) -> dict[str, str]:
    """Annotations table (``volume_id, annotation_path``) as a dict of absolute paths."""
    path = Path(path)
    table = _read_csv(path)
    for column in ("volume_id", "annotation_path"):
        if column not in table.columns:
            raise ManifestError(path, None, column, "required column missing")
    result: dict[str, str] = {}
    for i, row in enumerate(table.itertuples(index=False), start=1):
        if formula_like(row.volume_id):
            raise ManifestError(path, i, "volume_id", formula_problem(row.volume_id))
        if row.volume_id in result:
            raise ManifestError(path, i, "volume_id", f"duplicate id '{row.volume_id}'")
        target = _resolve(path.parent, row.annotation_path)
        if not row.annotation_path or not target.exists():
            raise ManifestError(path, i, "annotation_path", f"file not found: {target}")
        result[row.volume_id] = str(target)
    return result


def load_markers(path: str | Path) -> dict[int, str]:
    """Marker table: JSON ``{"1": "IRF", ...}`` or CSV ``value,name``; label 0 is background."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "marker table not found")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object such as {\"1\": \"IRF\"}")
            markers = {int(k): str(v) for k, v in raw.items()}
        else:
            table = _read_csv(path)
            markers = {int(v): str(n) for v, n in zip(table["value"], table["name"])}
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a valid marker table ({exc})") from exc
    if 0 in markers:
        raise InputError(path, "label value 0 is background and cannot name a marker")
    for value, name in markers.items():
        if formula_like(name):
            raise InputError(path, f"marker {value}: {formula_problem(name)}")
    negative = sorted(k for k in markers if k < 0)
    if negative:
        raise InputError(path, f"label values must be positive integers, got {negative[0]}")
    return markers
