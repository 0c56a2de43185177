"""Public dataset recipes on tiny files written in each dataset's released layout."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from octanogan.cli import app
from octanogan.io import read_label_map, read_volume
from octanogan.io.datasets import duke_dme_to_nifti, retouch_to_nifti
from octanogan.io.manifest import load_annotations, load_manifest, load_markers
from octanogan.io.metaimage import read_metaimage


def convert_dataset(name: str, root: Path, out: Path):
    return CliRunner().invoke(app, ["convert", "--dataset", name, str(root), "--out", str(out)])


# --- Kermany OCT2017 -----------------------------------------------------------------------------


def test_kermany_manifest_labels_splits_and_points_at_the_jpegs(tmp_path):
    root = tmp_path / "OCT2017"
    for split, cls, n in [("train", "NORMAL", 2), ("train", "CNV", 1), ("test", "DME", 1),
                          ("test", "NORMAL", 1), ("val", "DRUSEN", 1)]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            iio.imwrite(root / split / cls / f"{cls}-{split}{i}-1.jpeg",
                        np.full((12, 16), 100, np.uint8))
    (root / "train" / "NORMAL" / ".DS_Store").write_bytes(b"x")
    out = tmp_path / "out"
    result = convert_dataset("kermany", root, out)
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out / "manifest.csv").set_index("volume_id")
    assert len(manifest) == 6
    assert manifest.loc["NORMAL-train0-1", ["label", "split"]].tolist() == ["healthy", "train"]
    assert manifest.loc["CNV-train0-1", "label"] == "diseased"
    assert manifest.loc["DRUSEN-val0-1", ["split", "diagnosis"]].tolist() == ["val", "DRUSEN"]
    assert manifest.loc["DME-test0-1", "split"] == "test"
    assert read_volume(manifest.loc["DME-test0-1", "path"]).shape == (1, 12, 16)
    assert set(manifest["device"]) == {"heidelberg"}
    assert json.loads((out / "octanogan.json").read_text())["kind"] == "converted"


def test_kermany_without_class_folders_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    result = convert_dataset("kermany", tmp_path / "root", tmp_path / "out")
    assert result.exit_code != 0 and "no OCT2017 class folders" in result.output


# --- RETOUCH -------------------------------------------------------------------------------------


def write_mhd(path: Path, data: np.ndarray, spacing_xyz: tuple[float, float, float],
              element: str) -> None:
    shape_xyz = " ".join(str(s) for s in data.shape[::-1])
    path.write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"DimSize = {shape_xyz}\nElementSpacing = {' '.join(map(str, spacing_xyz))}\n"
        f"ElementType = {element}\nElementDataFile = {path.stem}.raw\n")
    path.with_suffix(".raw").write_bytes(data.tobytes())


def retouch_case(root: Path, vendor: str, case: str, dtype=np.uint8) -> tuple[np.ndarray, ...]:
    folder = root / "TrainingSet-Release" / vendor / case
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max, size=(3, 10, 8), dtype=dtype)
    labels = np.zeros((3, 10, 8), np.uint8)
    labels[1, 2:4, 3:6], labels[2, 7, 1] = 1, 3
    element = "MET_UCHAR" if dtype == np.uint8 else "MET_USHORT"
    write_mhd(folder / "oct.mhd", image, (0.0117, 0.0039, 0.047), element)
    write_mhd(folder / "reference.mhd", labels, (0.0117, 0.0039, 0.047), "MET_UCHAR")
    return image, labels


def test_metaimage_reader_gives_bscan_depth_width_order(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    write_mhd(tmp_path / "x.mhd", data, (0.5, 0.25, 2.0), "MET_USHORT")
    read, spacing = read_metaimage(tmp_path / "x.mhd")
    np.testing.assert_array_equal(read, data)
    assert spacing == (2.0, 0.25, 0.5)


def test_retouch_volumes_label_maps_annotations_and_markers(tmp_path):
    root, out = tmp_path / "retouch", tmp_path / "out"
    image, labels = retouch_case(root, "Cirrus", "TRAIN001")
    image16, _ = retouch_case(root, "Spectralis", "TRAIN025", dtype=np.uint16)
    broken = root / "TrainingSet-Release" / "Topcon" / "TRAIN049"
    broken.mkdir(parents=True)
    (broken / "oct.mhd").write_text("NDims = 3\n")  # header without the grid: refused
    result = convert_dataset("retouch", root, out)
    assert result.exit_code == 0, result.output
    assert "TRAIN049" in result.output
    manifest = load_manifest(out / "manifest.csv").set_index("volume_id")
    assert list(manifest.index) == ["Cirrus_TRAIN001", "Spectralis_TRAIN025"]
    assert set(manifest["label"]) == {"diseased"} and set(manifest["split"]) == {"test"}
    volume = read_volume(manifest.loc["Cirrus_TRAIN001", "path"])
    np.testing.assert_array_equal(volume.data, image.astype(np.float32))
    assert volume.spacing_mm == pytest.approx((0.047, 0.0039, 0.0117))
    label_map = read_label_map(manifest.loc["Cirrus_TRAIN001", "annotation_path"], volume.shape)
    np.testing.assert_array_equal(label_map, labels)
    spectralis = read_volume(manifest.loc["Spectralis_TRAIN025", "path"])
    np.testing.assert_allclose(spectralis.data, image16 * (255 / 65535), rtol=1e-5)
    assert set(load_annotations(out / "annotations.csv")) == set(manifest.index)
    assert load_markers(out / "markers.json") == {1: "IRF", 2: "SRF", 3: "PED"}
    assert manifest.loc["Cirrus_TRAIN001", "device"] == "zeiss"
    assert manifest.loc["Spectralis_TRAIN025", "device"] == "heidelberg"


def test_retouch_label_map_of_another_shape_is_refused(tmp_path):
    root = tmp_path / "retouch"
    retouch_case(root, "Topcon", "TRAIN050")
    case = root / "TrainingSet-Release" / "Topcon" / "TRAIN050"
    write_mhd(case / "reference.mhd", np.zeros((2, 10, 8), np.uint8), (1, 1, 1), "MET_UCHAR")
    report = retouch_to_nifti(root, tmp_path / "out")
    assert not report.rows and "differs" in report.refused[0].reason


# --- Duke DME ------------------------------------------------------------------------------------


def duke_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``images`` and ``manualFluid1`` in MATLAB's [depth, width, n_bscans] order."""
    images = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)
    fluid = np.full((6, 5, 4), np.nan)
    fluid[..., 1] = 0
    fluid[..., 3] = 0
    fluid[2:4, 1:3, 3] = 7  # one fluid region (Duke numbers regions)
    return images, fluid


