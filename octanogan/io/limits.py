"""Size limits for everything a reader loads, checked on the *declared* size before allocating.

A small file can declare a huge array: a NIfTI or ``.npy`` header, a MetaImage ``DimSize``, a
PNG/TIFF whose compressed pixels inflate to gigabytes. Readers ask :func:`check_size` (volumes)
and :func:`check_bscan` (single images) before they decode anything, so such a file is refused
with one line naming it instead of exhausting memory.

The voxel limit fits the machine: a volume needs about ``BYTES_PER_VOXEL`` bytes of memory while it
is read and preprocessed (measured: 37 on top of its float32 copy), so the default is the memory
available when octanogan first asks, divided by that, and never more than 1024 B-scans of
2048 x 2048. Both limits can be set through the environment variables ``OCTANOGAN_MAX_VOXELS``
and ``OCTANOGAN_MAX_BSCAN_PIXELS``; they are read at every check, so a changed environment applies
at once, and a value that is not a positive whole number is one error before any work starts.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from octanogan.errors import InputError, OctanoganError

MAX_VOXELS_ENV = "OCTANOGAN_MAX_VOXELS"
MAX_BSCAN_PIXELS_ENV = "OCTANOGAN_MAX_BSCAN_PIXELS"


#: Memory one voxel needs while a volume is read and preprocessed (float32 copy, work arrays).
BYTES_PER_VOXEL = 48
#: The most voxels octanogan accepts in one volume whatever the memory: 1024 B-scans of 2048 x 2048.
VOXEL_CAP = 1024 * 2048 * 2048


@functools.lru_cache(maxsize=1)
def available_memory() -> int:
    """Bytes of memory available to this process now (``MemAvailable`` on Linux, else the
    physical memory); measured once per process, so every file of a run meets the same limit."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return VOXEL_CAP * BYTES_PER_VOXEL


def default_max_voxels() -> int:
    """The voxel limit without ``OCTANOGAN_MAX_VOXELS``: what the available memory holds."""
    return max(1, min(VOXEL_CAP, available_memory() // BYTES_PER_VOXEL))


@dataclass(frozen=True)
class ReadLimits:
    """The largest inputs a reader accepts."""

    #: Voxels in one volume (all B-scans together); see :func:`default_max_voxels`.
    max_voxels: int = VOXEL_CAP
    #: Pixels in one B-scan image file (height x width).
    max_bscan_pixels: int = 4096 * 4096

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """The machine's defaults, overridden by ``OCTANOGAN_MAX_VOXELS`` /
        ``OCTANOGAN_MAX_BSCAN_PIXELS``."""
        environ = os.environ if environ is None else environ
        return cls(
            max_voxels=_env_int(environ, MAX_VOXELS_ENV, default_max_voxels()),
            max_bscan_pixels=_env_int(environ, MAX_BSCAN_PIXELS_ENV, cls.max_bscan_pixels),
        )


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise OctanoganError(f"environment variable {name}={text!r} must be a positive integer "
                             f"(default {default})")
    return value


def current_limits() -> ReadLimits:
    """The limits in force now (defaults plus the environment)."""
    return ReadLimits.from_env()


def _dims(path: str | Path, shape: Iterable[object]) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(path, f"declares a shape that is not whole numbers ({shape!r})") from exc
    if any(d < 0 for d in dims):
        raise InputError(path, f"declares a negative dimension (shape {dims})")
    return dims


def check_size(path: str | Path, shape: Iterable[object], limits: ReadLimits | None = None) -> int:
    """Refuse a volume whose declared ``shape`` holds more than ``max_voxels``; returns its voxels."""
    limits = limits or current_limits()
    dims = _dims(path, shape)
    voxels = math.prod(dims)
    if voxels > limits.max_voxels:
        raise InputError(path, f"declares {voxels:,} voxels (shape {dims}), above the limit of "
                               f"{limits.max_voxels:,} (about {BYTES_PER_VOXEL} bytes of memory "
                               f"each); set {MAX_VOXELS_ENV} if this is a real scan and the "
                               "memory is there")
    return voxels


def check_bscan(path: str | Path, height: int, width: int, limits: ReadLimits | None = None) -> int:
    """Refuse one B-scan image declaring more than ``max_bscan_pixels``; returns its pixels."""
    limits = limits or current_limits()
    dims = _dims(path, (height, width))
    pixels = math.prod(dims)
    if pixels > limits.max_bscan_pixels:
        raise InputError(path, f"declares a {dims[1]} x {dims[0]} image ({pixels:,} pixels), above "
                               f"the limit of {limits.max_bscan_pixels:,} pixels per B-scan; raise "
                               f"{MAX_BSCAN_PIXELS_ENV} if this is a real scan")
    return pixels


def os_problem(exc: OSError) -> str:
    """A short reason for an operating-system error: "permission denied", "is a directory"..."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return f"cannot be read ({exc.strerror or exc.__class__.__name__})"


def reading_failure(path: Path, exc: BaseException, unreadable: str) -> InputError:
    """The one-line error for an exception that escaped a reader (the readers' safety net)."""
    if isinstance(exc, OSError):
        return InputError(path, os_problem(exc))
    if isinstance(exc, MemoryError):
        return InputError(path, "does not fit in memory; lower OCTANOGAN_MAX_VOXELS to refuse such "
                                "files up front")
    return InputError(path, f"{unreadable} ({exc.__class__.__name__}: {exc})")
