"""Readers for NIfTI, NumPy and B-scan image files, and the NIfTI writer.

Every reader returns an :class:`OCTVolume`; every failure raises :class:`InputError` naming the
file and the problem. Vendor formats live in :mod:`octanogan.io.vendor` (optional extra).
Files are untrusted: each reader checks the size a file *declares* (header shape, image width x
height) against :mod:`octanogan.io.limits` before it decodes or allocates anything.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import atomic_path
from octanogan.io.limits import check_bscan, check_size, current_limits, os_problem, reading_failure
from octanogan.io.volume import DEFAULT_SPACING_MM, OCTVolume, spacing_from_affine

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
VENDOR_SUFFIXES = (".vol", ".e2e", ".xml", ".fda", ".fds", ".img", ".dcm")
T = TypeVar("T")


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


def _check_real(path: Path, dtype: np.dtype) -> None:
    """Refuse complex voxels (casting them to real would silently drop the imaginary part)."""
    if np.dtype(dtype).kind == "c":
        raise InputError(path, f"holds complex-valued voxels ({np.dtype(dtype)}); octanogan reads "
                               "intensity images: save the magnitude (abs) instead")


def _as_volume_array(path: Path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    _check_real(path, data.dtype)
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
        image = nib.load(str(path))  # reads the header only
        shape = image.shape
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI file ({exc.__class__.__name__}: {exc})") from exc
    _check_real(path, image.get_data_dtype())
    check_size(path, shape)
    try:
        data = np.asarray(image.dataobj)
    except Exception as exc:  # truncated or corrupt voxel data
        raise InputError(path, f"not a readable NIfTI file ({exc.__class__.__name__}: {exc})") from exc
    data = _as_volume_array(path, data)
    affine = np.asarray(image.affine, dtype=float)
    if data.shape != image.shape:  # squeezed or promoted: the stored affine no longer fits the axes
        return OCTVolume(data, DEFAULT_SPACING_MM, None, {"source": str(path), "format": "nifti"})
    return OCTVolume(data, spacing_from_affine(affine), affine, {"source": str(path), "format": "nifti"})


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, without reading the array."""
    from numpy.lib import format as npy_format

    with open(path, "rb") as handle:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(handle)
        else:  # version 3.0 (utf-8 field names) has no public header reader
            shape, _, dtype = npy_format._read_array_header(handle, version)
    return tuple(shape), np.dtype(dtype)


def read_npy(path: Path) -> OCTVolume:
    """Read a ``.npy`` array: ``[bscan, depth, width]`` or one ``[depth, width]`` B-scan."""
    try:
        shape, dtype = _npy_header(path)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy file ({exc.__class__.__name__}: {exc})") from exc
    if not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise InputError(path, f"array dtype {dtype} is not numeric")
    _check_real(path, dtype)
    check_size(path, shape)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy file ({exc.__class__.__name__}: {exc})") from exc
    return OCTVolume(_as_volume_array(path, data), DEFAULT_SPACING_MM, None,
                     {"source": str(path), "format": "npy"})


def _tiff_shape(path: Path) -> tuple[int, ...]:
    """The shape imageio will decode a TIFF to (its first series), from the tags only."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return tuple(int(d) for d in (tif.series[0].shape if tif.series else tif.pages[0].shape))


def _image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a B-scan image, read from its header without decoding pixels."""
    from PIL import Image

    if _suffix(path) in (".tif", ".tiff"):
        try:
            shape = _tiff_shape(path)
        except OSError:
            raise
        except Exception:  # not a TIFF tifffile understands: let Pillow try
            shape = ()
        if shape:
            if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4))):
                raise InputError(path, f"expected a grey 2D B-scan image, got shape {shape}")
            return shape[0], shape[1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        limit = current_limits().max_bscan_pixels
        raise InputError(path, f"declares an image too large to decode ({exc}); the limit is "
                               f"{limit:,} pixels per B-scan (OCTANOGAN_MAX_BSCAN_PIXELS)") from exc
    except OSError as exc:
        if isinstance(exc, PermissionError | IsADirectoryError):
            raise
        raise InputError(path, f"not a readable image ({exc.__class__.__name__}: {exc})") from exc
    except Exception as exc:
        raise InputError(path, f"not a readable image ({exc.__class__.__name__}: {exc})") from exc
    return height, width


def _checked_image_size(path: Path) -> tuple[int, int]:
    """:func:`_image_size`, refused when above the per-B-scan limit."""
    try:
        height, width = _image_size(path)
    except OSError as exc:
        raise InputError(path, os_problem(exc)) from exc
    check_bscan(path, height, width)
    return height, width


def _read_image(path: Path, checked: bool = False) -> np.ndarray:
    import imageio.v3 as iio

    if not checked:
        _checked_image_size(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's bomb warning: the size is checked above
            image = np.asarray(iio.imread(path))
    except OSError as exc:
        if isinstance(exc, PermissionError | IsADirectoryError):
            raise InputError(path, os_problem(exc)) from exc
        raise InputError(path, f"not a readable image ({exc.__class__.__name__}: {exc})") from exc
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


def _in_folder(folder: Path, file: Path, func: Callable[..., T], *args: object) -> T:
    """``func(*args)``, its :class:`InputError` about ``file`` restated as one about ``folder``."""
    try:
        return func(*args)
    except InputError as exc:
        if exc.path != file:
            raise
        raise InputError(folder, f"{file.name}: {exc.problem}") from exc


def read_image_folder(path: Path) -> OCTVolume:
    """A folder of B-scan images, in natural file-name order, as one volume."""
    try:
        files = sorted((p for p in path.iterdir()
                        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=natural_key)
    except OSError as exc:
        raise InputError(path, os_problem(exc)) from exc
    if not files:
        raise InputError(path, f"folder holds no B-scan images ({', '.join(IMAGE_SUFFIXES)})")
    # Headers first, nothing decoded yet: each image's size, equal sizes, the folder's total.
    sizes = [_in_folder(path, f, _checked_image_size, f) for f in files]
    for file, size in zip(files, sizes):
        if size != sizes[0]:
            raise InputError(path, f"{file.name}: B-scan shape {size} differs from {sizes[0]} "
                                   f"({files[0].name})")
    check_size(path, (len(files), *sizes[0]))
    bscans = [_in_folder(path, f, _read_image, f, True) for f in files]
    first = bscans[0].shape
    for file, bscan in zip(files, bscans):
        if bscan.shape != first:
            raise InputError(path, f"{file.name}: B-scan shape {bscan.shape} differs from {first} "
                                   f"({files[0].name})")
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
    """Read any supported OCT volume (file or B-scan folder) as float32 ``[bscan, depth, width]``.

    Every failure, whatever the library underneath raised, is an :class:`InputError` naming the
    file (``--debug`` shows the original exception as its cause).
    """
    path = Path(path)
    try:
        if not path.exists():
            raise InputError(path, "file not found")
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(path, "file is empty (0 bytes)")
        return _reader_for(path)(path)
    except OctanoganError:
        raise
    except Exception as exc:  # a reader library failing in a way not caught above
        raise reading_failure(path, exc, "cannot be read") from exc


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
