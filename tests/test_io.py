"""Readers: round trips for every format and a clear error for every kind of bad file."""

from __future__ import annotations

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from octanogan.errors import InputError
from octanogan.fsutil import atomic_path
from octanogan.io import affine_from_spacing, read_label_map, read_volume, write_nifti
from octanogan.io.volume import spacing_from_affine


@pytest.fixture
def volume_array() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 20, 24)).astype(np.float32)


def test_nifti_round_trip_keeps_data_and_affine(tmp_path, volume_array):
    affine = affine_from_spacing((0.12, 0.0039, 0.0115))
    path = write_nifti(volume_array, affine, tmp_path / "v.nii.gz")
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.data, volume_array)
    np.testing.assert_allclose(volume.affine, affine)
    assert volume.spacing_mm == pytest.approx((0.12, 0.0039, 0.0115))
    assert volume.meta["format"] == "nifti"


def test_affine_maps_axes_to_spacing():
    affine = affine_from_spacing((0.2, 0.004, 0.01))
    assert spacing_from_affine(affine) == pytest.approx((0.2, 0.004, 0.01))
    assert np.linalg.det(affine[:3, :3]) != 0


def test_npy_2d_is_one_bscan(tmp_path):
    np.save(tmp_path / "b.npy", np.ones((20, 24), np.uint8))
    assert read_volume(tmp_path / "b.npy").shape == (1, 20, 24)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_image_folder_in_natural_order(tmp_path, suffix):
    for i in (0, 1, 2, 10):
        iio.imwrite(tmp_path / f"{i}{suffix}", np.full((16, 20), i * 20, np.uint8))
    volume = read_volume(tmp_path)
    assert volume.shape == (4, 16, 20)
    means = volume.data.mean(axis=(1, 2))
    assert np.all(np.diff(means) > 0), "10.png must come after 2.png"


def test_single_image_is_single_bscan_volume(tmp_path):
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[..., :] = 100
    iio.imwrite(tmp_path / "NORMAL-1.jpeg", rgb)
    volume = read_volume(tmp_path / "NORMAL-1.jpeg")
    assert volume.shape == (1, 16, 20)
    assert abs(float(volume.data.mean()) - 100) < 3


def test_label_map_shape_mismatch_names_file(tmp_path):
    write_nifti(np.zeros((2, 8, 8)), np.eye(4), tmp_path / "lab.nii.gz", dtype=np.uint8)
    with pytest.raises(InputError, match="lab.nii.gz.*shape"):
        read_label_map(tmp_path / "lab.nii.gz", shape=(3, 8, 8))


def test_label_map_rejects_fractional_values(tmp_path):
    write_nifti(np.full((2, 8, 8), 0.5), np.eye(4), tmp_path / "lab.nii.gz")
    with pytest.raises(InputError, match="integer"):
        read_label_map(tmp_path / "lab.nii.gz")


def _truncated_nifti(tmp_path):
    path = write_nifti(np.ones((3, 30, 30)), np.eye(4), tmp_path / "t.nii")
    path.write_bytes(path.read_bytes()[:400])
    return path


def _bytes(name, data):
    def make(folder):
        (folder / name).write_bytes(data)
        return folder / name
    return make


def _npy(name, array):
    def make(folder):
        np.save(folder / name, array)
        return folder / name
    return make


def _empty_folder(folder):
    (folder / "empty").mkdir()
    return folder / "empty"


BAD_INPUTS = {
    "missing": (lambda p: p / "nope.nii.gz", "not found"),
    "empty file": (_bytes("e.nii.gz", b""), "empty"),
    "corrupt nifti": (_bytes("c.nii.gz", b"garbage" * 50), "not a readable NIfTI"),
    "truncated nifti": (_truncated_nifti, "not a readable NIfTI"),
    "nan voxels": (_npy("n.npy", np.full((2, 4, 4), np.nan)), "NaN"),
    "inf voxels": (_npy("i.npy", np.full((2, 4, 4), np.inf)), "NaN or infinite"),
    "1d array": (_npy("d.npy", np.ones(5)), "shape"),
    "4d array": (_npy("q.npy", np.ones((2, 2, 3, 4))), "shape"),
    "empty folder": (_empty_folder, "no B-scan images"),
    "unknown suffix": (_bytes("x.xyz", b"1"), "unsupported"),
    "corrupt png": (_bytes("b.png", b"\x89PNG broken"), "not a readable image"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_problem(tmp_path, case):
    make, problem = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_volume(path)
    assert str(path.name) in str(info.value)
    assert problem in str(info.value)


def test_mixed_bscan_sizes_in_folder_are_refused(tmp_path):
    iio.imwrite(tmp_path / "0.png", np.zeros((16, 20), np.uint8))
    iio.imwrite(tmp_path / "1.png", np.zeros((16, 22), np.uint8))
    with pytest.raises(InputError, match="1.png.*differs"):
        read_volume(tmp_path)


def test_write_nifti_is_atomic_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "m.nii.gz"
    write_nifti(np.ones((2, 4, 4)), np.eye(4), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.nii.gz"]
    assert nib.load(target).shape == (2, 4, 4)


def test_metaimage_volume_reads_with_spacing(tmp_path):
    data = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5)
    (tmp_path / "oct.raw").write_bytes(data.tobytes())
    (tmp_path / "oct.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 5 6 2\nElementType = MET_USHORT\n"
        "ElementSpacing = 0.0117 0.0039 0.12\nElementDataFile = oct.raw\n")
    volume = read_volume(tmp_path / "oct.mhd")
    np.testing.assert_array_equal(volume.data, data)
    assert volume.spacing_mm == pytest.approx((0.12, 0.0039, 0.0117))
