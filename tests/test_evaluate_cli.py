"""``octanogan evaluate`` end to end through the real CLI on the tiny phantom cohort."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from octanogan.fsutil import sha256_file

FAST = ("--mode", "encoder", "--stride", 32, "--device", "cpu", "--n-bootstrap", 50)


def test_evaluate_writes_metrics_figures_and_report(tiny_run, tiny_cohort, tmp_path, cli):
    out = tmp_path / "eval"
    result = cli("evaluate", tiny_run, tiny_cohort, "--annotations", tiny_cohort.parent / "annotations.csv",
                 "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    assert str(out / "report" / "index.html") in result.output.replace("\n", "")
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"voxel", "patch", "bscan", "volume"} <= set(metrics["level"])
    assert "pooled" in set(metrics["marker"])
    auroc = metrics.query("metric == 'auroc'")
    assert auroc["value"].between(0, 1).all()
    assert (auroc["ci_low"] <= auroc["value"] + 1e-9).all()
    assert (auroc["value"] <= auroc["ci_high"] + 1e-9).all()
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["thresholds"]["healthy_p99"]["patch"] > 0
    assert (out / "figures" / "roc_patch.png").is_file()
    assert (out / "report" / "index.html").is_file()
    assert len(list((out / "report" / "volumes").glob("*.html"))) >= 1
    # the run keeps what predict and the model card need: calibration and headline metrics
    calibration = json.loads((tiny_run / "calibration.json").read_text())
    assert calibration["healthy"]["made_by"] == "evaluate"
    assert calibration["thresholds"] == pytest.approx(evaluation["thresholds"]["healthy_p99"])
    last = json.loads((tiny_run / "last_evaluation.json").read_text())
    assert {m["level"] for m in last["metrics"] if m["metric"] == "auroc"} == {"voxel", "patch",
                                                                              "bscan", "volume"}
    assert 'href="model_card.html"' in (out / "report" / "index.html").read_text()

    # `octanogan report` re-renders from the saved outputs without rescoring.
    scores_before = sha256_file(out / "scores")
    (out / "report" / "index.html").unlink()
    assert cli("report", out).exit_code == 0
    assert (out / "report" / "index.html").is_file()
    assert sha256_file(out / "scores") == scores_before


def test_evaluate_refuses_bad_annotations(tiny_run, tiny_cohort, tmp_path, cli):
    cohort = tmp_path / "cohort"
    shutil.copytree(tiny_cohort.parent, cohort)
    annotations = pd.read_csv(cohort / "annotations.csv")
    diseased = annotations[annotations["volume_id"].str.startswith("diseased")].iloc[0]
    label_path = cohort / diseased["annotation_path"]
    import nibabel as nib

    image = nib.load(label_path)
    data = np.asarray(image.dataobj).copy()
    data[0, 0, 0] = 9  # a value the marker table does not name
    nib.save(nib.Nifti1Image(data, image.affine), label_path)
    result = cli("evaluate", tiny_run, cohort / "manifest.csv", "--annotations", cohort / "annotations.csv",
                 "--out", tmp_path / "eval", *FAST)
    assert result.exit_code == 2
    assert label_path.name in result.output and "9" in result.output
    nib.save(nib.Nifti1Image(data[:, :-1], image.affine), label_path)  # wrong shape
    result = cli("evaluate", tiny_run, cohort / "manifest.csv", "--annotations", cohort / "annotations.csv",
                 "--out", tmp_path / "eval2", *FAST)
    assert result.exit_code == 2 and "shape" in result.output
