"""A small MetaImage (``.mhd`` header + ``.raw`` voxels) reader, enough for RETOUCH.

The format is a text header of ``Key = Value`` lines (ITK's MetaIO) naming the voxel type, the
grid size ``DimSize = x y z``, the voxel size ``ElementSpacing`` and the data file. Voxels are
stored x fastest, so the array reads as ``[z, y, x]``; for OCT that is ``[bscan, depth, width]``.

The header is untrusted: the data file must lie in the header's folder (no absolute paths, no
``..``, no symlinks leading out), the declared grid is checked against
:mod:`octanogan.io.limits` before any voxel is read, only the declared number of bytes is read
(or inflated, for ``CompressedData = True``), and every problem is an :class:`InputError` naming
the ``.mhd`` file.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from octanogan.errors import InputError
from octanogan.io.limits import check_size, os_problem

ELEMENT_TYPES = {
    "MET_UCHAR": np.uint8, "MET_CHAR": np.int8, "MET_USHORT": np.uint16, "MET_SHORT": np.int16,
    "MET_UINT": np.uint32, "MET_INT": np.int32, "MET_FLOAT": np.float32, "MET_DOUBLE": np.float64,
}
#: A header longer than this is not a MetaImage header (it would be voxels in a LOCAL file).
MAX_HEADER_BYTES = 1 << 20
#: Extra bytes a compressed stream may inflate to beyond the declared size (then ignored).
INFLATE_MARGIN = 64
_CHUNK = 1 << 20


def read_header(path: Path) -> dict[str, str]:
    """The ``Key = Value`` lines of a ``.mhd`` header, up to ``ElementDataFile`` (always last)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(MAX_HEADER_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read MetaImage header: {os_problem(exc)}") from exc
    header: dict[str, str] = {}
    for line in head[:MAX_HEADER_BYTES].decode("latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                break
    if len(head) > MAX_HEADER_BYTES and "ElementDataFile" not in header:
        raise InputError(path, f"MetaImage header runs past {MAX_HEADER_BYTES} bytes without an "
                               "ElementDataFile line")
    return header


def _required(path: Path, header: dict[str, str], key: str) -> str:
    value = header.get(key, "")
    if not value:
        raise InputError(path, f"MetaImage header lacks or misstates '{key}'")
    return value


def _whole(path: Path, key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(path, f"MetaImage {key} = {text!r} is not a whole number") from None


def _shape_xyz(path: Path, header: dict[str, str]) -> list[int]:
    text = _required(path, header, "DimSize")
    try:
        dims = [int(v) for v in text.split()]
    except ValueError:
        raise InputError(path, f"MetaImage DimSize = {text!r} is not a list of whole "
                               "numbers") from None
    if "NDims" in header and _whole(path, "NDims", header["NDims"]) != len(dims):
        raise InputError(path, f"MetaImage DimSize = {text!r} gives {len(dims)} sizes but NDims "
                               f"= {header['NDims']}")
    if not 2 <= len(dims) <= 4:
        raise InputError(path, f"MetaImage DimSize = {text!r} gives {len(dims)} sizes; expected "
                               "2 (a B-scan) or 3 (a volume)")
    if any(d <= 0 for d in dims):
        raise InputError(path, f"MetaImage DimSize = {text!r} holds a size below 1")
    return dims


def _spacing_xyz(path: Path, header: dict[str, str]) -> list[float]:
    key = "ElementSpacing" if "ElementSpacing" in header else "ElementSize"
    text = header.get(key, "")
    try:
        spacing = [float(v) for v in text.split()]
    except ValueError:
        raise InputError(path, f"MetaImage {key} = {text!r} is not a list of numbers") from None
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InputError(path, f"MetaImage {key} = {text!r} must hold positive finite numbers")
    return spacing


def _data_path(path: Path, data_file: str) -> Path:
    """The voxel file, which must lie in (or below) the header's folder."""
    upper = data_file.upper()
    if upper == "LOCAL":
        raise InputError(path, "MetaImage with data inside the header file is not supported")
    if upper.startswith("LIST") or ("%" in data_file and " " in data_file):
        raise InputError(path, f"multi-file MetaImage (ElementDataFile = {data_file}) is not "
                               "supported")
    relative = Path(data_file)
    if relative.is_absolute() or relative.drive:
        raise InputError(path, f"its ElementDataFile {data_file!r} is an absolute path; the "
                               "voxel file must lie in the header's folder")
    raw_path = path.parent / relative
    try:
        resolved = raw_path.resolve()
        folders = {path.parent.resolve(), path.resolve().parent}
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
        raise InputError(path, f"its ElementDataFile {data_file!r} cannot be resolved "
                               f"({exc.__class__.__name__}: {exc})") from exc
    if not any(resolved.is_relative_to(folder) for folder in folders):
        raise InputError(path, f"its ElementDataFile {data_file!r} points outside the header's "
                               "folder; the voxel file must lie in the header's folder")
    return raw_path


def _read_exact(handle: object, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``handle``; returns the bytes read (fewer at the end of the file)."""
    done = 0
    while done < len(buffer):
        n = handle.readinto(buffer[done:])  # type: ignore[attr-defined]
        if not n:
            break
        done += n
    return done


def _inflate_into(path: Path, raw_path: Path, handle: object, buffer: memoryview) -> int:
    """Inflate the zlib (or gzip) stream in ``handle`` into ``buffer``, never beyond its size."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
    done, want = 0, len(buffer)
    while done < want and not inflater.eof:
        chunk = inflater.unconsumed_tail or handle.read(_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            break
        try:
            out = inflater.decompress(chunk, want + INFLATE_MARGIN - done)
        except zlib.error as exc:
            raise InputError(path, f"its voxel file {raw_path.name} is not valid zlib data "
                                   f"({exc})") from exc
        take = min(len(out), want - done)
        buffer[done:done + take] = out[:take]
        done += take
    return done


def read_metaimage(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Voxels as ``[z, y, x]`` (native dtype) and spacing in the same order (mm)."""
    path = Path(path)
    header = read_header(path)
    shape_xyz = _shape_xyz(path, header)
    element = _required(path, header, "ElementType")
    if element not in ELEMENT_TYPES:
        raise InputError(path, f"unknown MetaImage ElementType {element!r} (supported: "
                               f"{', '.join(ELEMENT_TYPES)})")
    dtype = np.dtype(ELEMENT_TYPES[element])
    channels = _whole(path, "ElementNumberOfChannels", header.get("ElementNumberOfChannels", "1"))
    if channels != 1:
        raise InputError(path, f"has {channels} channels per voxel; OCT is greyscale")
    spacing_xyz = _spacing_xyz(path, header)
    big_endian = "TRUE" in (header.get("BinaryDataByteOrderMSB", "").upper(),
                            header.get("ElementByteOrderMSB", "").upper())
    dtype = dtype.newbyteorder(">" if big_endian else "<")
    compressed = header.get("CompressedData", "False").upper() == "TRUE"
    header_size = _whole(path, "HeaderSize", header.get("HeaderSize", "0"))
    if header_size < -1 or (header_size == -1 and compressed):
        raise InputError(path, f"MetaImage HeaderSize = {header_size} is not supported")
    raw_path = _data_path(path, _required(path, header, "ElementDataFile"))
    n_voxels = check_size(path, shape_xyz[::-1])
    if not raw_path.is_file():
        raise InputError(path, f"its voxel file {raw_path.name} is missing")

    n_bytes = n_voxels * dtype.itemsize
    try:
        with open(raw_path, "rb") as handle:
            file_size = handle.seek(0, 2)
            if header_size == -1:  # MetaIO: the voxels are the last bytes of the file
                header_size = max(file_size - n_bytes, 0)
            if not compressed and file_size - header_size < n_bytes:
                got = max(file_size - header_size, 0)
            else:
                data = np.empty(n_voxels, dtype=dtype)
                buffer = memoryview(data).cast("B")
                handle.seek(header_size)
                if compressed:
                    got = _inflate_into(path, raw_path, handle, buffer)
                else:
                    got = _read_exact(handle, buffer)
    except OSError as exc:
        raise InputError(path, f"cannot read its voxel file {raw_path.name}: "
                               f"{os_problem(exc)}") from exc
    if got < n_bytes:
        raise InputError(path, f"its voxel file {raw_path.name} holds {got} bytes"
                               f"{' once inflated' if compressed else ''} after a {header_size}"
                               f"-byte header, expected {n_bytes} for DimSize {shape_xyz} {dtype}")
    data = data.reshape(shape_xyz[::-1]).astype(dtype.newbyteorder("="), copy=False)
    spacing = tuple(spacing_xyz[::-1]) if len(spacing_xyz) == len(shape_xyz) else ()
    return data, spacing
