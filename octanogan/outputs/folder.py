"""Folder markers and the guard every command runs on its ``--out`` before writing anything.

A folder octanogan writes holds ``octanogan.json``: ``{"kind": ..., "format_version": 1,
"octanogan_version": ...}``. Commands replace or resume only a folder of their own kind; an
existing non-empty folder without a marker (the user's own data) is never touched, and an output
may not contain, or lie inside, one of its inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from octanogan.errors import InputError

MARKER = "octanogan.json"
#: Folder kinds and how errors name them.
KINDS = {
    "cohort": "phantom cohort",
    "converted": "converted-volumes folder",
    "patch_store": "patch store",
    "run": "run folder",
    "scores": "scores folder",
    "evaluation": "evaluation folder",
    "report": "report folder",
    "pipeline": "pipeline output folder",
    "prediction": "prediction folder",
}


def marker_text(kind: str) -> str:
    """The marker file's content for ``kind``."""
    from octanogan import __version__

    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    return json.dumps({"kind": kind, "format_version": 1, "octanogan_version": __version__}, indent=2) + "\n"


def write_marker(folder: str | Path, kind: str) -> None:
    """Mark ``folder`` as an octanogan output of ``kind`` (atomic)."""
    from octanogan.fsutil import atomic_write_text

    atomic_write_text(Path(folder) / MARKER, marker_text(kind))


def marker_kind(folder: str | Path) -> str | None:
    """The kind named by ``folder/octanogan.json``, or None when there is no readable marker."""
    path = Path(folder) / MARKER
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if kind in KINDS else None


def visible_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` other than hidden ones (editor files, our own temporary folders)."""
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_no_overlap(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an ``out`` that is, contains, or lies inside one of ``inputs``."""
    target = Path(out).resolve()
    for item in inputs:
        source = Path(item).resolve()
        if _inside(source, target):
            raise InputError(out, f"--out contains the input {item}; write outputs to a separate folder")
        if source.is_dir() and _inside(target, source):
            raise InputError(out, f"--out lies inside the input folder {item}; write outputs elsewhere")


def claim_output(out: str | Path, kind: str, inputs: Iterable[str | Path] = ()) -> bool:
    """Check that ``out`` may receive an output of ``kind``; True when it already holds one.

    Absent or empty folders are free. A non-empty folder is accepted only when its marker names
    ``kind``: it is then the caller's to resume or replace. Everything else is refused with an
    :class:`InputError` before any work starts.
    """
    out = Path(out)
    check_no_overlap(out, inputs)
    if not out.exists():
        if out.is_symlink():
            raise InputError(out, "is a broken symbolic link")
        return False
    if not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if not visible_entries(out):
        return False
    found = marker_kind(out)
    if found == kind:
        return True
    if found is None:
        raise InputError(out, "exists, is not empty and was not written by octanogan; choose a new "
                              "or empty folder (octanogan only replaces folders it wrote)")
    raise InputError(out, f"holds an octanogan {KINDS[found]}, not a {KINDS[kind]}; choose another folder")
