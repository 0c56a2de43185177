"""``octanogan calibrate``, ``predict`` and ``info`` through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from browser_check import CHROMIUM, page_problems
from PIL import Image
from vendor_files import SECRET_ID, write_vol

ENCODER = ("--mode", "encoder", "--device", "cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A phantom cohort (4 train, 3 val, 1 test healthy; 1 diseased) and a run trained long
    enough (about 12 s) to score the diseased volume above healthy ones."""
    from octanogan.patches.extract import ExtractConfig, extract_store
    from octanogan.phantom import make_cohort
    from octanogan.training import TrainConfig, train

    root = tmp_path_factory.mktemp("predict")
    manifest = make_cohort(root / "cohort", n_healthy=8, n_diseased=1, shape=(3, 248, 128), seed=11)
    table = pd.read_csv(manifest)
    table["split"] = ["train"] * 4 + ["val"] * 3 + ["test"] * 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights whatever the machine's cores
    table.to_csv(manifest, index=False)
    extract_store(manifest, root / "store", ExtractConfig(patch_size=32, stride=16))
    train(root / "store", root / "run", TrainConfig(
        iterations=350, encoder_iterations=250, batch_size=16, latent_dim=16, base_channels=8,
        seed=0, device="cpu", checkpoint_every=1000))
    torch.set_num_threads(threads)
    return root


