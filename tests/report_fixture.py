"""An EVAL + SCORES folder for the report tests: the scores written through their layout's owner
(``octanogan.outputs.scores.ScoresFolder``), the evaluation by hand per docs/formats.md.

Volumes are small layered retinas with speckle; diseased ones carry fluid and bright-dot
lesions with a label map, and the anomaly maps are high where the lesions are. The manifest
also holds identifying columns (a patient name, a birth date) that must never reach a page.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from octanogan.io import affine_from_spacing, write_nifti
from octanogan.outputs.scores import PATCH_COLUMNS, ScoresFolder

SPACING_MM = (0.12, 0.0039, 0.0115)
MARKERS = {"1": "IRF", "2": "SRF", "4": "HRF"}
INJECTED_ID = "<script>alert(1)</script>"
PATIENT_NAME = "DOE^JANE"
BIRTH_DATE = "1950-01-01"
VOXEL_THRESHOLD = 0.12
#: The scores folder's settings.json.
SCORING = {"inversion": {"mode": "iterative", "steps": 500, "hybrid_steps": 50, "lam": 0.1,
                         "norm": "l1", "lr": 0.05, "seed": 0},
           "stride": 32, "batch_size": 256, "weighting": "uniform", "smooth_sigma": 4.0,
           "anomaly_map": "darker", "top_fraction": 0.1, "patch_size": 64, "run_hash": "ab12" * 16,
           "versions": {"octanogan": "0.1.0", "torch": "2.8.0", "monai": "1.6.0"},
           "preprocess": {"flatten": True, "normalise": "percentile"}}
#: The volume whose B-scan QC_BSCAN fails quality control and whose corner holds export fill.
QC_VOLUME, QC_BSCAN = "<script>alert(1)</script>", 2
#: (volume id, label, eye, lesion seed or None)
VOLUMES = (
    ("HEALTHY-001", "healthy", "OD", None),
    (INJECTED_ID, "diseased", "OS", 1),
    ("DISEASED-002", "diseased", "OD", 2),
    ("HEALTHY-002", "healthy", "OS", None),
)
#: Reflectivity of the retinal layers, by depth as a fraction of retinal thickness.
LAYERS = ((0.08, 0.8), (0.18, 0.45), (0.28, 0.55), (0.38, 0.25), (0.45, 0.6), (0.75, 0.2),
          (0.78, 0.45), (0.84, 0.75), (0.86, 0.35), (0.95, 0.95))


def _surfaces(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, depth, width = shape
    b = np.linspace(-1, 1, n)[:, None]
    x = np.linspace(-1, 1, width)[None, :]
    curve = depth * (0.06 * (x**2 + b**2) + rng.uniform(-0.03, 0.03) * x)
    pit = depth * 0.08 * np.exp(-(x**2 + b**2) / 0.04)
    ilm = depth * 0.28 + curve + pit
    thickness = depth * 0.3 - pit
    return ilm, thickness


def _retina(shape: tuple[int, int, int], rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Speckled 8-bit-like intensities, retina mask, ILM and layer-relative depth."""
    n, depth, width = shape
    ilm, thickness = _surfaces(shape, rng)
    rows = np.arange(depth)[None, :, None]
    rel = (rows - ilm[:, None, :]) / thickness[:, None, :]
    clean = np.full(rel.shape, 0.04, np.float32)
    below = 0.0
    for bottom, reflectivity in LAYERS:
        clean[(rel >= below) & (rel < bottom)] = reflectivity
        below = bottom
    choroid = rel >= below
    clean[choroid] = (0.5 * np.exp(-(rel[choroid] - below) * 1.5)).astype(np.float32)
    speckle = rng.gamma(2.0, 0.5, size=shape).astype(np.float32)
    data = np.log1p(40 * clean * speckle) / np.log1p(40 * 1.6)
    data = np.round(np.clip(data, 0, 1) * 255).astype(np.float32)
    retina = (rel >= 0) & (rel < 0.95)
    return data, retina, ilm, rel


