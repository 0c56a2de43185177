"""Vendor readers: Heidelberg .vol (synthetic and real), DICOM, Zeiss .img refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vendor_files
from shared_data import SHARED_DATA
from vendor_files import SECRET_ID, write_vol

from octanogan.errors import InputError, OctanoganError
from octanogan.io import read_volume
from octanogan.io.vendor import _vendor_module, normalise_eye, read_vendor, read_vendor_all

REAL_DATA = SHARED_DATA / "heidelberg_vol"


@pytest.fixture
def raw_volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 1, size=(3, 12, 16)).astype(np.float32) ** 4
    raw[0, 0, 0] = np.finfo(np.float32).max  # Heidelberg's "no data" marker
    return raw


def test_heidelberg_vol_spacing_laterality_and_display_intensities(tmp_path, raw_volume):
    volume = read_volume(write_vol(tmp_path / "scan.vol", raw_volume))
    assert volume.shape == (3, 12, 16)
    assert volume.spacing_mm == pytest.approx((0.125, 0.0039, 0.0115))
    assert np.linalg.norm(volume.affine[:3, 0]) == pytest.approx(0.125)
    assert volume.meta["eye"] == "OS" and volume.meta["scan"] == "volume"
    assert volume.data.dtype == np.float32
    expected = 255 * raw_volume[1] ** 0.25
    np.testing.assert_allclose(volume.data[1], expected, rtol=1e-5)
    assert volume.data[0, 0, 0] == 0  # no-data marker becomes 0, not 255
    assert 0 <= volume.data.min() and volume.data.max() <= 255


def test_heidelberg_vol_raw_option_keeps_stored_values(tmp_path, raw_volume):
    volume = read_vendor(write_vol(tmp_path / "scan.vol", raw_volume), intensity="raw")
    np.testing.assert_allclose(volume.data[1:], raw_volume[1:])
    assert volume.data[0, 0, 0] == 0


def test_identifiers_stay_in_the_file_unless_asked_for(tmp_path, raw_volume):
    path = write_vol(tmp_path / "scan.vol", raw_volume)
    volume = read_vendor(path)
    assert "identifiers" not in volume.meta
    assert SECRET_ID not in repr(volume.meta)
    assert volume.meta["pseudo_id"] == read_vendor(path).meta["pseudo_id"]
    asked = read_vendor(path, include_identifiers=True)
    assert asked.meta["identifiers"]["patient_id"] == SECRET_ID


@pytest.mark.parametrize("pattern, word", [(2, "circular"), (5, "radial")])
def test_circular_and_radial_scans_are_refused(tmp_path, raw_volume, pattern, word):
    path = write_vol(tmp_path / "circle.vol", raw_volume[:1], pattern=pattern)
    with pytest.raises(InputError, match=word) as info:
        read_volume(path)
    assert info.value.path == path


def test_truncated_vol_is_refused(tmp_path, raw_volume):
    path = write_vol(tmp_path / "scan.vol", raw_volume)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match="Heidelberg .vol"):
        read_volume(path)


def write_dicom(path: Path, frames: np.ndarray, modality: str = "OPT") -> Path:
    """A small multi-frame Ophthalmic Tomography DICOM with patient identifiers set."""
    from pydicom.dataset import Dataset

    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.0039, 0.0117], 0.047
    group = Dataset()
    group.PixelMeasuresSequence = [measures]
    return vendor_files.write_dicom(
        path, frames.astype(np.uint8).tobytes(), frames.shape, PatientName="Doe^Jane",
        PatientID=SECRET_ID, PatientBirthDate="19500506", Modality=modality, Manufacturer="Acme",
        ImageLaterality="R", SharedFunctionalGroupsSequence=[group])


def test_dicom_keeps_pixels_spacing_eye_and_drops_identifiers(tmp_path):
    frames = np.arange(4 * 6 * 5, dtype=np.uint8).reshape(4, 6, 5)
    path = write_dicom(tmp_path / "oct.dcm", frames)
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, frames.astype(np.float32))
    assert volume.spacing_mm == pytest.approx((0.047, 0.0039, 0.0117))
    assert volume.meta["eye"] == "OD" and volume.meta["device"] == "other"  # free text is never kept
    assert "Doe" not in repr(volume.meta) and SECRET_ID not in repr(volume.meta)
    asked = read_vendor(path, include_identifiers=True).meta["identifiers"]
    assert asked["patient_id"] == SECRET_ID and asked["birth_date"] == "19500506"


def test_dicom_fundus_photograph_is_refused(tmp_path):
    path = write_dicom(tmp_path / "fundus.dcm", np.zeros((1, 4, 4), np.uint8), modality="OP")
    with pytest.raises(InputError, match="not OCT"):
        read_volume(path)


def test_garbage_dicom_and_odd_sized_zeiss_img_are_refused(tmp_path):
    (tmp_path / "bad.dcm").write_bytes(b"not a dicom at all" * 10)
    (tmp_path / "cube.img").write_bytes(bytes(1000))
    with pytest.raises(InputError, match="DICOM"):
        read_volume(tmp_path / "bad.dcm")
    with pytest.raises(InputError, match="matches no Cirrus cube"):
        read_volume(tmp_path / "cube.img")


def test_missing_extra_names_the_install_command():
    with pytest.raises(OctanoganError, match=r"octanogan\[vendor\]"):
        _vendor_module("octanogan_no_such_reader", ".vol")


@pytest.mark.parametrize("value, eye", [("R", "OD"), ("OS", "OS"), ("Left", "OS"),
                                        ("LateralityEnum.OD", "OD"), (None, ""), ("B", "")])
def test_laterality_spellings(value, eye):
    assert normalise_eye(value) == eye


@pytest.mark.realdata
def test_real_heidelberg_line_scan_and_circular_scan():
    volume = read_volume(REAL_DATA / "Linescan_1.vol")
    assert volume.shape == (1, 496, 768)
    assert volume.spacing_mm[1:] == pytest.approx((0.00387, 0.01182), rel=1e-3)
    assert volume.meta["eye"] == "OD" and "identifiers" not in volume.meta
    assert 0 <= volume.data.min() and 200 < volume.data.max() <= 255
    assert len(read_vendor_all(REAL_DATA / "Linescan_1.vol")) == 1
    with pytest.raises(InputError, match="circular") as info:
        read_volume(REAL_DATA / "Peripapillary_1.vol")
    assert "Peripapillary_1.vol" in str(info.value)
