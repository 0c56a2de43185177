"""``octanogan convert`` through the real CLI: mixed inputs, refusals, manifest merging, ids."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from shared_data import SHARED_DATA
from typer.testing import CliRunner
from vendor_files import write_vol

from octanogan.cli import app
from octanogan.fsutil import sha256_file
from octanogan.io import read_volume
from octanogan.io.manifest import load_manifest
from octanogan.outputs.folder import write_marker

REAL_DATA = SHARED_DATA / "heidelberg_vol"


def run(*args: str):
    return CliRunner().invoke(app, ["convert", *args])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "bscans").mkdir(parents=True)
    for i in range(3):
        iio.imwrite(folder / "bscans" / f"{i}.png", np.full((8, 10), 40 * i, np.uint8))
    np.save(folder / "cube.npy", np.ones((2, 8, 10), np.float32))
    write_vol(folder / "eye.vol", np.full((2, 8, 10), 0.0625, np.float32), eye="OD")
    write_vol(folder / "circle.vol", np.full((1, 8, 10), 0.0625, np.float32), pattern=2)
    (folder / "notes.txt").write_text("not a scan")
    (folder / "empty.npy").write_bytes(b"")
    return folder


def test_convert_mixed_folder_writes_nifti_manifest_and_refusals(tmp_path, inputs):
    out = tmp_path / "out"
    result = run(str(inputs), "--out", str(out), "--keep-names")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out / "manifest.csv")
    assert sorted(manifest["volume_id"]) == ["bscans", "cube", "eye"]
    assert set(manifest["label"]) == {"healthy"} and set(manifest["split"]) == {"train"}
    eye = manifest.set_index("volume_id").loc["eye"]
    assert eye["eye"] == "OD" and eye["device"] == "heidelberg"
    converted = read_volume(eye["path"])
    assert converted.shape == (2, 8, 10)
    assert converted.spacing_mm == pytest.approx((0.125, 0.0039, 0.0115))
    np.testing.assert_allclose(converted.data, 255 * 0.5)  # fourth root of 1/16
    assert read_volume(manifest.set_index("volume_id").loc["bscans", "path"]).shape == (3, 8, 10)
    assert not any(Path(p).is_absolute() for p in
                   (r["path"] for r in read_csv(out / "manifest.csv")))
    refused = {Path(r["file"]).name: r["reason"] for r in read_csv(out / "refused.csv")}
    assert set(refused) == {"circle.vol", "notes.txt", "empty.npy"}
    assert "circular" in refused["circle.vol"] and "unsupported" in refused["notes.txt"]
    assert "refused" in result.output and "circle.vol" in result.output
    assert json.loads((out / "octanogan.json").read_text())["kind"] == "converted"
    sources = read_csv(out / "sources.csv")
    assert sorted(r["volume_id"] for r in sources) == ["bscans", "cube", "eye"]
    assert all(len(r["sha256"]) == 64 and set(r) == {"volume_id", "sha256", "series"}
               for r in sources)  # hashes only: no source paths or file names


def test_second_run_adds_rows_with_its_own_label_and_split(tmp_path, inputs):
    out = tmp_path / "out"
    assert run(str(inputs / "cube.npy"), "--out", str(out), "--keep-names").exit_code == 0
    result = run(str(inputs / "eye.vol"), "--out", str(out), "--label", "diseased",
                 "--split", "test", "--keep-names")
    assert result.exit_code == 0, result.output
    rows = {r["volume_id"]: r for r in read_csv(out / "manifest.csv")}
    assert rows["cube"]["label"] == "healthy" and rows["eye"]["label"] == "diseased"
    assert rows["eye"]["split"] == "test"


def test_nothing_convertible_exits_non_zero(tmp_path, inputs):
    out = tmp_path / "out"
    result = run(str(inputs / "notes.txt"), str(inputs / "circle.vol"), "--out", str(out))
    assert result.exit_code != 0
    assert "nothing converted" in result.output
    assert len(read_csv(out / "refused.csv")) == 2
    assert not (out / "manifest.csv").exists()


def test_unknown_label_is_a_clear_error(tmp_path, inputs):
    result = run(str(inputs / "cube.npy"), "--out", str(tmp_path / "out"), "--label", "sick")
    assert result.exit_code == 2 and "'sick' is not one of 'healthy', 'diseased'" in " ".join(
        result.output.replace("│", " ").split())
    assert not (tmp_path / "out").exists()


def test_same_file_name_in_two_folders_gets_two_ids(tmp_path):
    for value, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "scan.npy", np.full((1, 4, 4), value, np.float32))
    result = run(str(tmp_path / "a" / "scan.npy"), str(tmp_path / "b" / "scan.npy"),
                 "--out", str(tmp_path / "out"), "--keep-names")
    assert result.exit_code == 0, result.output
    assert sorted(load_manifest(tmp_path / "out" / "manifest.csv")["volume_id"]) == \
        ["b_scan", "scan"]


@pytest.mark.realdata
def test_convert_real_heidelberg_files(tmp_path):
    out = tmp_path / "out"
    result = run(str(REAL_DATA), "--out", str(out), "--keep-names")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out / "manifest.csv")
    assert list(manifest["volume_id"]) == ["Linescan_1"] and manifest["eye"][0] == "OD"
    assert [Path(r["file"]).name for r in read_csv(out / "refused.csv")] == ["Peripapillary_1.vol"]


def test_volumes_are_named_by_content_hash_by_default(tmp_path, inputs):
    out = tmp_path / "out"
    result = run(str(inputs / "eye.vol"), str(inputs / "cube.npy"), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = {r["volume_id"]: r for r in read_csv(out / "manifest.csv")}
    assert set(rows) == {sha256_file(inputs / "eye.vol")[:16], sha256_file(inputs / "cube.npy")[:16]}
    names = [p.name for p in (out / "volumes").iterdir()] + [p.name for p in out.iterdir()]
    assert not any("eye" in n or "cube" in n for n in names)
    values = [v for name in ("manifest.csv", "sources.csv") for r in read_csv(out / name)
              for v in r.values()]
    assert not any("eye" in v or "cube" in v or "in/" in v for v in values)


def test_old_pseudonymise_flag_still_works(tmp_path, inputs):
    out = tmp_path / "out"
    result = run(str(inputs / "cube.npy"), "--out", str(out), "--pseudonymise")
    assert result.exit_code == 0, result.output
    assert list(load_manifest(out / "manifest.csv")["volume_id"]) == \
        [sha256_file(inputs / "cube.npy")[:16]]


def test_second_run_keeps_extra_manifest_columns(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_marker(out, "converted")
    (out / "manifest.csv").write_text(
        "volume_id,path,label,split,annotation_path,device,eye,diagnosis\n"
        "CNV-1-1,../CNV-1-1.jpeg,diseased,train,,heidelberg,,CNV\n")
    np.save(tmp_path / "scan.npy", np.ones((1, 4, 4), np.float32))
    assert run(str(tmp_path / "scan.npy"), "--out", str(out)).exit_code == 0
    rows = read_csv(out / "manifest.csv")
    assert len(rows) == 2 and rows[0]["diagnosis"] == "CNV" and rows[1]["diagnosis"] == ""


def test_multi_volume_ids_get_an_index_only_when_needed():
    from octanogan.io.convert import IdAllocator, id_candidates

    path, digest = Path("x/P123_scan.e2e"), "ab" * 32
    assert id_candidates(path, None, digest, None, True) == [digest[:16]]
    assert id_candidates(path, 2, digest, None, True) == [f"{digest[:16]}-2"]
    assert id_candidates(path, None, digest, "vendor-id", True) == ["vendor-id"]
    assert id_candidates(path, 1, digest, None, False) == ["P123_scan_1", "x_P123_scan_1"]
    allocate = IdAllocator([{"volume_id": "a", "path": "volumes/a.nii.gz"}])
    assert allocate(["a", "b"]) == "b" and allocate(["a", "b"]) == "a_2"
