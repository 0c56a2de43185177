"""Quality control through the real CLI: extract skips failing B-scans, score flags them."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from damaged import SHAPE, damaged_phantom

from octanogan.fsutil import safe_name
from octanogan.io import affine_from_spacing, write_nifti


def write_cohort(folder, volumes: dict[str, np.ndarray], spacing, split: str = "train"):
    """NIfTI files and a manifest listing them as healthy volumes of ``split``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, data in volumes.items():
        write_nifti(data, affine_from_spacing(spacing), folder / f"{name}.nii.gz")
        rows.append({"volume_id": name, "path": f"{name}.nii.gz", "label": "healthy", "split": split})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def volumes():
    damaged, spacing = damaged_phantom()
    good, _ = damaged_phantom(seed=4)
    return {"good": good[[0, 3, 0, 3]], "damaged": damaged}, spacing


def test_extract_skips_failing_bscans_and_says_so(volumes, tmp_path, cli):
    data, spacing = volumes
    manifest = write_cohort(tmp_path / "cohort", data, spacing)
    result = cli("extract", manifest, "--out", tmp_path / "store", "--patch-size", 32, "--stride", 16)
    assert result.exit_code == 0, result.output
    assert ("damaged: 2 of 4 B-scans fail quality control (invalid 1, unmeasured 1, low_contrast 1)"
            in result.output)
    assert "good:" not in result.output
    index = pd.read_csv(tmp_path / "store" / "index.csv")
    assert sorted(set(index.query("volume_id == 'damaged'")["bscan"])) == [0, 3]
    assert sorted(set(index.query("volume_id == 'good'")["bscan"])) == [0, 1, 2, 3]
    quality = pd.read_csv(tmp_path / "store" / "quality.csv", keep_default_na=False)
    damaged = quality.query("volume_id == 'damaged'")
    assert damaged["qc_passed"].tolist() == [True, False, False, True]
    assert damaged["qc_reasons"].tolist()[1:3] == ["unmeasured;low_contrast", "invalid"]


def test_a_volume_whose_every_bscan_fails_is_refused_by_name(volumes, tmp_path, cli):
    data, spacing = volumes
    ruined = data["damaged"][[1, 1, 2, 2]]
    manifest = write_cohort(tmp_path / "cohort", {"good": data["good"], "ruined": ruined}, spacing)
    result = cli("extract", manifest, "--out", tmp_path / "store", "--patch-size", 32)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ruined.nii.gz" in errors[0]
    assert "every B-scan fails quality control (invalid 2, unmeasured 2, low_contrast 2)" in errors[0]
    assert not (tmp_path / "store").exists()
    kept = cli("extract", manifest, "--out", tmp_path / "store", "--patch-size", 32, "--keep-going")
    assert kept.exit_code == 0, kept.output
    assert "refused ruined: " in kept.output and "extracted" in kept.output
    settings = json.loads((tmp_path / "store" / "settings.json").read_text())
    assert [i["volume_id"] for i in settings["inputs"]] == ["good"]
    assert settings["refused"][0]["volume_id"] == "ruined"


def test_score_flags_failing_bscans_and_zeroes_fill(volumes, tiny_run, tmp_path, cli):
    data, spacing = volumes
    manifest = write_cohort(tmp_path / "cohort", {"damaged": data["damaged"]}, spacing, split="test")
    out = tmp_path / "scores"
    result = cli("score", tiny_run, manifest, "--out", out, "--mode", "encoder", "--stride", 32,
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "damaged: 2 of 4 B-scans fail quality control" in result.output
    volumes_csv = pd.read_csv(out / "volumes.csv")
    assert volumes_csv["bscans_failing_qc"].tolist() == [2]
    bscans = pd.read_csv(out / "bscans.csv", keep_default_na=False).set_index("bscan")
    assert bscans.loc[1, "qc_reasons"] == "unmeasured;low_contrast" and not bscans.loc[1, "qc_passed"]
    assert bscans.loc[0, "qc_passed"] and bscans.loc[3, "qc_passed"]
    anomaly = np.asarray(nib.load(out / "maps" / f"{safe_name('damaged')}_anomaly.nii.gz").dataobj)
    assert anomaly.shape == SHAPE
    assert np.all(anomaly[2, :, : 3 * SHAPE[2] // 4] == 0)  # the wedge is fill: no anomaly there
    assert anomaly[0].max() > 0
