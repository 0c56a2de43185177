"""evaluate_scores end to end on a tiny hand-written SCORES folder (docs/formats.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from octanogan.errors import InputError
from octanogan.evaluation import EvaluationConfig, evaluate_scores
from octanogan.evaluation.rows import ROW_COLUMNS
from octanogan.fsutil import safe_name
from octanogan.io import affine_from_spacing, write_nifti

SHAPE = (3, 32, 32)
PATCH = 8
MARKERS = {1: "IRF", 2: "SRF"}
AFFINE = affine_from_spacing((0.12, 0.0039, 0.0115))
LEVELS = ("voxel", "patch", "bscan", "volume")

#: volume id -> (label, split, lesions as (marker, bscan, rows, cols))
VOLUMES = {
    "healthy val A": ("healthy", "val", []),
    "h_test": ("healthy", "test", []),
    "d1": ("diseased", "test", [(1, 1, slice(12, 15), slice(5, 9)), (2, 2, slice(18, 20), slice(20, 26))]),
    "d2": ("diseased", "test", [(1, 0, slice(10, 12), slice(14, 17)), (1, 0, slice(20, 22), slice(3, 5))]),
    "d_noann": ("diseased", "test", []),
}


def shifted_down(labels: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Independent of octanogan.preprocess: A-scan (b, :, w) moved down by shifts[b, w] rows."""
    flat = np.zeros_like(labels)
    for b in range(labels.shape[0]):
        for w in range(labels.shape[2]):
            for y in range(labels.shape[1]):
                if 0 <= y + shifts[b, w] < labels.shape[1]:
                    flat[b, y + shifts[b, w], w] = labels[b, y, w]
    return flat


