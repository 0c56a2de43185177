"""Manifest validation: every problem names the row, the column and what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from octanogan.errors import InputError, ManifestError
from octanogan.io.manifest import load_annotations, load_manifest, load_markers, select

HEADER = "volume_id,path,label,split,annotation_path,device,eye\n"


@pytest.fixture
def folder(tmp_path):
    for name in ("a.npy", "b.npy", "a_lab.npy"):
        np.save(tmp_path / name, np.zeros((2, 4, 4), np.uint8))
    return tmp_path


def _write(folder, body, header=HEADER):
    path = folder / "manifest.csv"
    path.write_text(header + body)
    return path


def test_valid_manifest_resolves_relative_paths(folder):
    path = _write(folder, "a,a.npy,healthy,train,,phantom,OD\nb,b.npy,diseased,test,a_lab.npy,phantom,OS\n")
    table = load_manifest(path)
    assert list(table["volume_id"]) == ["a", "b"]
    assert table.loc[0, "path"] == str(folder / "a.npy")
    assert table.loc[1, "annotation_path"] == str(folder / "a_lab.npy")
    assert list(select(table, label="healthy", split="train")["volume_id"]) == ["a"]


def test_optional_columns_may_be_absent(folder):
    path = _write(folder, "a,a.npy,healthy,train\n", header="volume_id,path,label,split\n")
    assert load_manifest(path).loc[0, "eye"] == ""


@pytest.mark.parametrize("body, expected", [
    ("a,missing.npy,healthy,train,,,\n", "row 1, column 'path': file not found"),
    ("a,a.npy,healthy,train,,,\na,b.npy,healthy,train,,,\n", "row 2, column 'volume_id': duplicate id 'a'"),
    ("a,a.npy,sick,train,,,\n", "row 1, column 'label': unknown label 'sick'"),
    ("a,a.npy,healthy,training,,,\n", "row 1, column 'split': unknown split 'training'"),
    ("a,a.npy,healthy,train,,,XX\n", "row 1, column 'eye'"),
    ("a,a.npy,healthy,train,gone.nii.gz,,\n", "row 1, column 'annotation_path': file not found"),
    (",a.npy,healthy,train,,,\n", "row 1, column 'volume_id': empty"),
])
def test_bad_rows_are_named(folder, body, expected):
    with pytest.raises(ManifestError) as info:
        load_manifest(_write(folder, body))
    assert expected in str(info.value)
    assert "manifest.csv" in str(info.value)


def test_missing_column_and_empty_manifest(folder):
    with pytest.raises(ManifestError, match="column 'split': required column missing"):
        load_manifest(_write(folder, "a,a.npy,healthy\n", header="volume_id,path,label\n"))
    with pytest.raises(ManifestError, match="lists no volumes"):
        load_manifest(_write(folder, ""))
    (folder / "blank.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_manifest(folder / "blank.csv")


def test_annotations_and_markers(folder):
    (folder / "ann.csv").write_text("volume_id,annotation_path\nb,a_lab.npy\n")
    assert load_annotations(folder / "ann.csv") == {"b": str(folder / "a_lab.npy")}
    (folder / "markers.json").write_text('{"1": "IRF", "2": "SRF"}')
    assert load_markers(folder / "markers.json") == {1: "IRF", 2: "SRF"}
    (folder / "bad.json").write_text('{"0": "background"}')
    with pytest.raises(InputError, match="background"):
        load_markers(folder / "bad.json")
    (folder / "ann2.csv").write_text("volume_id,annotation_path\nb,nothere.nii\n")
    with pytest.raises(ManifestError, match="row 1, column 'annotation_path'"):
        load_annotations(folder / "ann2.csv")