def test_duke_v5_keeps_graded_bscans_and_binarises_fluid(tmp_path):
    images, fluid = duke_arrays()
    root, out = tmp_path / "duke", tmp_path / "out"
    root.mkdir()
    scipy.io.savemat(root / "Subject_01.mat", {"images": images, "manualFluid1": fluid})
    result = convert_dataset("duke", root, out)
    assert result.exit_code == 0, result.output
    row = load_manifest(out / "manifest.csv").iloc[0]
    assert row["volume_id"] == "Subject_01" and row["label"] == "diseased"
    volume = read_volume(row["path"])
    np.testing.assert_array_equal(volume.data, np.moveaxis(images, -1, 0)[[1, 3]])
    label_map = read_label_map(row["annotation_path"], volume.shape)
    assert label_map.sum() == 4 and label_map[1, 2:4, 1:3].all() and not label_map[0].any()
    assert json.loads((out / "markers.json").read_text()) == {"1": "fluid"}


def test_duke_v73_hdf5_file_is_read_too(tmp_path):
    images, fluid = duke_arrays()
    (tmp_path / "duke").mkdir()
    path = tmp_path / "duke" / "Subject_02.mat"
    with h5py.File(path, "w", userblock_size=512) as handle:  # MATLAB v7.3 layout
        handle["images"], handle["manualFluid1"] = images.T, fluid.T
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    with open(path, "r+b") as raw:
        raw.write(header)
    report = duke_dme_to_nifti(tmp_path / "duke", tmp_path / "out")
    assert len(report.rows) == 1, report.refused
    volume = read_volume(tmp_path / "out" / report.rows[0]["path"])
    np.testing.assert_array_equal(volume.data, np.moveaxis(images, -1, 0)[[1, 3]])


def test_duke_file_without_fluid_is_refused(tmp_path):
    (tmp_path / "duke").mkdir()
    scipy.io.savemat(tmp_path / "duke" / "Subject_03.mat", {"images": np.zeros((4, 4, 2))})
    result = convert_dataset("duke", tmp_path / "duke", tmp_path / "out")
    assert result.exit_code != 0 and "manualFluid1" in result.output


def test_duke_same_subject_name_in_two_folders_gets_two_ids(tmp_path):
    images, fluid = duke_arrays()
    for folder in ("grader_a", "grader_b"):
        (tmp_path / "duke" / folder).mkdir(parents=True)
        scipy.io.savemat(tmp_path / "duke" / folder / "Subject_01.mat",
                         {"images": images, "manualFluid1": fluid})
    report = duke_dme_to_nifti(tmp_path / "duke", tmp_path / "out")
    assert [r["volume_id"] for r in report.rows] == ["Subject_01", "grader_b_Subject_01"]
    assert len({r["path"] for r in report.rows}) == 2


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_dataset_into_a_finished_conversion_is_refused_and_changes_nothing(tmp_path):
    images, fluid = duke_arrays()
    (tmp_path / "duke").mkdir()
    scipy.io.savemat(tmp_path / "duke" / "Subject_01.mat", {"images": images, "manualFluid1": fluid})
    out = tmp_path / "out"
    assert convert_dataset("duke", tmp_path / "duke", out).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = convert_dataset("duke", tmp_path / "duke", out)
    assert result.exit_code == 2 and "holds converted volumes already" in one_line_error(result)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_dataset_out_inside_its_root_or_foreign_is_refused(tmp_path):
    root = tmp_path / "OCT2017"
    (root / "train" / "NORMAL").mkdir(parents=True)
    iio.imwrite(root / "train" / "NORMAL" / "NORMAL-1-1.jpeg", np.full((12, 16), 100, np.uint8))
    result = convert_dataset("kermany", root, root / "out")
    assert result.exit_code == 2 and "inside the input folder" in one_line_error(result)
    assert not (root / "out").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = convert_dataset("kermany", root, foreign)
    assert result.exit_code == 2 and "not written by octanogan" in one_line_error(result)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_unknown_dataset_is_a_clear_error(tmp_path):
    result = convert_dataset("imagenet", tmp_path, tmp_path / "out")
    assert result.exit_code != 0 and "unknown dataset 'imagenet'" in result.output