def build_scores(root: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """A SCORES folder where lesions score higher than everything else, at every level."""
    rng = np.random.default_rng(0)
    (root / "scores" / "maps").mkdir(parents=True)
    (root / "scores" / "patches").mkdir()
    (root / "scores" / "settings.json").write_text(json.dumps({"patch_size": PATCH, "top_fraction": 0.1}))
    shifts = (np.arange(SHAPE[2]) // 8 - 1)[None, :].repeat(SHAPE[0], axis=0).astype(np.int32)
    retina = np.zeros(SHAPE, np.uint8)
    retina[:, 8:24] = 1
    manifest, annotations, volumes, bscans = [], {}, [], []
    for vid, (label, split, lesions) in VOLUMES.items():
        safe = safe_name(vid)
        labels = np.zeros(SHAPE, np.uint8)
        for marker, b, rows, cols in lesions:
            labels[b, rows, cols] = marker
        anomaly = 0.05 + 0.1 * rng.random(SHAPE)
        anomaly[labels > 0] = 0.5 + 0.1 * rng.random(int((labels > 0).sum()))
        maps = root / "scores" / "maps"
        write_nifti(anomaly, AFFINE, maps / f"{safe}_anomaly.nii.gz")
        write_nifti(retina, AFFINE, maps / f"{safe}_retina.nii.gz", dtype=np.uint8)
        np.savez(maps / f"{safe}_geometry.npz", shifts=shifts, bm_row=24,
                 ilm=np.full(SHAPE[::2], 8.0), bm=np.full(SHAPE[::2], 24.0))
        annotation = ""
        if lesions:
            annotation = str(write_nifti(labels, AFFINE, root / f"{safe}_labels.nii.gz", dtype=np.uint8))
        flat = shifted_down(labels, shifts)
        patches = []
        for b in range(SHAPE[0]):
            for y in (8, 16, 24):
                for x in (4, 12, 20, 28):
                    hit = flat[b, y - PATCH // 2:y + PATCH // 2, x - PATCH // 2:x + PATCH // 2].any()
                    hit = hit or (vid == "d_noann" and b == 1)
                    patches.append((vid, b, y, x, (2.0 if hit else 1.0) + 0.1 * rng.random(), 0.0, 0.0))
        table = pd.DataFrame(patches, columns=["volume_id", "bscan", "y", "x", "score", "residual",
                                               "feature"])
        table.to_csv(root / "scores" / "patches" / f"{safe}.csv", index=False)
        for b, group in table.groupby("bscan"):
            bscans.append((vid, b, group["score"].max()))
        volumes.append((vid, safe, label, split, f"/data/{safe}.nii.gz", annotation,
                        table["score"].max(), len(table)))
        # d1 comes through the annotations table, d2 through the manifest column.
        if vid == "d1":
            annotations[vid] = annotation
            annotation = ""
        manifest.append((vid, f"/data/{safe}.nii.gz", label, split, annotation, "", ""))
    pd.DataFrame(volumes, columns=["volume_id", "safe_id", "label", "split", "path", "annotation_path",
                                   "score", "n_patches"]).to_csv(root / "scores" / "volumes.csv", index=False)
    pd.DataFrame(bscans, columns=["volume_id", "bscan", "score"]).to_csv(root / "scores" / "bscans.csv",
                                                                         index=False)
    table = pd.DataFrame(manifest, columns=["volume_id", "path", "label", "split", "annotation_path",
                                            "device", "eye"])
    return table, annotations


def run(root: Path, manifest: pd.DataFrame, annotations: dict[str, str],
        top_fraction: float | None = None, **settings: float) -> pd.DataFrame:
    config = EvaluationConfig(**{"n_bootstrap": 50, "voxel_bins": 256, **settings})
    return evaluate_scores(root / "scores", manifest, annotations, MARKERS, root / "eval", config,
                           {"run": {"run_dir": "/runs/x"}}, top_fraction)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("evaluation")
    manifest, annotations = build_scores(root)
    return root, run(root, manifest, annotations)


def value(metrics: pd.DataFrame, level: str, marker: str, metric: str, op: str = "") -> pd.Series:
    row = metrics[(metrics["level"] == level) & (metrics["marker"] == marker)
                  & (metrics["metric"] == metric) & (metrics["operating_point"] == op)]
    assert len(row) == 1, (level, marker, metric, op)
    return row.iloc[0]


def test_writes_every_eval_file(evaluated: tuple[Path, pd.DataFrame]) -> None:
    root, metrics = evaluated
    out = root / "eval"
    for name in ("evaluation.json", "metrics.json", "metrics.csv", "curves.json",
                 "figures/score_distribution.png"):
        assert (out / name).is_file(), name
    for level in LEVELS:
        assert (out / "figures" / f"roc_{level}.png").stat().st_size > 1000
        assert (out / "figures" / f"pr_{level}.png").is_file()
    assert list(metrics.columns) == list(ROW_COLUMNS)
    on_disk = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    assert list(on_disk.columns) == list(ROW_COLUMNS) and len(on_disk) == len(metrics)
    strict = json.loads((out / "metrics.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert len(strict["rows"]) == len(metrics) and strict["run"] == {"run_dir": "/runs/x"}


def test_perfectly_separating_maps_give_auroc_one(evaluated: tuple[Path, pd.DataFrame]) -> None:
    _, metrics = evaluated
    for level in LEVELS:
        for marker in ("pooled", "IRF", "SRF"):
            row = value(metrics, level, marker, "auroc")
            assert row["value"] == 1.0, (level, marker)
            assert row["ci_low"] <= 1.0 <= row["ci_high"] or np.isnan(row["ci_low"])
        assert value(metrics, level, "pooled", "sensitivity", "youden")["value"] == 1.0
        assert value(metrics, level, "pooled", "specificity", "youden")["value"] == 1.0
    assert value(metrics, "voxel", "pooled", "dice", "healthy_p99")["value"] == 1.0
    assert value(metrics, "voxel", "IRF", "pro", "healthy_p99")["value"] == 1.0


def test_counts_follow_the_level_rules(evaluated: tuple[Path, pd.DataFrame]) -> None:
    _, metrics = evaluated
    volume = value(metrics, "volume", "pooled", "auroc")
    assert (volume["n_pos"], volume["n_neg"]) == (3, 1)  # d_noann counts by its label
    assert value(metrics, "volume", "IRF", "auroc")[["n_pos", "n_neg"]].tolist() == [2, 1]
    # B-scans with IRF: d1/1, d2/0; without any marker: h_test x3, d1/0, d2/1, d2/2 (not d1/2: SRF).
    assert value(metrics, "bscan", "IRF", "auroc")[["n_pos", "n_neg"]].tolist() == [2, 6]
    assert value(metrics, "voxel", "IRF", "pro", "youden")["n_pos"] == 3  # regions: 1 in d1, 2 in d2
    assert value(metrics, "voxel", "IRF", "auroc")["n_pos"] == 12 + 6 + 4
    assert set(metrics["operating_point"]) == {"", "healthy_p99", "youden"}


def test_provenance_and_thresholds(evaluated: tuple[Path, pd.DataFrame]) -> None:
    root, _ = evaluated
    record = json.loads((root / "eval" / "evaluation.json").read_text())
    assert record["markers"] == {"1": "IRF", "2": "SRF"}
    assert record["threshold_volumes"] == {"split": "val", "volume_ids": ["healthy val A"]}
    assert record["evaluated_volumes"]["without_annotation"] == ["d_noann"]
    healthy = record["thresholds"]["healthy_p99"]
    assert set(healthy) == set(LEVELS) and 0.05 < healthy["voxel"] < 0.5
    assert set(record["thresholds"]["youden"]) == set(LEVELS)
    assert record["warnings"] == []
    assert record["scoring"]["patch_size"] == PATCH and record["date"]
    curves = json.loads((root / "eval" / "curves.json").read_text())
    assert curves["roc"]["voxel"]["pooled"]["auc"] == 1.0
    assert 0 < len(curves["pr"]["patch"]["IRF"]["x"]) <= 200


def test_deterministic_and_falls_back_to_train_thresholds(tmp_path: Path,
                                                          evaluated: tuple[Path, pd.DataFrame]) -> None:
    manifest, annotations = build_scores(tmp_path)
    manifest.loc[manifest["volume_id"] == "healthy val A", "split"] = "train"
    metrics = run(tmp_path, manifest, annotations)
    record = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert record["threshold_volumes"]["split"] == "train"
    assert any("TRAIN" in w for w in record["warnings"])
    pd.testing.assert_frame_equal(metrics.reset_index(drop=True), evaluated[1].reset_index(drop=True))


def test_annotation_shape_mismatch_names_the_file(tmp_path: Path) -> None:
    manifest, annotations = build_scores(tmp_path)
    write_nifti(np.zeros((3, 32, 30), np.uint8), AFFINE, annotations["d1"], dtype=np.uint8)
    with pytest.raises(InputError, match="shape") as error:
        run(tmp_path, manifest, annotations)
    assert error.value.path == Path(annotations["d1"])


def test_unknown_marker_value_names_the_file_and_value(tmp_path: Path) -> None:
    manifest, annotations = build_scores(tmp_path)
    labels = np.zeros(SHAPE, np.uint8)
    labels[0, 10, 10] = 7
    write_nifti(labels, AFFINE, annotations["d1"], dtype=np.uint8)
    with pytest.raises(InputError, match=r"\[7\] not in the marker table") as error:
        run(tmp_path, manifest, annotations)
    assert error.value.path == Path(annotations["d1"])


def test_missing_scores_for_a_test_volume(tmp_path: Path) -> None:
    manifest, annotations = build_scores(tmp_path)
    volumes = pd.read_csv(tmp_path / "scores" / "volumes.csv")
    volumes[volumes["volume_id"] != "d2"].to_csv(tmp_path / "scores" / "volumes.csv", index=False)
    with pytest.raises(InputError, match="no scores for 1 test volume.*'d2'"):
        run(tmp_path, manifest, annotations)


def test_other_top_fraction_recomputes_bscan_and_volume_scores(tmp_path: Path) -> None:
    manifest, annotations = build_scores(tmp_path)
    run(tmp_path, manifest, annotations, top_fraction=1.0, n_bootstrap=0)
    record = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    thresholds = record["thresholds"]
    assert record["top_fraction"] == 1.0
    patches = pd.read_csv(tmp_path / "scores" / "patches" / f"{safe_name('healthy val A')}.csv")
    # One healthy val volume: its percentile is its own score, now the mean of all its patches.
    assert thresholds["healthy_p99"]["volume"] == pytest.approx(patches["score"].mean())
    assert thresholds["healthy_p99"]["bscan"] == pytest.approx(
        np.percentile(patches.groupby("bscan")["score"].mean(), 99))
