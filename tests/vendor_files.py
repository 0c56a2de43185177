"""Writers of small vendor files for tests (no real patient data needed)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: The patient id written into test files; it must never reach octanogan's outputs.
SECRET_ID = "PATIENT-4711"


def write_vol(path: Path, raw: np.ndarray, pattern: int = 3, eye: str = "OS",
              distance: float = 0.125) -> Path:
    """A minimal Heidelberg HSF-OCT-103 .vol file (layout of the VOL specification)."""
    n, depth, width = raw.shape
    hdr_size = 256 + 2 * 4 * width
    header = struct.pack(
        "<12s3I3d2I2dId4sQiI16s16sI24sdI24sd4I34s",
        b"HSF-OCT-103", width, n, depth, 0.0115, distance, 0.0039, 4, 4, 0.03, 0.03, 30, 0.0,
        eye.encode(), 0, pattern, hdr_size, b"42", b"", 7, SECRET_ID.encode(), 18000.0, 0,
        b"visit", 43000.0, 0, 0, 0, 0, b"",
    )
    out = bytearray(header.ljust(2048, b"\0") + bytes(16))  # header, then a 4x4 localizer
    for i, bscan in enumerate(raw):
        bscan_header = struct.pack("<12sI4d2IfI6f", b"HSF-BS-103", hdr_size, 0.0, i * distance,
                                   width * 0.0115, i * distance, 2, 256, 30.0, 0, *[0.0] * 6)
        segmentation = np.zeros((2, width), np.float32).tobytes()
        out += (bscan_header.ljust(256, b"\0") + segmentation).ljust(hdr_size, b"\0")
        out += bscan.astype("<f4").tobytes()
    path.write_bytes(bytes(out))
    return path


def write_dicom(path: Path, pixels: bytes, shape: tuple[int, int, int], **attributes: object) -> Path:
    """An 8-bit multi-frame Ophthalmic Tomography DICOM declaring ``shape`` (frames, rows,
    columns), holding ``pixels`` and any extra ``attributes`` (identifiers, device, spacing)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "OPT"
    ds.NumberOfFrames, ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.PixelData = pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
