"""``convert`` and ``phantom`` never delete or silently replace what the user owns, and keep
patient identifiers out of their outputs. Every case runs the real CLI (the typer app in-process;
a few in a subprocess, ``python -m octanogan``) and checks the exit code, the one ``error:`` line
on stderr, that no traceback was shown, and that every earlier file is byte-identical afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from octanogan.fsutil import safe_name, sha256_file
from octanogan.io.devices import canonical_device

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}


def octanogan_process(*args: object) -> subprocess.CompletedProcess:
    """The real command in its own process."""
    return subprocess.run([sys.executable, "-m", "octanogan", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=120)


def octanogan(*args: object) -> subprocess.CompletedProcess:
    """The real typer app in-process (faster); exceptions other than exits propagate."""
    from typer.testing import CliRunner

    from octanogan.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, exactly one stderr line ``error: ...`` holding ``words``."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def succeeded(result: subprocess.CompletedProcess, code: int = 0) -> None:
    """Exit ``code`` without a traceback (1: every input refused, "nothing converted")."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stdout + result.stderr
    if code == 1:
        assert "refused:" in result.stderr and "error: nothing converted" in result.stderr


def snapshot(*folders: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file below ``folders`` (names in ``skip`` left out)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip}


def scan(path: Path, seed: int) -> Path:
    """A tiny random volume (2 x 64 x 64 float32) as ``.npy``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(seed).random((2, 64, 64), dtype=np.float32))
    return path


def rows(out: Path, name: str = "manifest.csv") -> dict[str, dict[str, str]]:
    with open(out / name, newline="", encoding="utf-8") as handle:
        return {r.get("volume_id") or r["file"]: r for r in csv.DictReader(handle)}


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    scan(folder / "scan1.npy", 1)
    scan(folder / "sub" / "scan2.npy", 2)
    return folder


# --- convert: where --out may be -----------------------------------------------------------------


def test_out_equal_to_the_input_folder_is_refused(scans):
    before = snapshot(scans)
    refused(octanogan_process("convert", scans, "--out", scans), str(scans), "contains the input")
    assert snapshot(scans) == before


def test_out_inside_the_input_folder_is_refused(scans):
    before = snapshot(scans)
    refused(octanogan("convert", scans, "--out", scans / "converted"), "lies inside the input folder")
    assert snapshot(scans) == before and not (scans / "converted").exists()


def test_out_containing_the_input_is_refused(scans):
    parent = scans.parent
    before = snapshot(parent)
    refused(octanogan("convert", scans / "scan1.npy", "--out", parent), str(parent),
            "contains the input")
    assert snapshot(parent) == before


def test_non_empty_folder_not_written_by_convert_is_refused(scans, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("my own table\n")
    (mine / "notes.txt").write_text("mine")
    before = snapshot(mine)
    refused(octanogan_process("convert", scans, "--out", mine), str(mine), "not written by octanogan")
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == \
        ["manifest.csv", "notes.txt"]


def test_a_cohort_folder_is_not_a_convert_output(scans, tmp_path):
    from octanogan.outputs.folder import write_marker

    cohort = tmp_path / "cohort"
    cohort.mkdir()
    write_marker(cohort, "cohort")
    (cohort / "manifest.csv").write_text("volume_id\n")
    before = snapshot(cohort)
    refused(octanogan("convert", scans, "--out", cohort), "phantom cohort")
    assert snapshot(cohort) == before


# --- convert: ids never overwrite ---------------------------------------------------------------


def test_same_name_from_another_folder_with_keep_names_gets_another_id(tmp_path):
    out = tmp_path / "out"
    first, second = scan(tmp_path / "site_a" / "scan1.npy", 1), scan(tmp_path / "site_b" / "scan1.npy", 2)
    succeeded(octanogan("convert", first, "--out", out, "--keep-names"))
    volumes_before, row_before = snapshot(out / "volumes"), rows(out)["scan1"]
    succeeded(octanogan("convert", second, "--out", out, "--keep-names", "--label", "diseased"))
    assert snapshot(out / "volumes", skip=("site_b_scan1.nii.gz",)) == volumes_before
    manifest = rows(out)
    assert manifest["scan1"] == row_before and manifest["scan1"]["label"] == "healthy"
    assert manifest["site_b_scan1"]["label"] == "diseased"
    assert manifest["site_b_scan1"]["path"] != row_before["path"]
    from octanogan.io import read_volume

    np.testing.assert_array_equal(read_volume(out / manifest["site_b_scan1"]["path"]).data,
                                  np.load(second))
    sources = rows(out, "sources.csv")
    assert sources["scan1"]["sha256"] == sha256_file(first)
    assert sources["site_b_scan1"]["sha256"] == sha256_file(second)
    # The first file again: the same volume, refused as already converted, nothing rewritten.
    before = snapshot(out, skip=("refused.csv",))
    succeeded(octanogan("convert", first, "--out", out, "--keep-names", "--label", "diseased"), 1)
    assert snapshot(out, skip=("refused.csv",)) == before
    assert "already converted as volume 'scan1'" in rows(out, "refused.csv")[str(first)]["reason"]


def test_identical_files_pseudonymised_give_one_volume_and_one_refusal(tmp_path):
    out = tmp_path / "out"
    original = scan(tmp_path / "x" / "P1234_Doe.npy", 3)
    copy = tmp_path / "y" / "copy.npy"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    result = octanogan("convert", original, copy, "--out", out)
    succeeded(result)
    volume_id = sha256_file(original)[:16]
    assert list(rows(out)) == [volume_id]
    reason = rows(out, "refused.csv")[str(copy)]["reason"]
    assert str(original) in reason and volume_id in reason
    assert "P1234" not in (out / "manifest.csv").read_text() + (out / "sources.csv").read_text()
    assert [p.name for p in (out / "volumes").iterdir()] == [f"{volume_id}.nii.gz"]
    # ... and across runs: the copy is refused again, no duplicate id, nothing rewritten.
    before = snapshot(out, skip=("refused.csv",))
    succeeded(octanogan("convert", copy, "--out", out), 1)
    assert snapshot(out, skip=("refused.csv",)) == before
    assert f"already converted as volume '{volume_id}'" in rows(out, "refused.csv")[str(copy)]["reason"]


def kept(before: dict[str, str], after: dict[str, str]) -> bool:
    """Every file of ``before`` is still there with the same bytes."""
    return all(after.get(path) == digest for path, digest in before.items())


@pytest.mark.parametrize("first_name, second_name, second_id", [
    ("a b", safe_name("a b"), None),  # "a b" is stored as a_b-<hash8>: the second id's own name
    ("Scan", "scan", "q_scan"),  # one file on case-insensitive file systems (macOS, Windows)
])
def test_ids_whose_file_names_collide_get_separate_files(tmp_path, first_name, second_name,
                                                          second_id):
    out = tmp_path / "out"
    first = scan(tmp_path / "p" / f"{first_name}.npy", 4)
    second = scan(tmp_path / "q" / f"{second_name}.npy", 5)
    succeeded(octanogan("convert", first, "--out", out, "--keep-names"))
    before, row_before = snapshot(out / "volumes"), rows(out)[first_name]
    succeeded(octanogan("convert", second, "--out", out, "--keep-names"))
    assert kept(before, snapshot(out / "volumes")) and rows(out)[first_name] == row_before
    manifest = rows(out)
    paths = [r["path"].lower() for r in manifest.values()]
    assert len(manifest) == 2 and len(set(paths)) == 2
    assert second_id is None or second_id in manifest
    # Both in one run: still two files.
    succeeded(octanogan("convert", first, second, "--out", tmp_path / "one", "--keep-names"))
    assert len({r["path"].lower() for r in rows(tmp_path / "one").values()}) == 2


# --- phantom ------------------------------------------------------------------------------------


def test_phantom_into_an_existing_cohort_is_refused(tmp_path):
    from octanogan.phantom import make_cohort

    make_cohort(tmp_path / "cohort", n_healthy=1, n_diseased=0, shape=(2, 96, 96), seed=0)
    before = snapshot(tmp_path / "cohort")
    refused(octanogan_process("phantom", tmp_path / "cohort", "--shape", "2,96,96", "--seed", "1"),
            str(tmp_path / "cohort"), "holds a phantom cohort already; choose a new folder")
    assert snapshot(tmp_path / "cohort") == before


def test_phantom_into_a_foreign_folder_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("volume_id,path\nx,x.nii.gz\n")
    before = snapshot(mine)
    refused(octanogan("phantom", mine, "--shape", "2,96,96"), str(mine), "not written by octanogan")
    assert snapshot(mine) == before


# --- device strings -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, device", [
    ("Heidelberg Engineering", "heidelberg"), ("Heidelberg Spectralis", "heidelberg"),
    ("SPECTRALIS", "heidelberg"), ("Carl Zeiss Meditec", "zeiss"), ("Cirrus HD-OCT 5000", "zeiss"),
    ("TOPCON Corporation", "topcon"), ("Optovue RTVue XR Avanti", "optovue"),
    ("NIDEK RS-3000 Advance", "nidek"), ("Canon OCT-HS100", "canon"), ("Optopol REVO", "optopol"),
    ("St Mary's Eye Clinic, room 4, Dr J. Smith", "other"), ("Acme", "other"), ("", ""),
    (None, ""), ("  ", ""),
])
def test_device_free_text_is_allow_listed(text, device):
    assert canonical_device(text) == device


def write_dicom(path: Path, manufacturer: str, model: str) -> Path:
    pytest.importorskip("pydicom")
    import vendor_files

    return vendor_files.write_dicom(path, np.arange(2 * 8 * 8, dtype=np.uint8).tobytes(), (2, 8, 8),
                                    PatientName="Doe^Jane", PatientID="PID-998877",
                                    Manufacturer=manufacturer, ManufacturerModelName=model)


def test_dicom_device_strings_reach_the_manifest_only_as_allow_listed_names(tmp_path):
    known = write_dicom(tmp_path / "in" / "known.dcm", "Heidelberg Engineering", "Spectralis")
    odd = write_dicom(tmp_path / "in" / "odd.dcm", "Dr Smith's practice", "station 7 (Jane Doe)")
    out = tmp_path / "out"
    succeeded(octanogan("convert", known, odd, "--out", out))
    devices = {r["device"] for r in rows(out).values()}
    assert devices == {"heidelberg", "other"}
    text = "".join(p.read_text() for p in out.glob("*.csv"))
    assert "Smith" not in text and "Doe" not in text and "PID-998877" not in text
