"""Vendor OCT files (the ``octanogan[vendor]`` extra): Heidelberg, Topcon, Zeiss, DICOM.

Every reader returns :class:`OCTVolume` objects with spacing in mm as ``(bscan, depth, width)``,
an affine built from that spacing, float32 intensities and non-identifying ``meta``:
``source, format, device, eye ("OD"/"OS"/""), pseudo_id, scan, intensity, spacing_source``.
Patient names, birth dates and patient ids stay in the file unless ``include_identifiers=True``
(then they go to ``meta["identifiers"]``). ``pseudo_id`` is a hash of the file's bytes: the same
file always gets the same id, and the id reveals nothing about the patient.

Intensities (``intensity=``): ``"display"`` (default) gives what the vendor software shows,
on a 0..255 scale for every vendor. Heidelberg ``.vol``/``.e2e`` store linear reflectivity as
floats in [0, 1]; their display form is the fourth root ``255 * x ** 0.25`` (the mapping in
Heidelberg's VOL specification). ``"raw"`` gives the values as stored (Heidelberg: linear floats;
its "no data" marker becomes 0). Topcon, Zeiss, Heidelberg XML exports and most DICOMs store 8-bit
display values already, so both settings give the same numbers for them.

Only raster scans (one line or a stack of parallel lines) are accepted: circular and radial
scans raise :class:`InputError` naming the file and why.

Vendor files are untrusted: the size a file declares (Heidelberg ``.vol`` and DICOM headers,
E2E B-scan metadata) is checked against :mod:`octanogan.io.limits` before decoding, every decoded
array again before it is copied, and any failure of a parsing library is an :class:`InputError`
naming the file.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import sha256_file
from octanogan.io.devices import canonical_device
from octanogan.io.limits import check_size, reading_failure
from octanogan.io.volume import DEFAULT_SPACING_MM, OCTVolume, affine_from_spacing

Intensity = Literal["display", "raw"]

#: Heidelberg scan patterns (VOL specification) and what we make of them.
HEIDELBERG_PATTERNS = {0: "unknown", 1: "line", 2: "circle", 3: "volume", 4: "volume", 5: "radial"}
REFUSED_PATTERNS = {
    2: "a circular scan (e.g. a peripapillary RNFL scan): its B-scan follows a circle around the "
       "optic disc, not a straight line, so it has no raster geometry",
    5: "a radial (star) scan: its B-scans cross at the centre instead of lying side by side",
}
#: Values at or above this mark "no data" in Heidelberg float B-scans.
HEIDELBERG_INVALID = 3.0e38
#: Heidelberg's E2E files give B-scan positions in degrees; HEYEX converts with this factor.
MM_PER_DEGREE = 0.2896
#: Zeiss Cirrus ``.img`` cube protocols: B-scan size (depth, width), n_bscans, spacing (mm).
CIRRUS_CUBES = {
    (1024, 512, 128): (2.0 / 1024, 6.0 / 512, 6.0 / 128),
    (1024, 200, 200): (2.0 / 1024, 6.0 / 200, 6.0 / 200),
}


def _vendor_module(name: str, suffix: str) -> ModuleType:
    """Import an optional reader library, or explain how to install it."""
    from importlib import import_module

    try:
        return import_module(name)
    except ImportError as exc:
        raise OctanoganError(
            f"reading {suffix} files needs the '{name.split('.')[0]}' package: "
            "pip install 'octanogan[vendor]'"
        ) from exc


def normalise_eye(value: object) -> str:
    """``"OD"``/``"OS"`` from the many ways vendors spell laterality; ``""`` when unknown."""
    text = str(value or "").strip().upper().split(".")[-1]
    if text in ("OD", "R", "RIGHT"):
        return "OD"
    if text in ("OS", "L", "LEFT"):
        return "OS"
    return ""


def _pseudo_id(path: Path, index: int | None = None) -> str:
    digest = sha256_file(path)[:16]
    return digest if index is None else f"{digest}-{index}"


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _spacing(
    bscan: object, depth: object, width: object, source: str
) -> tuple[tuple[float, float, float], str]:
    """Spacing from possibly missing values; the defaults fill gaps and the source says so."""
    given = (_positive(bscan), _positive(depth), _positive(width))
    spacing = tuple(g if g is not None else d for g, d in zip(given, DEFAULT_SPACING_MM))
    missing = [axis for axis, g in zip(("bscan", "depth", "width"), given) if g is None]
    note = source if not missing else f"{source}; default for {', '.join(missing)}"
    return spacing, note  # type: ignore[return-value]


def _volume(
    path: Path,
    data: np.ndarray,
    spacing: tuple[tuple[float, float, float], str],
    meta: dict[str, Any],
    identifiers: dict[str, Any],
    include_identifiers: bool,
    index: int | None = None,
) -> OCTVolume:
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.size == 0:
        raise InputError(path, f"expected B-scans [bscan, depth, width], got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputError(path, "holds NaN or infinite intensities")
    spacing_mm, spacing_source = spacing
    meta = {"source": str(path), "pseudo_id": _pseudo_id(path, index),
            "spacing_source": spacing_source, **meta}
    meta["eye"] = normalise_eye(meta.get("eye"))
    if include_identifiers:
        meta["identifiers"] = {k: str(v) for k, v in identifiers.items() if v not in (None, "")}
    return OCTVolume(data, spacing_mm, affine_from_spacing(spacing_mm), meta)


def heidelberg_intensity(raw: np.ndarray, intensity: Intensity) -> np.ndarray:
    """Heidelberg float B-scans as display values (``255 * x ** 0.25``) or raw linear values."""
    raw = np.asarray(raw, dtype=np.float32)
    data = np.where(np.isfinite(raw) & (raw < HEIDELBERG_INVALID), raw, 0.0).astype(np.float32)
    data = np.clip(data, 0.0, None)
    if intensity == "raw":
        return data
    return (255.0 * np.clip(data, 0.0, 1.0) ** 0.25).astype(np.float32)


def _refuse_pattern(path: Path, pattern: int, where: str = "") -> None:
    if pattern in REFUSED_PATTERNS:
        raise InputError(
            path, f"{where}is {REFUSED_PATTERNS[pattern]}; octanogan needs raster OCT "
                  "(a line scan or a volume of parallel B-scans)"
        )


# --- Heidelberg ---------------------------------------------------------------------------------


def _vol_declared_shape(path: Path) -> tuple[int, int, int]:
    """``(n_bscans, depth, width)`` from a ``.vol`` file header (HSF-OCT: 12-byte version, then
    SizeX, NumBScans, SizeZ as little-endian uint32)."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or not head.startswith(b"HSF-OCT"):
        raise InputError(path, "not a readable Heidelberg .vol file (no HSF-OCT header)")
    width, n_bscans, depth = struct.unpack("<3I", head[12:24])
    return n_bscans, depth, width