def _lesions(rel: np.ndarray, seed: int) -> np.ndarray:
    """IRF cysts in the ONL, one SRF dome above the RPE and a few HRF dots."""
    rng = np.random.default_rng(100 + seed)
    n, depth, width = rel.shape
    labels = np.zeros(rel.shape, np.uint8)
    b, y, x = np.indices(rel.shape, sparse=True)
    for _ in range(2):
        cb, cx = rng.integers(1, n - 1), rng.integers(width // 5, 4 * width // 5)
        rows = np.nonzero((rel[cb, :, cx] > 0.5) & (rel[cb, :, cx] < 0.7))[0]
        if rows.size:
            cy = rows[rows.size // 2]
            blob = ((b - cb) / 1.2) ** 2 + ((y - cy) / (depth * 0.04)) ** 2 + \
                ((x - cx) / (width * 0.06)) ** 2 <= 1
            labels[blob & (rel > 0.4) & (rel < 0.78)] = 1
    if seed % 2:
        cb, cx = n // 2, width // 2
        dome = ((b - cb) / max(n / 4, 1)) ** 2 + ((x - cx) / (width * 0.12)) ** 2
        labels[(rel > 0.78) & (rel < 0.84 + 0.08 * np.clip(1 - dome, 0, 1)) & (dome < 1)] = 2
    for _ in range(3):
        cb, cy, cx = rng.integers(0, n), rng.integers(0, depth), rng.integers(0, width)
        if 0.1 < rel[cb, cy, cx] < 0.7:
            labels[cb, max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = 4
    return labels


def _anomaly(data: np.ndarray, retina: np.ndarray, labels: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    noise = np.abs(rng.normal(0, 0.03, data.shape)).astype(np.float32)
    lesion = ndimage.gaussian_filter((labels > 0).astype(np.float32), (0.6, 1.5, 1.5)) * 0.9
    return ((noise + lesion) * retina).astype(np.float32)


def _patch_rows(volume_id: str, anomaly: np.ndarray, patch: int) -> list[str]:
    n, depth, width = anomaly.shape
    half = patch // 2
    rows = []
    for bscan in range(n):
        for y in range(half, depth - half + 1, half):
            for x in range(half, width - half + 1, half):
                score = float(anomaly[bscan, y - half:y + half, x - half:x + half].mean()) * 10
                rows.append([volume_id, bscan, y, x, score, score * 0.9, score * 0.1])
    return rows


def _top_mean(patches: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """B-scan and volume scores: the mean of the top tenth (scoring's rule, written out here)."""
    def top(values: np.ndarray) -> float:
        return float(np.sort(values)[::-1][: max(1, len(values) // 10)].mean())

    per_bscan = patches.groupby("bscan", sort=True)["score"].apply(lambda v: top(v.to_numpy()))
    return per_bscan.rename("score").reset_index(), top(patches["score"].to_numpy())


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _metric_rows() -> list[list]:
    rows = []
    for level in ("volume", "bscan", "patch", "voxel"):
        for m, marker in enumerate(("pooled", "IRF", "SRF", "HRF")):
            base = 0.93 - 0.04 * m
            ci = (round(base - 0.05, 2), round(min(base + 0.04, 1.0), 2))
            rows.append([level, marker, "auroc", "", base, *ci, 40 - m, 60])
            rows.append([level, marker, "ap", "", base - 0.1, base - 0.2, base - 0.02, 40 - m, 60])
            if level == "voxel":
                rows.append([level, marker, "pro", "", base - 0.2, base - 0.3, base - 0.1, 40 - m, 60])
                rows.append([level, marker, "dice", "healthy_p99", 0.41, 0.3, 0.5, 40 - m, 60])
                continue
            for point, shift in (("healthy_p99", 0.0), ("youden", 0.05)):
                for metric, value in (("sensitivity", 0.7), ("specificity", 0.95),
                                      ("precision", 0.8), ("recall", 0.7)):
                    v = round(value + shift - 0.02 * m, 2)
                    rows.append([level, marker, metric, point, v, v - 0.1, min(v + 0.05, 1.0),
                                 40 - m, 60])
    return rows


def _curves() -> dict:
    x = np.linspace(0, 1, 600)
    result: dict = {"roc": {}, "pr": {}}
    for level in ("volume", "bscan", "patch", "voxel"):
        result["roc"][level], result["pr"][level] = {}, {}
        for m, marker in enumerate(("pooled", "IRF", "SRF", "HRF")):
            power = 0.15 + 0.1 * m
            result["roc"][level][marker] = {"x": x.tolist(), "y": (x**power).tolist(),
                                            "auc": 1 / (1 + power)}
            result["pr"][level][marker] = {"x": x.tolist(), "y": (1 - 0.6 * x**(3 - m)).tolist(),
                                           "ap": 0.9 - 0.1 * m}
    return result


def build_eval_dir(root: Path, shape: tuple[int, int, int] = (6, 64, 96), seed: int = 0) -> Path:
    """Write volumes, label maps, a SCORES folder and an EVAL folder under ``root``; returns EVAL."""
    root = Path(root)
    data_dir = root / "data" / "DOE_JANE_19500101"
    scores, evald = root / "scores", root / "eval"
    for folder in (data_dir, evald / "figures"):
        folder.mkdir(parents=True, exist_ok=True)
    folder = ScoresFolder(scores)
    folder.check_settings(SCORING)
    affine = affine_from_spacing(SPACING_MM)
    rng = np.random.default_rng(seed)
    manifest_rows = []
    for i, (volume_id, label, eye, lesion_seed) in enumerate(VOLUMES):
        data, retina, ilm, rel = _retina(shape, rng)
        labels = _lesions(rel, lesion_seed) if lesion_seed is not None else np.zeros(shape, np.uint8)
        data[labels == 1] *= 0.15
        data[labels == 2] *= 0.1
        data[labels == 4] = 250
        anomaly = _anomaly(data, retina, labels, rng)
        image_path = write_nifti(data, affine, data_dir / f"volume_{i}.nii.gz")
        annotation = ""
        if lesion_seed is not None:
            annotation = str(write_nifti(labels, affine, data_dir / f"labels_{i}.nii.gz", np.uint8))
        fill = np.zeros(shape, dtype=bool)
        reasons = np.full(shape[0], "", dtype="<U40")
        if volume_id == QC_VOLUME:
            fill[:, : shape[1] // 4, : shape[2] // 4] = True  # a registration wedge, top left
            reasons[QC_BSCAN] = "unmeasured;low_contrast"
        geometry = {"shifts": np.zeros(shape[::2], np.int32), "bm_row": np.array(int(shape[1] * 0.6)),
                    "ilm": ilm, "bm": ilm + shape[1] * 0.3, "invalid": fill,
                    "qc_invalid_fraction": np.zeros(shape[0], np.float32),
                    "qc_measured_fraction": np.ones(shape[0], np.float32),
                    "qc_cnr": np.full(shape[0], 5.0, np.float32), "qc_reasons": reasons}
        patches = pd.DataFrame(_patch_rows(volume_id, anomaly, patch=min(32, shape[1] // 2)),
                               columns=list(PATCH_COLUMNS))
        folder.write_volume(volume_id, affine, anomaly, retina.astype(np.uint8), geometry, patches)
        manifest_rows.append([volume_id, str(image_path), label, "test", annotation,
                              "Spectralis", eye, PATIENT_NAME, BIRTH_DATE])
    manifest = pd.DataFrame(manifest_rows, columns=["volume_id", "path", "label", "split",
                                                    "annotation_path", "device", "eye",
                                                    "patient_name", "birth_date"])
    manifest.to_csv(data_dir.parent / "manifest.csv", index=False)
    (data_dir.parent / "markers.json").write_text(json.dumps(MARKERS))
    volumes = folder.write_tables(manifest, _top_mean)
    bscan_scores = pd.read_csv(scores / "bscans.csv")["score"].to_numpy()
    volume_scores = volumes["score"].to_numpy()
    scoring = SCORING
    evaluation = {
        "manifest": str(data_dir.parent / "manifest.csv"),
        "scores_dir": str(scores),
        "annotations": None,
        "markers": MARKERS,
        "thresholds": {
            "healthy_p99": {"voxel": VOXEL_THRESHOLD, "patch": 1.0,
                            "bscan": float(np.percentile(bscan_scores, 60)),
                            "volume": float(np.median(volume_scores))},
            "youden": {"voxel": 0.1, "patch": 0.9,
                       "bscan": float(np.percentile(bscan_scores, 50)),
                       "volume": float(np.median(volume_scores)) * 0.95},
        },
        "run": {"run_dir": "/data/DOE_JANE_19500101/runs/paper-2017",
                "config": {"latent_dim": 100, "widths": [512, 256, 128, 64], "lr": 0.0002,
                           "store": "/data/DOE_JANE_19500101/store", "objective": "wgan-gp"},
                "versions": {"octanogan": "0.1.0", "torch": "2.8.0", "monai": "1.6.0",
                             "python": "3.11.2"},
                "store_hash": "cd34" * 16},
        "scoring": scoring,
        "date": "2025-01-15T10:30:00+00:00",
        "settings": {"n_bootstrap": 1000, "seed": 0, "aggregate": "top10"},
    }
    (evald / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    _csv(evald / "metrics.csv", ["level", "marker", "metric", "operating_point", "value",
         "ci_low", "ci_high", "n_pos", "n_neg"], _metric_rows())
    (evald / "curves.json").write_text(json.dumps(_curves()))
    return evald
