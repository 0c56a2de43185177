"""Atomic file and folder writes and content hashing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def naming_failures(target: str | Path) -> Iterator[None]:
    """Give a failed write inside the block ``target``'s name, and say what a short write means.

    NumPy reports a write that stopped early (a full disk, a file size limit) as a bare
    ``OSError("N requested and M written")`` without errno or file; pandas and others raise
    ENOSPC without a file name.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename:
            raise
        if exc.errno is None and "requested and" in str(exc):
            raise OSError(errno.ENOSPC, f"could not be written whole ({exc}): the disk is full or a "
                                        "file size limit was reached", str(target)) from exc
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The temporary name keeps the target's suffixes so that writers which choose a format by
    extension (nibabel, imageio) behave as for the final name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes files private; outputs are ordinary files
    try:
        with naming_failures(target):
            yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def plain_json(value: Any) -> Any:
    """``value`` as plain JSON values: NaN and infinities become null, NumPy scalars Python
    numbers, paths strings (so the file stays valid JSON for every reader)."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:  # a NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_json(path: str | Path, missing: str = "file not found", hint: str = "") -> dict[str, Any]:
    """The JSON object in ``path``: every reader of octanogan's records goes through here, so a
    missing, unreadable or broken file is one InputError naming it (``hint`` says what to do)."""
    from octanogan.errors import InputError

    path = Path(path)
    suffix = f"; {hint}" if hint else ""
    if not path.is_file():
        raise InputError(path, missing)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(path, f"not valid JSON ({exc}){suffix}") from None
    if not isinstance(record, dict):
        raise InputError(path, f"expected a JSON object, got {type(record).__name__}{suffix}")
    return record


def atomic_write_json(target: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (see :func:`plain_json`)."""
    atomic_write_text(target, json.dumps(plain_json(data), indent=2, allow_nan=False) + "\n")


def link_tree(source: Path, destination: Path) -> None:
    """Recreate ``source`` under ``destination`` with hard links (copies where links fail)."""
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, or of every file below a folder (sorted relative paths)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(chunk_size):
                digest.update(block)
    return digest.hexdigest()


def safe_name(identifier: str) -> str:
    """A file-name-safe, collision-free stem for a volume id (ids may hold any characters).

    A plain id is its own stem; any other gets a readable slug plus 8 hex of its SHA-256. A plain
    id that already ends like such a suffix is hashed too, so no id can take another's stem.
    """
    import re

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identifier).strip("._")[:60] or "volume"
    if slug == identifier and not re.search(r"-[0-9a-f]{8}$", identifier):
        return slug
    return f"{slug}-{hashlib.sha256(identifier.encode()).hexdigest()[:8]}"


def relative_path(path: str | Path, folder: str | Path) -> str:
    """``path`` relative to ``folder`` (POSIX separators), for records stored inside ``folder``."""
    try:
        return Path(os.path.relpath(Path(path).absolute(), Path(folder).absolute())).as_posix()
    except ValueError:  # another drive on Windows
        return str(Path(path).absolute())