def read_heidelberg_vol(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """A Heidelberg Spectralis ``.vol`` file (HSF-OCT-1xx) through eyepy's parser."""
    he = _vendor_module("eyepy.io.he", ".vol")
    check_size(path, _vol_declared_shape(path))
    try:
        parsed = he.HeVolReader(path).parsed_file
    except Exception as exc:  # construct raises many types for truncated or foreign files
        raise InputError(path, f"not a readable Heidelberg .vol file ({exc.__class__.__name__})") from exc
    _refuse_pattern(path, int(parsed.scan_pattern))
    bscans = [np.asarray(b.data) for b in parsed.bscans]
    check_size(path, (len(bscans), *(bscans[0].shape if bscans else (0, 0))))
    raw = np.stack(bscans)
    n_bscans = raw.shape[0]
    spacing = _spacing(parsed.distance if n_bscans > 1 else None, parsed.scale_y, parsed.scale_x,
                       "file header")
    meta = {"format": "heidelberg_vol", "device": "Heidelberg Spectralis",
            "eye": parsed.scan_position,
            "scan": HEIDELBERG_PATTERNS.get(int(parsed.scan_pattern), "unknown"),
            "intensity": intensity, "version": str(parsed.version).strip()}
    identifiers = {"patient_id": str(parsed.patient_id).strip(), "pid": parsed.pid,
                   "birth_date": parsed.dob, "visit_id": str(parsed.visit_id).strip()}
    data = heidelberg_intensity(raw, intensity)
    return [_volume(path, data, spacing, meta, identifiers, include_identifiers)]


def _e2e_series_volume(
    path: Path, series: Any, index: int, intensity: Intensity, include_identifiers: bool
) -> OCTVolume:
    bscan_meta = series.get_bscan_meta()
    pattern = int(bscan_meta[0]["scan_pattern"]) if bscan_meta else 0
    _refuse_pattern(path, pattern, f"series {index} ")
    if bscan_meta:
        check_size(path, (len(bscan_meta), bscan_meta[0]["size_y"], bscan_meta[0]["size_x"]))
    raw = np.asarray(series.get_bscans(), dtype=np.float32)
    check_size(path, raw.shape)
    raw = np.where(raw > 1.99, HEIDELBERG_INVALID, raw)  # E2E's empty-region marker
    n_bscans = raw.shape[0]
    centres = [m["center_y"] for m in bscan_meta] if bscan_meta else []
    bscan = (abs(max(centres) - min(centres)) * MM_PER_DEGREE / (n_bscans - 1)
             if n_bscans > 1 and centres else None)
    x_scale = series.get_x_scale_derivation().get("scaling_x_um_per_pixel")
    spacing = _spacing(bscan, bscan_meta[0].get("scale_y") if bscan_meta else None,
                       x_scale / 1000 if x_scale else None,
                       "derived from E2E B-scan positions (provisional)")
    meta = {"format": "heidelberg_e2e", "device": "Heidelberg Spectralis",
            "eye": series.laterality(), "scan": HEIDELBERG_PATTERNS.get(pattern, "unknown"),
            "intensity": intensity, "series": index}
    heyex = series.get_heyex_metadata().get("Patient", {}) if include_identifiers else {}
    identifiers = {"name": f"{heyex.get('Surname') or ''}, {heyex.get('First Name') or ''}"
                   .strip(", "), "patient_id": heyex.get("Patient ID"),
                   "birth_date": heyex.get("Date of Birth") or heyex.get("DOB")}
    data = heidelberg_intensity(raw, intensity)
    return _volume(path, data, spacing, meta, identifiers, include_identifiers, index)


def read_heidelberg_e2e(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """Every raster series of a Heidelberg ``.e2e`` file, each as its own volume."""
    he = _vendor_module("eyepy.io.he", ".e2e")
    volumes: list[OCTVolume] = []
    refusals: list[str] = []
    try:
        with he.HeE2eReader(path) as reader:
            for index, series in enumerate(reader.series):
                try:
                    volumes.append(
                        _e2e_series_volume(path, series, index, intensity, include_identifiers))
                except InputError as exc:
                    refusals.append(exc.problem)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable Heidelberg .e2e file ({exc.__class__.__name__})") from exc
    if not volumes:
        raise InputError(path, "holds no raster OCT series" +
                         (f" ({'; '.join(refusals)})" if refusals else ""))
    return volumes


def read_heidelberg_xml(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """A Heidelberg XML export (an ``.xml`` file beside its B-scan images)."""
    he = _vendor_module("eyepy.io.he", ".xml")
    try:
        reader = he.HeXmlReader(path)
        pattern = int(reader.parsed_values.get("scan_pattern") or 0)
        _refuse_pattern(path, pattern)
        volume = reader.volume
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable Heidelberg XML export ({exc.__class__.__name__}: "
                               f"{exc})") from exc
    check_size(path, volume.raw_data.shape)
    n_bscans = volume.raw_data.shape[0]
    spacing = _spacing(volume.meta["scale_z"] if n_bscans > 1 else None,
                       volume.meta["scale_y"], volume.meta["scale_x"], "XML export")
    meta = {"format": "heidelberg_xml", "device": "Heidelberg Spectralis",
            "eye": volume.meta["laterality"], "scan": HEIDELBERG_PATTERNS.get(pattern, "unknown"),
            "intensity": intensity}
    patient = reader.patient if include_identifiers else {}
    identifiers = {"name": f"{patient.get('lastname') or ''}, {patient.get('firstname') or ''}"
                   .strip(", "), "patient_id": patient.get("patient_id"),
                   "birth_date": patient.get("dob")}
    return [_volume(path, volume.raw_data, spacing, meta, identifiers, include_identifiers)]


# --- Topcon and Zeiss ---------------------------------------------------------------------------


def read_topcon(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """A Topcon ``.fda`` (Maestro/Triton) or ``.fds`` file through oct-converter."""
    suffix = path.suffix.lower()
    readers = _vendor_module("oct_converter.readers", suffix)
    reader_class = readers.FDA if suffix == ".fda" else readers.FDS
    try:
        try:
            reader = reader_class(str(path), printing=False)
        except TypeError:  # older oct-converter readers take no ``printing``
            reader = reader_class(str(path))
        scan = reader.read_oct_volume()
        bscans = [np.asarray(b) for b in scan.volume]
    except Exception as exc:
        raise InputError(path, f"not a readable Topcon {suffix} file ({exc.__class__.__name__}: "
                               f"{exc})") from exc
    check_size(path, (len(bscans), *(bscans[0].shape if bscans else (0, 0))))
    data = np.stack(bscans)
    width, bscan, depth = (scan.pixel_spacing or [None, None, None])[:3]
    spacing = _spacing(bscan, depth, width, "file header")
    meta = {"format": f"topcon_{suffix[1:]}", "device": "Topcon", "eye": scan.laterality,
            "scan": "volume" if data.shape[0] > 1 else "line", "intensity": intensity}
    identifiers = {"name": f"{scan.surname or ''}, {scan.first_name or ''}".strip(", "),
                   "patient_id": scan.patient_id, "birth_date": scan.DOB}
    return [_volume(path, data, spacing, meta, identifiers, include_identifiers)]


def read_zeiss_img(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """A Zeiss Cirrus ``.img`` raw cube (512x128 or 200x200 macular/optic disc cube).

    The file holds bare 8-bit voxels; its size tells the protocol. Laterality and patient id come
    from the Cirrus export file name (``P1234_Macular Cube 512x128_..._OD_sn..._cube_z.img``).
    """
    readers = _vendor_module("oct_converter.readers", ".img")
    size = path.stat().st_size
    cube = next((c for c in CIRRUS_CUBES if size == c[0] * c[1] * c[2]), None)
    if cube is None:
        raise InputError(path, f"file size {size} bytes matches no Cirrus cube "
                               f"({', '.join(f'{w}x{n}' for _, w, n in CIRRUS_CUBES)})")
    depth, width, n_bscans = cube
    spacing_depth, spacing_width, spacing_bscan = CIRRUS_CUBES[cube]
    try:
        scan = readers.IMG(path).read_oct_volume(rows=depth, cols=width)
    except Exception as exc:
        raise InputError(path, f"not a readable Zeiss .img file ({exc.__class__.__name__})") from exc
    data = np.stack([np.asarray(b) for b in scan.volume])
    spacing = ((spacing_bscan, spacing_depth, spacing_width), f"Cirrus {width}x{n_bscans} cube")
    meta = {"format": "zeiss_img", "device": "Zeiss Cirrus", "eye": scan.laterality,
            "scan": "volume", "intensity": intensity}
    identifiers = {"patient_id": scan.patient_id}
    return [_volume(path, data, spacing, meta, identifiers, include_identifiers)]


# --- DICOM --------------------------------------------------------------------------------------


def _first(dataset: Any, sequence: str, item: str) -> Any:
    """``dataset.sequence[0].item[0]`` when present (DICOM functional groups), else None."""
    groups = dataset.get(sequence)
    if not groups:
        return None
    inner = groups[0].get(item)
    return inner[0] if inner else None


def _dicom_eye(ds: Any) -> str:
    for value in (ds.get("ImageLaterality"), ds.get("Laterality")):
        if normalise_eye(value):
            return normalise_eye(value)
    anatomy = _first(ds, "SharedFunctionalGroupsSequence", "FrameAnatomySequence")
    return normalise_eye(anatomy.get("FrameLaterality")) if anatomy else ""


def _dicom_spacing(ds: Any) -> tuple[tuple[float, float, float], str]:
    measures = _first(ds, "SharedFunctionalGroupsSequence", "PixelMeasuresSequence")
    if measures is None:
        measures = _first(ds, "PerFrameFunctionalGroupsSequence", "PixelMeasuresSequence")
    pixel = (measures.get("PixelSpacing") if measures else None) or ds.get("PixelSpacing")
    depth, width = (pixel[0], pixel[1]) if pixel else (None, None)
    bscan = ds.get("SpacingBetweenSlices") or (measures.get("SliceThickness") if measures else None)
    return _spacing(bscan or ds.get("SliceThickness"), depth, width, "DICOM pixel measures")


def read_dicom(
    path: Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """OCT stored as DICOM (Ophthalmic Tomography, one frame per B-scan) through pydicom."""
    pydicom = _vendor_module("pydicom", ".dcm")
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise InputError(path, f"not a readable DICOM file ({exc.__class__.__name__}: {exc})") from exc
    modality = str(ds.get("Modality", ""))
    if modality == "OP":
        raise InputError(path, "is an ophthalmic photograph (Modality OP: fundus or SLO), not OCT")
    if "PixelData" not in ds:
        raise InputError(path, f"holds no image (Modality {modality or 'unknown'}, no PixelData)")
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        declared = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("Rows", 0) or 0),
                    int(ds.get("Columns", 0) or 0), samples)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"has unreadable image dimensions ({exc})") from exc
    if samples != 1:
        raise InputError(path, f"is a colour image ({ds.get('PhotometricInterpretation')}); "
                               "OCT B-scans are greyscale")
    check_size(path, declared[:3])
    try:
        pixels = np.asarray(ds.pixel_array, dtype=np.float32)
    except Exception as exc:
        raise InputError(path, f"pixel data cannot be decoded ({exc}); compressed DICOM needs a "
                               "decoder such as pylibjpeg with pylibjpeg-openjpeg") from exc
    if intensity == "display":
        pixels = pixels * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            pixels = pixels.max() - pixels
    model = " ".join(str(ds.get(k, "")).strip() for k in ("Manufacturer", "ManufacturerModelName"))
    meta = {"format": "dicom", "device": canonical_device(model), "eye": _dicom_eye(ds),
            "scan": "volume" if pixels.ndim == 3 and pixels.shape[0] > 1 else "line",
            "intensity": intensity, "modality": modality}
    identifiers = {"name": ds.get("PatientName"), "patient_id": ds.get("PatientID"),
                   "birth_date": ds.get("PatientBirthDate")}
    return [_volume(path, pixels, _dicom_spacing(ds), meta, identifiers, include_identifiers)]


Reader = Callable[[Path, Intensity, bool], list[OCTVolume]]

READERS: dict[str, Reader] = {
    ".vol": read_heidelberg_vol,
    ".e2e": read_heidelberg_e2e,
    ".xml": read_heidelberg_xml,
    ".fda": read_topcon,
    ".fds": read_topcon,
    ".img": read_zeiss_img,
    ".dcm": read_dicom,
}


def read_vendor_all(
    path: str | Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> list[OCTVolume]:
    """Every volume in a vendor file (an ``.e2e`` may hold several series; others hold one)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if intensity not in ("display", "raw"):
        raise OctanoganError(f"unknown intensity '{intensity}' (expected display or raw)")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(path, f"not a vendor OCT file (supported: {', '.join(READERS)})")
    try:
        return reader(path, intensity, include_identifiers)
    except OctanoganError:
        raise
    except Exception as exc:  # vendor parsers fail in many ways on foreign or damaged files
        raise reading_failure(path, exc, f"not a readable {path.suffix.lower()} file") from exc


def read_vendor(
    path: str | Path, intensity: Intensity = "display", include_identifiers: bool = False
) -> OCTVolume:
    """The (first) volume of a vendor file; see :func:`read_vendor_all` for multi-volume files."""
    return read_vendor_all(path, intensity, include_identifiers)[0]
