"""Folder markers and the guard every command runs on its ``--out`` before writing anything.

A folder octanogan writes holds ``octanogan.json``: ``{"kind": ..., "format_version": 1,
"octanogan_version": ...}``. Commands replace or resume only a folder of their own kind; an
existing folder without a marker that holds anything at all, hidden entries such as ``.git``
included (the user's own data), is never touched, and an output may not contain, or lie inside, one
of its inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from octanogan.errors import InputError
from octanogan.fsutil import atomic_write_text, read_json, umask
from octanogan.outputs.lock import hold, scope

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

    atomic_write_text(Path(folder) / MARKER, marker_text(kind))


def marker_kind(folder: str | Path) -> str | None:
    """The kind named by ``folder/octanogan.json``, or None when there is no readable marker."""
    try:
        kind = read_json(Path(folder) / MARKER).get("kind")
    except InputError:
        return None
    return kind if kind in KINDS else None


#: Names of the temporary files and folders of :mod:`octanogan.fsutil` (``.NAME.XXXXXXXX.tmp…``).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\..*)?$")


def foreign_entries(folder: Path) -> list[Path]:
    """Entries of ``folder``, hidden ones included, other than octanogan's own temporary files
    (left behind by a killed write)."""
    return [p for p in folder.iterdir() if not _TEMPORARY.match(p.name)]


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def resolved(path: str | Path) -> Path:
    """``path`` with every symbolic link followed; a link loop is an :class:`InputError`."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:  # Python < 3.13 raises RuntimeError on a loop
        raise InputError(path, f"cannot be followed: a symbolic link loop ({exc})") from None


def check_no_overlap(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an ``out`` that is, contains, or lies inside one of ``inputs``."""
    target = resolved(out)
    for item in inputs:
        source = resolved(item)
        if _inside(source, target):
            raise InputError(out, f"--out contains the input {item}; write outputs to a separate folder")
        if source.is_dir() and _inside(target, source):
            raise InputError(out, f"--out lies inside the input folder {item}; write outputs elsewhere")


def claim_output(out: str | Path, kind: str, inputs: Iterable[str | Path] = (),
                 shared: bool = False) -> bool:
    """Check that ``out`` may receive an output of ``kind``; True when it already holds one.

    Absent or empty folders (holding nothing, not even hidden entries) are free. A non-empty folder
    is accepted only when its marker names ``kind``: it is then the caller's to resume or replace.
    Everything else is refused with an :class:`InputError` before any work starts. An accepted
    ``out`` is locked for this process (:mod:`octanogan.outputs.lock`): a second writer is refused,
    unless both claim it ``shared`` (jobs built to write one folder together).
    """
    out = Path(out)
    check_no_overlap(out, inputs)
    if not out.exists():
        if out.is_symlink():
            raise InputError(out, "is a broken symbolic link")
        hold(out, shared)
        return False
    if not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    if next(out.iterdir(), None) is None:
        hold(out, shared)
        return False
    found = marker_kind(out)
    if found == kind:
        hold(out, shared)
        return True
    if found is None:
        held = ", ".join(sorted(p.name for p in out.iterdir())[:3])
        raise InputError(out, f"exists, is not empty ({held}) and was not written by octanogan; "
                              "choose a new or empty folder (octanogan only replaces folders it wrote)")
    raise InputError(out, f"holds an octanogan {KINDS[found]}, not a {KINDS[kind]}; choose another folder")


def _recover_swap(target: Path, old: Path) -> None:
    """Finish a swap that a kill interrupted between its two renames: put the old folder back."""
    if old.exists() and not target.exists():
        os.replace(old, target)


@contextlib.contextmanager
def atomic_dir(target: str | Path, kind: str) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` whole.

    The new folder is marked as an octanogan output of ``kind``. ``target`` itself may only be
    an octanogan folder of the same kind (callers check with :func:`claim_output` before working;
    this is the last line of defence).
    """
    with scope():
        yield from _atomic_dir(Path(target), kind)


def _atomic_dir(target: Path, kind: str) -> Iterator[Path]:
    old = target.with_name(f".{target.name}.old")
    _recover_swap(target, old)
    claim_output(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~umask())
    try:
        try:
            yield tmp
        except OSError as exc:  # name the file by where it was going, not by the temporary folder
            if exc.filename and Path(exc.filename).is_relative_to(tmp):
                final = target / Path(exc.filename).relative_to(tmp)
                raise OSError(exc.errno, exc.strerror, str(final)) from exc
            raise
        write_marker(tmp, kind)
        if target.exists():
            claim_output(target, kind)
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
