"""A small MetaImage (``.mhd`` header + ``.raw`` voxels) reader, enough for RETOUCH.

The format is a text header of ``Key = Value`` lines (ITK's MetaIO) naming the voxel type, the
grid size ``DimSize = x y z``, the voxel size ``ElementSpacing`` and the data file. Voxels are
stored x fastest, so the array reads as ``[z, y, x]``; for OCT that is ``[bscan, depth, width]``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from octanogan.errors import InputError

ELEMENT_TYPES = {
    "MET_UCHAR": np.uint8, "MET_CHAR": np.int8, "MET_USHORT": np.uint16, "MET_SHORT": np.int16,
    "MET_UINT": np.uint32, "MET_INT": np.int32, "MET_FLOAT": np.float32, "MET_DOUBLE": np.float64,
}


def read_header(path: Path) -> dict[str, str]:
    """The ``Key = Value`` lines of a ``.mhd`` header."""
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read MetaImage header ({exc})") from exc
    header = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    return header


def read_metaimage(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Voxels as ``[z, y, x]`` (native dtype) and spacing in the same order (mm)."""
    path = Path(path)
    header = read_header(path)
    try:
        shape_xyz = [int(v) for v in header["DimSize"].split()]
        dtype = np.dtype(ELEMENT_TYPES[header["ElementType"]])
        data_file = header["ElementDataFile"]
    except KeyError as exc:
        raise InputError(path, f"MetaImage header lacks or misstates {exc}") from exc
    channels = int(header.get("ElementNumberOfChannels", "1"))
    if channels != 1:
        raise InputError(path, f"has {channels} channels per voxel; OCT is greyscale")
    spacing_xyz = [float(v) for v in header.get("ElementSpacing",
                                                header.get("ElementSize", "")).split()]
    big_endian = "True" in (header.get("BinaryDataByteOrderMSB", ""),
                            header.get("ElementByteOrderMSB", ""))
    dtype = dtype.newbyteorder(">" if big_endian else "<")
    if data_file == "LOCAL":
        raise InputError(path, "MetaImage with data inside the header file is not supported")
    raw_path = path.parent / data_file
    if not raw_path.is_file():
        raise InputError(path, f"its voxel file {raw_path.name} is missing")
    payload = raw_path.read_bytes()
    if header.get("CompressedData", "False") == "True":
        payload = zlib.decompress(payload)
    offset = max(int(header.get("HeaderSize", "0")), 0)
    n_voxels = int(np.prod(shape_xyz))
    if len(payload) - offset < n_voxels * dtype.itemsize:
        raise InputError(raw_path, f"holds {len(payload) - offset} bytes, expected "
                                   f"{n_voxels * dtype.itemsize} for {shape_xyz} {dtype}")
    data = np.frombuffer(payload, dtype=dtype, count=n_voxels, offset=offset)
    data = data.reshape(shape_xyz[::-1]).astype(dtype.newbyteorder("="))
    spacing = tuple(spacing_xyz[::-1]) if len(spacing_xyz) == len(shape_xyz) else ()
    return data, spacing