def test_calibrated_predict_on_bare_nifti_files(trained, tmp_path, cli):
    run, cohort = trained / "run", trained / "cohort"
    result = cli("calibrate", run, cohort / "manifest.csv", *ENCODER)
    assert result.exit_code == 0, result.output
    calibration = json.loads((run / "calibration.json").read_text())
    assert set(calibration["thresholds"]) == {"voxel", "patch", "bscan", "volume"}
    assert calibration["healthy"]["n_volumes"] == 3
    assert calibration["scoring"]["inversion"]["mode"] == "encoder"

    # the healthy input is the calibration volume that scored lowest: below the healthy 99th
    # percentile by construction, and predicted with the calibrated settings it must score the same
    healthy_scores = dict(zip(calibration["healthy"]["volume_ids"], calibration["distributions"]["volume"]))
    lowest = min(healthy_scores, key=healthy_scores.get)
    diseased, healthy = cohort / "images" / "diseased_000.nii.gz", cohort / "images" / f"{lowest}.nii.gz"
    out = tmp_path / "pred"
    result = cli("predict", run, diseased, healthy, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "1 above the calibrated threshold" in result.output
    assert {p.name for p in out.iterdir()} == {"octanogan.json", "inputs", "scores", "predictions.csv",
                                               "prediction.json", "report"}  # its own layout
    table = pd.read_csv(out / "predictions.csv").set_index("input")
    assert table.loc[str(diseased), "above_threshold"] and not table.loc[str(healthy), "above_threshold"]
    threshold = calibration["thresholds"]["volume"]
    assert table.loc[str(diseased), "score"] > threshold > table.loc[str(healthy), "score"]
    assert table.loc[str(healthy), "score"] == pytest.approx(healthy_scores[lowest], rel=1e-6)
    for source, row in table.iterrows():
        assert row["volume_id"] not in ("diseased_000", lowest)  # pseudonymous ids
        image = nib.load(source)
        anomaly = nib.load(out / "scores" / "maps" / f"{row['volume_id']}_anomaly.nii.gz")
        assert anomaly.shape == image.shape
        np.testing.assert_allclose(anomaly.affine, image.affine, atol=1e-6)

    pages = [out / "report" / "index.html", out / "report" / "model_card.html",
             *sorted((out / "report" / "volumes").glob("*.html"))]
    assert len(pages) == 4
    card = pages[1].read_text()
    assert "4 healthy volume(s) of split &#39;train&#39;" in card and "3 healthy val volume(s)" in card
    assert ("healthy 99th percentile of 3 healthy val volume(s) (healthy_004, healthy_005, healthy_006)"
            in pages[0].read_text())
    if shutil.which(CHROMIUM):
        assert page_problems(out / "report") == {}
    info = cli("info", run)
    assert info.exit_code == 0 and "4 healthy volume(s)" in info.output and "Calibration set" in info.output


def _uncalibrated(tiny_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("calibration.json", "last_evaluation.json"):
        (run / name).unlink(missing_ok=True)
    return run


def test_predict_vendor_file_and_png_folder_without_calibration(tiny_run, tiny_cohort, tmp_path, cli):
    run = _uncalibrated(tiny_run, tmp_path)
    volume = np.asarray(nib.load(tiny_cohort.parent / "images" / "diseased_000.nii.gz").dataobj)
    vendor = write_vol(tmp_path / "scan.vol", volume.astype(np.float32) / 255.0)
    folder = tmp_path / "clinic_export"
    folder.mkdir()
    for b, bscan in enumerate(volume):
        Image.fromarray(np.clip(bscan, 0, 255).astype(np.uint8)).save(folder / f"{b:03d}.png")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti file")
    out = tmp_path / "pred"
    result = cli("predict", run, vendor, folder, broken, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "no calibration: scores only" in result.output
    assert f"refused {broken}" in result.output
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert sorted(table["status"]) == ["refused", "scored", "scored"]
    assert table.query("status == 'scored'")["threshold"].eq("").all()
    refused = table.query("status == 'refused'").iloc[0]
    assert refused["input"] == str(broken) and refused["problem"]
    assert 'id="no-calibration"' in (out / "report" / "index.html").read_text()
    for page in (out / "report").rglob("*.html"):  # no identifier, no file name on any page
        text = page.read_text()
        assert SECRET_ID not in text and "scan.vol" not in text and "clinic_export" not in text


def test_unknown_labels_are_scored_but_not_evaluated(tiny_run, tiny_cohort, tmp_path, cli):
    manifest = pd.read_csv(tiny_cohort, keep_default_na=False)
    manifest["path"] = [str(tiny_cohort.parent / p) for p in manifest["path"]]
    manifest["annotation_path"] = ""
    test_rows = manifest.index[manifest["split"] == "test"]
    manifest.loc[test_rows[:2], "label"] = ""
    manifest.loc[test_rows[2:], "label"] = "unknown"
    path = tmp_path / "manifest.csv"
    manifest.to_csv(path, index=False)
    scored = cli("score", tiny_run, path, "--out", tmp_path / "scores", *ENCODER, "--stride", 32)
    assert scored.exit_code == 0, scored.output
    assert set(pd.read_csv(tmp_path / "scores" / "volumes.csv")["label"]) >= {"unknown"}
    refused = cli("evaluate", tiny_run, path, "--out", tmp_path / "eval", *ENCODER)
    assert refused.exit_code == 2
    rows = ", ".join(str(i + 1) for i in test_rows)
    assert f"row(s) {rows} have none" in refused.output and not (tmp_path / "eval").exists()


def test_bad_calibration_and_bad_out_are_one_line_errors(tiny_run, tiny_cohort, tmp_path, cli):
    run = _uncalibrated(tiny_run, tmp_path)
    image = tiny_cohort.parent / "images" / "healthy_000.nii.gz"
    (run / "calibration.json").write_text('{"format_version": 1, "thresholds": {"volume": "high"}}')
    result = cli("predict", run, image, "--out", tmp_path / "pred")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "calibration.json" in errors[0]
    (run / "calibration.json").unlink()
    inside = cli("predict", run, tiny_cohort.parent, "--out", tiny_cohort.parent / "pred")
    assert inside.exit_code == 2 and "error:" in inside.output
    assert not (tiny_cohort.parent / "pred").exists() and not (tmp_path / "pred").exists()


def test_predict_config_sets_uncalibrated_scoring_and_guards_a_calibration(tiny_run, tiny_cohort,
                                                                           tmp_path, cli):
    run = _uncalibrated(tiny_run, tmp_path)
    image = tiny_cohort.parent / "images" / "diseased_000.nii.gz"
    pipeline = tmp_path / "study.yaml"
    pipeline.write_text("predict: {keep_names: true, device: cpu}\n"
                        "score: {mode: encoder, stride: 16, anomaly_map: brighter}\n")
    result = cli("predict", run, image, "--out", tmp_path / "pred", "--config", pipeline)
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "pred" / "scores" / "settings.json").read_text())
    assert settings["anomaly_map"] == "brighter" and settings["inversion"]["mode"] == "encoder"
    assert settings["stride"] == 16
    assert pd.read_csv(tmp_path / "pred" / "predictions.csv")["volume_id"].tolist() == ["diseased_000"]

    calibrated = cli("calibrate", run, tiny_cohort, *ENCODER, "--map", "darker")
    assert calibrated.exit_code == 0, calibrated.output
    refused = cli("predict", run, image, "--out", tmp_path / "again", "--config", pipeline)
    errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert refused.exit_code == 2 and len(errors) == 1, refused.output
    assert "anomaly_map, stride" in errors[0] and "calibration.json" in errors[0]
    assert not (tmp_path / "again").exists()
    pipeline.write_text("predict: {device: gpu}\n")
    bad = cli("predict", run, image, "--out", tmp_path / "again", "--config", pipeline)
    assert bad.exit_code == 2 and "'device'" in bad.output and not (tmp_path / "again").exists()


def test_evaluate_keeps_a_calibration_that_calibrate_made(tiny_run, tiny_cohort, tmp_path, cli):
    """`calibrate --percentile 95` is a choice: a later evaluate (whose own thresholds come from
    the same healthy val volumes) must not replace it, and predict says which calibration it used."""
    run = _uncalibrated(tiny_run, tmp_path)
    assert cli("calibrate", run, tiny_cohort, *ENCODER, "--percentile", "95").exit_code == 0
    chosen = (run / "calibration.json").read_bytes()
    annotations = ("--annotations", tiny_cohort.parent / "annotations.csv")
    result = cli("evaluate", run, tiny_cohort, *annotations, "--out", tmp_path / "eval", *ENCODER,
                 "--n-bootstrap", "5", "--seed", "3", "--bootstrap-seed", "4")
    assert result.exit_code == 0, result.output
    assert (run / "calibration.json").read_bytes() == chosen
    assert "made by `octanogan calibrate` and is kept" in result.output
    settings = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["settings"]
    assert settings["bootstrap_seed"] == 4 and "seed" not in settings  # one owner per seed
    assert json.loads((tmp_path / "eval" / "scores" / "settings.json").read_text())["inversion"]["seed"] == 3
    image = tiny_cohort.parent / "images" / "diseased_000.nii.gz"
    predicted = cli("predict", run, image, "--out", tmp_path / "pred", "--device", "cpu")
    assert predicted.exit_code == 0, predicted.output
    assert "healthy p95 of" in predicted.output and "made by `octanogan calibrate`" in predicted.output

    (run / "calibration.json").unlink()  # without a chosen one, evaluate writes its own
    assert cli("evaluate", run, tiny_cohort, *annotations, "--out", tmp_path / "eval2", *ENCODER,
               "--n-bootstrap", "5").exit_code == 0
    assert json.loads((run / "calibration.json").read_text())["healthy"]["made_by"] == "evaluate"
