"""Readers for NIfTI, NumPy and B-scan image files, and the NIfTI writer.

Every reader returns an :class:`OCTVolume`; every failure raises :class:`InputError` naming the
file and the problem. Vendor formats live in :mod:`octanogan.io.vendor` (optional extra).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from octanogan.errors import InputError
from octanogan.fsutil import atomic_path
from octanogan.io.volume import DEFAULT_SPACING_MM, OCTVolume, spacing_from_affine

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
VENDOR_SUFFIXES = (".vol", ".e2e", ".xml", ".fda", ".fds", ".img", ".dcm")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _check_finite(path: Path, data: np.ndarray) -> None:
    if data.size == 0:
        raise InputError(path, "holds no voxels (empty array)")
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InputError(path, f"holds {bad} NaN or infinite voxel(s)")


def _as_volume_array(path: Path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim > 3:  # e.g. NIfTI with trailing singleton time/channel axes
        data = np.squeeze(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(path, f"expected a 2D B-scan or 3D volume, got an array of shape {data.shape}")
    _check_finite(path, data)
    return data


def read_nifti(path: Path) -> OCTVolume:
    """Read a NIfTI volume stored as ``[bscan, depth, width]``."""
    import nibabel as nib

    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI file ({exc.__class__.__name__}: {exc})") from exc
    data = _as_volume_array(path, data)
    affine = np.asarray(image.affine, dtype=float)
    if data.shape != image.shape:  # squeezed or promoted: the stored affine no longer fits the axes
        return OCTVolume(data, DEFAULT_SPACING_MM, None, {"source": str(path), "format": "nifti"})
    return OCTVolume(data, spacing_from_affine(affine), affine, {"source": str(path), "format": "nifti"})


def read_npy(path: Path) -> OCTVolume:
    """Read a ``.npy`` array: ``[bscan, depth, width]`` or one ``[depth, width]`` B-scan."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy file ({exc.__class__.__name__}: {exc})") from exc
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise InputError(path, f"array dtype {data.dtype} is not numeric")
    return OCTVolume(_as_volume_array(path, data), DEFAULT_SPACING_MM, None,
                     {"source": str(path), "format": "npy"})


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        image = np.asarray(iio.imread(path))
    except Exception as exc:
        raise InputError(path, f"not a readable image ({exc.__class__.__name__}: {exc})") from exc
    if image.ndim == 3 and image.shape[-1] in (3, 4):  # RGB(A) rendering of a grey B-scan
        image = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if image.ndim != 2:
        raise InputError(path, f"expected a grey 2D B-scan image, got shape {image.shape}")
    return image


def read_image_file(path: Path) -> OCTVolume:
    """One B-scan image as a single-B-scan volume (the layout of 2D datasets such as OCT2017)."""
    data = _as_volume_array(path, _read_image(path))
    return OCTVolume(data, DEFAULT_SPACING_MM, None, {"source": str(path), "format": "image"})


def read_image_folder(path: Path) -> OCTVolume:
    """A folder of B-scan images, in natural file-name order, as one volume."""
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
    if not files:
        raise InputError(path, f"folder holds no B-scan images ({', '.join(IMAGE_SUFFIXES)})")
    bscans = [_read_image(f) for f in files]
    first = bscans[0].shape
    for file, bscan in zip(files, bscans):
        if bscan.shape != first:
            raise InputError(file, f"B-scan shape {bscan.shape} differs from {first} ({files[0].name})")
    data = _as_volume_array(path, np.stack(bscans))
    return OCTVolume(data, DEFAULT_SPACING_MM, None,
                     {"source": str(path), "format": "image_folder", "n_files": len(files)})


def read_mhd(path: Path) -> OCTVolume:
    """A MetaImage (``.mhd`` + ``.raw``) volume stored as ``[bscan, depth, width]`` (as in RETOUCH)."""
    from octanogan.io.metaimage import read_metaimage

    data, spacing = read_metaimage(path)
    data = _as_volume_array(path, data)
    spacing = spacing if len(spacing) == 3 else DEFAULT_SPACING_MM
    return OCTVolume(data, spacing, None, {"source": str(path), "format": "metaimage"})


def _reader_for(path: Path) -> Callable[[Path], OCTVolume]:
    if path.is_dir():
        return read_image_folder
    suffix = _suffix(path)
    if suffix in NIFTI_SUFFIXES:
        return read_nifti
    if suffix == ".npy":
        return read_npy
    if suffix == ".mhd":
        return read_mhd
    if suffix in IMAGE_SUFFIXES:
        return read_image_file
    if suffix in VENDOR_SUFFIXES:
        from octanogan.io import vendor

        return vendor.read_vendor
    raise InputError(path, f"unsupported file type '{suffix or path.name}'")


def read_volume(path: str | Path) -> OCTVolume:
    """Read any supported OCT volume (file or B-scan folder) as float32 ``[bscan, depth, width]``."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    return _reader_for(path)(path)


def read_label_map(path: str | Path, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Read an integer label map; with ``shape``, check that it matches its image."""
    volume = read_volume(path)
    data = volume.data
    if not np.allclose(data, np.round(data)) or data.min() < 0:
        raise InputError(path, "label map must hold non-negative integer values")
    labels = data.astype(np.uint8 if data.max() < 256 else np.int32)
    if shape is not None and labels.shape != tuple(shape):
        raise InputError(path, f"label map shape {labels.shape} differs from its image's {tuple(shape)}")
    return labels


def write_nifti(
    data: np.ndarray, affine: np.ndarray, path: str | Path, dtype: type = np.float32
) -> Path:
    """Write ``data`` as NIfTI atomically (temp file + rename); returns the path."""
    import nibabel as nib

    path = Path(path)
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), np.asarray(affine, dtype=float))
    image.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path
