"""One writer per output folder: an advisory lock beside ``--out`` that a killed process cannot leave
stuck.

``hold(out)`` takes an exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside ``out`` and keeps
it until the :func:`scope` it was taken in ends (each writing function is one), :func:`release_all`
(the CLI calls it when a command ends) or the process exits; the operating system drops the lock
of a killed process, so a stale lock file never blocks a rerun. A second process that wants the
same folder is refused at once, naming the holder's pid. ``hold(out, shared=True)`` is for writers
built to share a folder (the shards of one scoring job): they exclude every other writer but not
each other. Holding is re-entrant within one process. Where ``flock`` does not exist (Windows)
nothing is locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from octanogan.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_held: dict[Path, int] = {}


def lock_path(out: str | Path) -> Path:
    """The lock file of output folder ``out``."""
    out = Path(out).absolute()
    return out.with_name(f".{out.name}.lock")


def hold(out: str | Path, shared: bool = False) -> None:
    """Lock ``out`` for this process, or refuse when another process holds it."""
    path = lock_path(out)
    if fcntl is None or path in _held:
        return
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(out, f"cannot be written ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(out, f"is being written by another octanogan process (pid {holder}); "
                                  "wait for it to finish or choose another folder") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file that the previous holder unlinked while we waited to open it
            break
        os.close(fd)
    if not shared:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[path] = fd


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Release, on leaving, the locks taken inside (locks held before stay held); also a decorator."""
    before = set(_held)
    try:
        yield
    finally:
        for path in [p for p in _held if p not in before]:
            _release(path)


def release_all() -> None:
    """Drop every lock this process holds (and their files)."""
    for path in list(_held):
        _release(path)


def _release(path: Path) -> None:
    """Drop one lock; its file goes when no other process shares it."""
    fd = _held.pop(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the last holder: nobody is left to refuse
        path.unlink(missing_ok=True)
    except OSError:
        pass
    os.close(fd)
