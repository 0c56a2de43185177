"""Real-scan benchmark (not a test): boundaries and anomaly detection on ../shared/data.

    python tests/benchmarks/bench_real.py boundaries [--out-json real_boundaries.json]
    python tests/benchmarks/bench_real.py anomaly --seeds 0 1 2 [--iterations 3500] [--work DIR]

The data is the development set in ../shared/data beside the repository (see its README.md); the
script says so and exits 0 when it is absent. Set OMP_NUM_THREADS to the cores really free.

boundaries: octanogan's preprocessing on every B-scan. (1) ILM/BM error against the Heidelberg
device's own segmentation in heidelberg_vol/Linescan_1.vol, over all columns and on the optic-disc
side; (2) visible failures of ILM/BM on kermany_dev, kermany_crops (normal, abnormal) and
topcon_healthy_bscans, by rule (see FAILURE RULES below), with figures of every failing B-scan
(docs/figures/real_boundary_failures*.png) and of 12 random passing ones
(docs/figures/real_boundary_ok.png).

anomaly: the real CLI (extract, train, evaluate) on a manifest built from the data: train on
kermany_crops/normal (every 5th crop held out as val), test on kermany_dev (NORMAL healthy, CNV/DME/
DRUSEN diseased) and amd_drusen_dev (diseased, drusen masks as label maps). Reports volume-level
AUROC of NORMAL against each kermany_dev disease and pooled (bootstrap CI), drusen voxel and patch
AUROC from EVAL/metrics.csv, per seed and as mean (min-max) over seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FIGURES = REPO / "docs" / "figures"

# ---------------------------------------------------------------------------------------------
# FAILURE RULES (visible failures of ILM/BM on one B-scan; rows and columns in pixels of the
# original image; only valid columns count, see valid_columns)
JUMP_PX = 20.0            # (a) BM jumps more than this between neighbouring valid columns
BOTTOM_PX = 3.0           # (b) BM within this of the image's bottom edge ...
BOTTOM_SHARE = 0.05       # ... in more than this share of valid columns
SPIKE_PX = 20.0           # (c) ILM more than this from its running median ...
SPIKE_COLUMNS = 31        # ... over this many (valid) columns, anywhere
THIN_PX = 20.0            # (e) retina (BM - ILM) thinner than this ...
THICK_FRACTION = 0.60     # ... or thicker than this fraction of the image height ...
THICKNESS_SHARE = 0.05    # ... in more than this share of valid columns
# A column is invalid (padding / registration fill) when the preprocessing's `invalid` mask covers
# at least half of its rows; without that mask every column is valid.
INVALID_COLUMN_SHARE = 0.5
REASONS = ("bm_jump", "bm_bottom", "ilm_spike", "ilm_ge_bm", "thickness", "refused")
REASON_TEXT = {"bm_jump": f"BM jump > {JUMP_PX:g} px", "bm_bottom": "BM at image bottom",
               "ilm_spike": "ILM spike", "ilm_ge_bm": "ILM >= BM", "thickness": "thickness out of range",
               "refused": "preprocessing refused"}
FAILURE_FOLDERS = ("kermany_dev", "kermany_crops/normal", "kermany_crops/abnormal", "topcon_healthy_bscans")
THUMBS_PER_FIGURE = 40
THUMB_COLUMNS = 8
ERROR_PX = 5.0            # device comparison: share of columns off by more than this


def natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    suffixes = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file()),
                  key=natural_key)


def folder_images(name: str) -> list[Path]:
    folder = DATA / name
    return image_files(folder / "images" if (folder / "images").is_dir() else folder)


def require_data() -> None:
    if not DATA.is_dir():
        print(f"real data not found at {DATA} (the shared development set beside the repository); "
              "nothing to measure")
        sys.exit(0)


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of a QC record of unknown shape (dataclass, dict, numpy...)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()) if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def qc_flagged(qc: Any) -> bool | None:
    """Whether a QC record of unknown shape flags its B-scan: None when it cannot be told."""
    if qc is None:
        return None
    record = jsonable(qc)
    if isinstance(record, list):  # one record per B-scan: here there is one B-scan
        record = record[0] if len(record) == 1 else record
    if not isinstance(record, dict):
        return None
    for key in ("qc_passed", "ok", "passed", "good"):
        if isinstance(record.get(key), bool):
            return not record[key]
    for key in ("flags", "warnings", "problems", "failed", "reasons"):
        if key in record:
            return bool(record[key])
    return None


# --- boundaries --------------------------------------------------------------------------------


def preprocess_file(path: Path) -> tuple[Any, float]:
    """octanogan's preprocessing of one image file read as a volume, and its seconds."""
    from octanogan.io import read_volume
    from octanogan.preprocess import PreprocessConfig, preprocess_volume

    volume = read_volume(path)
    start = time.perf_counter()
    result = preprocess_volume(volume.data, PreprocessConfig(), volume.spacing_mm)
    return result, time.perf_counter() - start


def error_stats(detected: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    keep = np.isfinite(reference)
    error = np.abs(detected[keep] - reference[keep])
    if error.size == 0:
        return {"n_columns": 0, "mean": float("nan"), "p95": float("nan"), "share_over_5px": float("nan")}
    return {"n_columns": int(error.size), "mean": float(error.mean()),
            "p95": float(np.percentile(error, 95)), "share_over_5px": float((error > ERROR_PX).mean())}


def device_comparison() -> dict[str, Any] | None:
    """ILM/BM error against the segmentation stored in the Heidelberg line scan."""
    path = DATA / "heidelberg_vol" / "Linescan_1.vol"
    if not path.is_file():
        print(f"{path} not found: no device comparison")
        return None
    import eyepy as ep

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):  # eyepy: "less layers"
        eye = ep.import_heyex_vol(path)
    # eyepy's layer heights are rows of the B-scan on the same pixel grid as read_volume's data
    # (docs/preprocessing.md compares them the same way); NaN where the device has no value.
    device = {name: np.asarray(eye.layers[name].data[0], dtype=np.float64) for name in ("ILM", "BM")}
    result, seconds = preprocess_file(path)
    detected = {"ILM": result.ilm[0].astype(np.float64), "BM": result.bm[0].astype(np.float64)}
    width = detected["ILM"].size
    halves = {"left": np.arange(width) < width // 2, "right": np.arange(width) >= width // 2}
    # Disc side: the optic disc has no RPE, so the device leaves BM empty there (the retina also
    # thins into the cup). The disc side is the half with more columns lacking a device BM; if
    # both halves lack equally many, the half whose median device thickness (BM - ILM) is smaller.
    missing_bm = {side: int((~np.isfinite(device["BM"][cols])).sum()) for side, cols in halves.items()}
    thickness = device["BM"] - device["ILM"]
    median_thickness = {side: float(np.nanmedian(thickness[cols])) if np.isfinite(thickness[cols]).any()
                        else float("inf") for side, cols in halves.items()}
    if missing_bm["left"] != missing_bm["right"]:
        disc = max(missing_bm, key=missing_bm.get)
        rule = f"more columns without device BM ({missing_bm[disc]} vs {min(missing_bm.values())})"
    else:
        disc = min(median_thickness, key=median_thickness.get)
        rule = f"thinner median device retina ({median_thickness[disc]:.1f} px)"
    macula = "left" if disc == "right" else "right"
    regions = {"all": np.ones(width, bool), f"disc side ({disc})": halves[disc],
               f"macula side ({macula})": halves[macula]}
    out: dict[str, Any] = {"file": str(path.relative_to(DATA)), "shape": list(result.image.shape),
                           "disc_side": disc, "disc_rule": rule, "missing_device_bm": missing_bm,
                           "median_device_thickness": median_thickness, "seconds": seconds,
                           "errors": {}}
    for region, cols in regions.items():
        out["errors"][region] = {layer: error_stats(detected[layer][cols], device[layer][cols])
                                 for layer in ("ILM", "BM")}
    return out


def valid_columns(invalid: np.ndarray | None, height: int, width: int) -> np.ndarray:
    if invalid is None:
        return np.ones(width, bool)
    return np.asarray(invalid, bool).reshape(height, width).mean(axis=0) < INVALID_COLUMN_SHARE


def running_median(values: np.ndarray, size: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.median_filter(values, size=size, mode="nearest")


def check_bscan(ilm: np.ndarray, bm: np.ndarray, valid: np.ndarray, height: int) -> dict[str, Any]:
    """The failure rules on one B-scan: measured quantities and the reasons that fire."""
    ilm, bm = ilm.astype(np.float64), bm.astype(np.float64)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return {"n_valid_columns": 0, "reasons": []}
    pair = valid[1:] & valid[:-1]
    jump = float(np.abs(np.diff(bm))[pair].max()) if pair.any() else 0.0
    # rows are continuous (a boundary at 10.5 lies between pixel rows 10 and 11): the image's
    # bottom edge is at row height - 0.5
    bottom_share = float(((height - 0.5 - bm[valid]) <= BOTTOM_PX).mean())
    ilm_valid = ilm[valid]
    spike = float(np.abs(ilm_valid - running_median(ilm_valid, SPIKE_COLUMNS)).max())
    crossed = int((ilm[valid] >= bm[valid]).sum())
    thickness = bm[valid] - ilm[valid]
    bad_thickness = float(((thickness < THIN_PX) | (thickness > THICK_FRACTION * height)).mean())
    measured = {"n_valid_columns": n_valid, "max_bm_jump": jump, "bm_bottom_share": bottom_share,
                "max_ilm_spike": spike, "ilm_ge_bm_columns": crossed,
                "bad_thickness_share": bad_thickness,
                "median_thickness": float(np.median(thickness))}
    reasons = [name for name, fires in (("bm_jump", jump > JUMP_PX),
                                        ("bm_bottom", bottom_share > BOTTOM_SHARE),
                                        ("ilm_spike", spike > SPIKE_PX),
                                        ("ilm_ge_bm", crossed > 0),
                                        ("thickness", bad_thickness > THICKNESS_SHARE)) if fires]
    return {**measured, "reasons": reasons}


@dataclass
class BscanRecord:
    folder: str
    name: str
    reasons: list[str]
    measured: dict[str, Any]
    seconds: float
    qc_flagged: bool | None = None
    qc: Any = None
    # for the figures: the normalised image as uint8, the surfaces and the invalid mask
    image: np.ndarray | None = field(default=None, repr=False)
    ilm: np.ndarray | None = field(default=None, repr=False)
    bm: np.ndarray | None = field(default=None, repr=False)
    invalid: np.ndarray | None = field(default=None, repr=False)
    error: str = ""


def measure_file(folder: str, path: Path) -> BscanRecord:
    try:
        result, seconds = preprocess_file(path)
    except Exception as exc:  # octanogan refuses the file: that is a failure of its own kind
        return BscanRecord(folder, path.name, ["refused"], {}, 0.0, error=f"{type(exc).__name__}: {exc}")
    height, width = result.image.shape[1:]
    invalid = getattr(result, "invalid", None)
    invalid = None if invalid is None else np.asarray(invalid, bool)[0]
    checked = check_bscan(result.ilm[0], result.bm[0], valid_columns(invalid, height, width), height)
    reasons = checked.pop("reasons")
    qc = result.qc.records() if hasattr(result, "qc") else None
    image = np.clip((result.image[0] + 1.0) * 127.5, 0, 255).astype(np.uint8)
    return BscanRecord(folder, path.name, reasons, checked, seconds, qc_flagged(qc), jsonable(qc),
                       image, result.ilm[0].copy(), result.bm[0].copy(), invalid)


def draw_thumbs(records: list[BscanRecord], target: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from octanogan.fsutil import atomic_path

    columns = min(THUMB_COLUMNS, max(1, len(records)))
    rows = max(1, -(-len(records) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.0 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, record in zip(axes.ravel(), records):
        label = f"{record.folder}/{record.name}"
        if record.image is None:
            ax.text(0.5, 0.5, f"{label}\nrefused:\n{record.error[:80]}", ha="center", va="center",
                    fontsize=5, wrap=True, transform=ax.transAxes)
            continue
        ax.imshow(record.image, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="antialiased")
        if record.invalid is not None and record.invalid.any():
            overlay = np.zeros((*record.invalid.shape, 4))
            overlay[record.invalid] = (1.0, 0.0, 1.0, 0.25)
            ax.imshow(overlay, aspect="auto")
        columns_x = np.arange(record.image.shape[1])
        ax.plot(columns_x, record.ilm, color="cyan", lw=0.6)
        ax.plot(columns_x, record.bm, color="orange", lw=0.6)
        ax.set_xlim(-0.5, record.image.shape[1] - 0.5)
        ax.set_ylim(record.image.shape[0] - 0.5, -0.5)
        reasons = ", ".join(record.reasons) if record.reasons else "ok"
        ax.set_title(f"{label}\n{reasons}", fontsize=6.5)
    fig.suptitle(f"{title}  (ILM cyan, BM orange, fill/padding magenta)", fontsize=9)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    print(f"wrote {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")


def failure_figures(failing: list[BscanRecord], passing: list[BscanRecord], figures: Path,
                    seed: int) -> list[str]:
    written = []
    chunks = [failing[i:i + THUMBS_PER_FIGURE] for i in range(0, len(failing), THUMBS_PER_FIGURE)]
    for stale in figures.glob("real_boundary_failures*.png"):  # figures of an earlier, longer run
        stale.unlink()
    for number, chunk in enumerate(chunks, start=1):
        name = "real_boundary_failures.png" if number == 1 else f"real_boundary_failures_{number}.png"
        draw_thumbs(chunk, figures / name, f"failing B-scans {number}/{len(chunks)} "
                                          f"({len(failing)} in all)")
        written.append(name)
    pick = np.random.default_rng(seed).choice(len(passing), size=min(12, len(passing)), replace=False)
    if len(pick):
        ok = [passing[i] for i in sorted(pick)]
        draw_thumbs(ok, figures / "real_boundary_ok.png", f"{len(ok)} random passing B-scans")
        written.append("real_boundary_ok.png")
    return written


def boundaries(args: argparse.Namespace) -> None:
    require_data()
    start = time.perf_counter()
    report: dict[str, Any] = {"rules": {
        "bm_jump_px": JUMP_PX, "bm_bottom_px": BOTTOM_PX, "bm_bottom_share": BOTTOM_SHARE,
        "ilm_spike_px": SPIKE_PX, "ilm_spike_columns": SPIKE_COLUMNS, "thin_px": THIN_PX,
        "thick_fraction_of_height": THICK_FRACTION, "thickness_share": THICKNESS_SHARE,
        "invalid_column_share": INVALID_COLUMN_SHARE}}

    device = device_comparison()
    report["device_comparison"] = device
    if device:
        print(f"\nILM/BM against the device segmentation: {device['file']} {device['shape']}, "
              f"disc side = {device['disc_side']} ({device['disc_rule']})")
        print(f"{'region':<22}{'layer':<6}{'columns':>8}{'mean px':>9}{'p95 px':>8}{'> 5 px':>8}")
        for region, layers in device["errors"].items():
            for layer, stats in layers.items():
                print(f"{region:<22}{layer:<6}{stats['n_columns']:>8}{stats['mean']:>9.2f}"
                      f"{stats['p95']:>8.2f}{100 * stats['share_over_5px']:>7.1f}%")

    records: list[BscanRecord] = []
    folders: dict[str, Any] = {}
    for folder in args.folders:
        if not (DATA / folder).is_dir():
            print(f"{DATA / folder} not found: skipped")
            continue
        files = folder_images(folder)
        if args.limit:
            files = files[:args.limit]
        chunk = [measure_file(folder, path) for path in files]
        records += chunk
        failing = [r for r in chunk if r.reasons]
        flags = [r.qc_flagged for r in chunk if r.qc_flagged is not None]
        folders[folder] = {
            "n": len(chunk), "n_failing": len(failing),
            "percent_failing": 100.0 * len(failing) / max(len(chunk), 1),
            "reasons": {reason: sum(reason in r.reasons for r in chunk) for reason in REASONS},
            "n_with_invalid_pixels": sum(r.invalid is not None and bool(r.invalid.any()) for r in chunk),
            "qc_flagged": sum(flags) if flags else None,
            "qc_flagged_and_failing": sum(bool(r.qc_flagged) and bool(r.reasons) for r in chunk) if flags
            else None,
            "seconds_per_bscan": float(np.mean([r.seconds for r in chunk])) if chunk else 0.0,
            "bscans": [{"name": r.name, "reasons": r.reasons, **r.measured,
                        **({"error": r.error} if r.error else {}),
                        **({"qc": r.qc} if r.qc is not None else {})} for r in chunk],
        }
    n_total = sum(f["n"] for f in folders.values())
    n_failing = sum(f["n_failing"] for f in folders.values())
    report["folders"] = folders
    report["total"] = {"n": n_total, "n_failing": n_failing,
                       "percent_failing": 100.0 * n_failing / max(n_total, 1),
                       "reasons": {reason: sum(f["reasons"][reason] for f in folders.values())
                                   for reason in REASONS}}
    has_invalid = any(r.invalid is not None for r in records)
    has_qc = any(r.qc_flagged is not None for r in records)
    report["preprocessing_has_invalid_mask"] = has_invalid
    report["preprocessing_has_qc"] = any(r.qc is not None for r in records)

    print("\nvisible ILM/BM failures (a B-scan can fail for several reasons)"
          + ("" if has_invalid else "; preprocessing gives no invalid mask: every column counts"))
    header = f"{'folder':<26}{'n':>5}{'fail':>6}{'%':>7}" + "".join(f"{r:>11}" for r in REASONS)
    header += f"{'QC flag':>9}" if has_qc else ""
    print(header + f"{'s/B-scan':>10}")
    for name, row in [*folders.items(), ("total", report["total"])]:
        line = f"{name:<26}{row['n']:>5}{row['n_failing']:>6}{row['percent_failing']:>6.1f}%"
        line += "".join(f"{row['reasons'][r]:>11}" for r in REASONS)
        if has_qc:
            flagged = row.get("qc_flagged")
            line += f"{'' if flagged is None else flagged:>9}"
        seconds = row.get("seconds_per_bscan")
        print(line + (f"{seconds:>10.3f}" if seconds is not None else ""))
    measured = [r.measured for r in records if r.measured.get("n_valid_columns")]
    if measured:
        keys = ("max_bm_jump", "bm_bottom_share", "max_ilm_spike", "ilm_ge_bm_columns", "bad_thickness_share")
        largest = {key: max(m[key] for m in measured) for key in keys}
        report["largest_measured"] = largest
        print("largest over all B-scans: " + ", ".join(f"{k} {v:.3g}" for k, v in largest.items()))
    for record in records:
        if record.error:
            print(f"refused: {record.folder}/{record.name}: {record.error}")

    if not args.no_figures:
        failing = [r for r in records if r.reasons]
        passing = [r for r in records if not r.reasons]
        report["figures"] = failure_figures(failing, passing, args.figures, args.seed)
    report["seconds"] = time.perf_counter() - start
    print(f"wall time {report['seconds']:.1f} s")
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(report, indent=1, allow_nan=True) + "\n")
        print(f"wrote {args.out_json}")


# --- anomaly -----------------------------------------------------------------------------------

KERMANY_DISEASES = ("CNV", "DME", "DRUSEN")


def screen(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files octanogan reads and preprocesses, and those it refuses (with the reason)."""
    kept, refused = [], []
    for path in paths:
        try:
            preprocess_file(path)
        except Exception as exc:
            refused.append((path, f"{type(exc).__name__}: {exc}"))
        else:
            kept.append(path)
    return kept, refused


def drusen_label_map(image: Path, mask: Path, out: Path) -> Path:
    """The drusen mask as a uint8 NIfTI label map (1 = drusen) on its image's grid."""
    from PIL import Image

    from octanogan.io import read_volume, write_nifti

    volume = read_volume(image)
    _, height, width = volume.shape
    with Image.open(mask) as handle:
        handle = handle.convert("L")
        if handle.size != (width, height):
            handle = handle.resize((width, height), Image.NEAREST)
        labels = (np.asarray(handle) > 0).astype(np.uint8)
    return write_nifti(labels[None], volume.affine, out, dtype=np.uint8)


def build_cohort(data_dir: Path, val_every: int) -> dict[str, Any]:
    """manifest.csv, annotations.csv, markers.json and label maps in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    diagnosis: dict[str, str] = {}
    crops, refused_crops = screen(image_files(DATA / "kermany_crops" / "normal"))
    for i, path in enumerate(crops):
        split = "val" if i % val_every == val_every - 1 else "train"
        rows.append({"volume_id": f"crop_{path.stem}", "path": str(path), "label": "healthy", "split": split})
    with open(DATA / "kermany_dev" / "labels.csv", newline="") as handle:
        labels = list(csv.DictReader(handle))
    by_path = {DATA / "kermany_dev" / row["image"]: row for row in labels}
    dev, refused_dev = screen(sorted(by_path, key=natural_key))
    for path in dev:
        row = by_path[path]
        label = "healthy" if row["diagnosis"].upper() == "NORMAL" else "diseased"
        diagnosis[path.stem] = row["diagnosis"].upper()
        rows.append({"volume_id": path.stem, "path": str(path), "label": label, "split": "test"})
    amd, refused_amd = screen(image_files(DATA / "amd_drusen_dev" / "images"))
    annotations = []
    for path in amd:
        mask = DATA / "amd_drusen_dev" / "masks" / path.name
        if not mask.is_file():
            refused_amd.append((path, "no mask"))
            continue
        target = drusen_label_map(path, mask, data_dir / "labels" / f"{path.stem}.nii.gz")
        rows.append({"volume_id": path.stem, "path": str(path), "label": "diseased", "split": "test",
                     "annotation_path": str(target)})
        annotations.append({"volume_id": path.stem, "annotation_path": str(target)})
        diagnosis[path.stem] = "AMD_DRUSEN_SET"
    columns = ["volume_id", "path", "label", "split", "annotation_path"]
    with open(data_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in columns} for row in rows)
    with open(data_dir / "annotations.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["volume_id", "annotation_path"])
        writer.writeheader()
        writer.writerows(annotations)
    (data_dir / "markers.json").write_text(json.dumps({"1": "drusen"}) + "\n")
    count = {split: sum(r["split"] == split for r in rows) for split in ("train", "val", "test")}
    return {"manifest": data_dir / "manifest.csv", "annotations": data_dir / "annotations.csv",
            "markers": data_dir / "markers.json", "diagnosis": diagnosis, "count": count,
            "n_kermany_dev": len(dev), "n_amd": len(annotations),
            "refused": [(str(p.relative_to(DATA)), why)
                        for p, why in refused_crops + refused_dev + refused_amd]}


def octanogan(args: list[str], log: Path) -> tuple[int, str, str, float]:
    """``python -m octanogan ARGS``: exit code, stdout, stderr and seconds; output kept in ``log``."""
    command = [sys.executable, "-m", "octanogan", *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # not run from the repository: `-m` puts the working folder first on sys.path, and PYTHONPATH
    # (e.g. a checkout of another commit) should decide which octanogan runs, as it does here
    done = subprocess.run(command, capture_output=True, text=True, cwd=log.parent)
    seconds = time.perf_counter() - start
    log.write_text(f"$ {' '.join(command)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\n"
                   f"--- exit {done.returncode} after {seconds:.1f} s\n")
    return done.returncode, done.stdout, done.stderr, seconds


def stage(args: list[str], log: Path) -> tuple[str, str, float]:
    """Run a stage; a failure prints the stage's own error verbatim and stops the seed."""
    code, out, err, seconds = octanogan(args, log)
    if code != 0:
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise RuntimeError(f"`octanogan {args[0]}` exited {code} after {seconds:.1f} s (log: {log}):\n{tail}")
    return out, err, seconds


def bootstrap_auroc(healthy: np.ndarray, diseased: np.ndarray, n: int,
                    seed: int) -> tuple[float, float, float]:
    """AUROC and a 95 % percentile bootstrap CI (each class resampled with replacement)."""
    from sklearn.metrics import roc_auc_score

    if len(healthy) == 0 or len(diseased) == 0:
        return float("nan"), float("nan"), float("nan")
    truth = np.r_[np.zeros(len(healthy)), np.ones(len(diseased))]
    value = float(roc_auc_score(truth, np.r_[healthy, diseased]))
    rng = np.random.default_rng(seed)
    draws = [roc_auc_score(truth, np.r_[rng.choice(healthy, len(healthy)),
                                        rng.choice(diseased, len(diseased))]) for _ in range(n)]
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan"))
    return value, float(low), float(high)


def metric(table: Any, level: str, marker: str, name: str = "auroc") -> dict[str, float] | None:
    pick = table[(table["level"] == level) & (table["marker"] == marker) & (table["metric"] == name)
                 & (table["operating_point"].fillna("") == "")]
    if pick.empty:
        return None
    row = pick.iloc[0]
    return {"value": float(row["value"]), "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
            "n_pos": int(row["n_pos"]), "n_neg": int(row["n_neg"])}


def read_results(eval_dir: Path, diagnosis: dict[str, str], n_bootstrap: int, seed: int) -> dict[str, Any]:
    import pandas as pd

    volumes = pd.read_csv(eval_dir / "scores" / "volumes.csv", dtype={"volume_id": str})
    volumes["diagnosis"] = volumes["volume_id"].map(diagnosis)
    scores = {name: group["score"].to_numpy(float) for name, group in volumes.groupby("diagnosis")}
    normal = scores.get("NORMAL", np.empty(0))
    results: dict[str, Any] = {}
    for disease in KERMANY_DISEASES:
        results[f"volume NORMAL vs {disease}"] = bootstrap_auroc(normal, scores.get(disease, np.empty(0)),
                                                                 n_bootstrap, seed)
    kermany = np.concatenate([scores.get(d, np.empty(0)) for d in KERMANY_DISEASES])
    results["volume NORMAL vs kermany pooled"] = bootstrap_auroc(normal, kermany, n_bootstrap, seed)
    results["volume NORMAL vs AMD drusen set"] = bootstrap_auroc(
        normal, scores.get("AMD_DRUSEN_SET", np.empty(0)), n_bootstrap, seed)
    table = pd.read_csv(eval_dir / "metrics.csv", dtype={"operating_point": str})
    # metrics.csv: positives are amd_drusen_dev's drusen; negatives are their background and every
    # healthy test volume (kermany_dev NORMAL counts as all background); the volume row pools all
    for label, (level, marker) in {"volume pooled, all test (metrics.csv)": ("volume", "pooled"),
                                   "voxel drusen (metrics.csv)": ("voxel", "drusen"),
                                   "patch drusen (metrics.csv)": ("patch", "drusen"),
                                   "B-scan drusen (metrics.csv)": ("bscan", "drusen")}.items():
        row = metric(table, level, marker)
        results[label] = (row["value"], row["ci_low"], row["ci_high"]) if row else (float("nan"),) * 3
    results["_scored_test_volumes"] = int((volumes["split"] == "test").sum())
    record = json.loads((eval_dir / "evaluation.json").read_text())
    results["_outside_retina"] = record.get("annotated_voxels_outside_retina", {})
    results["_warnings"] = record.get("warnings", [])
    return results


def anomaly_seed(args: argparse.Namespace, cohort: dict[str, Any], store: Path, seed: int,
                 work: Path) -> dict[str, Any]:
    run_dir, eval_dir = work / f"seed{seed}" / "run", work / f"seed{seed}" / "eval"
    logs = work / f"seed{seed}" / "logs"
    train_args = ["train", str(store), "--out", str(run_dir), "--iterations", str(args.iterations),
                  "--encoder-iterations", str(args.encoder_iterations), "--batch-size", str(args.batch_size),
                  "--base-channels", str(args.base_channels), "--latent-dim", str(args.latent_dim),
                  "--seed", str(seed), "--device", args.device, "--flip" if args.flip else "--no-flip",
                  "--overwrite"]
    _, _, train_seconds = stage(train_args, logs / "train.log")
    print(f"  seed {seed}: trained in {train_seconds:.0f} s", flush=True)
    eval_args = ["evaluate", str(run_dir), str(cohort["manifest"]),
                 "--annotations", str(cohort["annotations"]), "--markers", str(cohort["markers"]),
                 "--out", str(eval_dir), "--device", args.device, "--mode", args.mode,
                 "--hybrid-steps", str(args.hybrid_steps), "--stride", str(args.score_stride),
                 "--smooth", str(args.smooth), "--n-bootstrap", str(args.n_bootstrap), "--seed", str(seed),
                 "--keep-going"]
    if eval_dir.exists():  # scores of an earlier run in the same --work would be reused: start afresh
        shutil.rmtree(eval_dir)
    code, _, eval_err, eval_seconds = octanogan(eval_args, logs / "evaluate.log")
    skipped = re.findall(r"^skipped (.+?): (.*)$", eval_err, flags=re.M)
    if code != 0 and skipped:
        # evaluate needs every test volume scored: drop the ones octanogan refused and evaluate again
        import pandas as pd

        manifest = pd.read_csv(cohort["manifest"], dtype=str, keep_default_na=False)
        kept = manifest[~manifest["volume_id"].isin([vid for vid, _ in skipped])]
        reduced = work / f"seed{seed}" / "manifest_scored.csv"
        kept.to_csv(reduced, index=False)
        eval_args[2] = str(reduced)
        code, _, eval_err, more = octanogan(eval_args, logs / "evaluate_again.log")
        eval_seconds += more
    if code != 0:
        tail = "\n".join(eval_err.strip().splitlines()[-15:])
        raise RuntimeError(f"`octanogan evaluate` exited {code} (log: {logs}):\n{tail}")
    print(f"  seed {seed}: scored and evaluated in {eval_seconds:.0f} s"
          + (f"; octanogan skipped {len(skipped)} volume(s)" if skipped else ""), flush=True)
    results = read_results(eval_dir, cohort["diagnosis"], args.n_bootstrap, seed)
    results["_seconds"] = {"train": train_seconds, "evaluate": eval_seconds}
    results["_skipped"] = skipped
    return results


def print_anomaly_table(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    seeds = sorted(per_seed)
    names = [k for k in per_seed[seeds[0]] if not k.startswith("_")]
    width = max(len(n) for n in names) + 2
    print(f"{'AUROC':<{width}}" + "".join(f"{'seed ' + str(s):>22}" for s in seeds)
          + f"{'mean (min-max)':>24}")
    summary = {}
    for name in names:
        cells, values = "", []
        for s in seeds:
            value, low, high = per_seed[s][name]
            values.append(value)
            cells += f"{value:>8.3f} [{low:.2f}-{high:.2f}]" if np.isfinite(value) else f"{'n/a':>22}"
        finite = [v for v in values if np.isfinite(v)]
        spread = (f"{np.mean(finite):.3f} ({min(finite):.3f}-{max(finite):.3f})" if finite else "n/a")
        summary[name] = {"mean": float(np.mean(finite)) if finite else None,
                         "min": min(finite) if finite else None, "max": max(finite) if finite else None,
                         "per_seed": {str(s): list(per_seed[s][name]) for s in seeds}}
        print(f"{name:<{width}}{cells}{spread:>24}")
    return summary


def anomaly(args: argparse.Namespace) -> None:
    require_data()
    start = time.perf_counter()
    work_context = (contextlib.nullcontext(str(args.work)) if args.work
                    else tempfile.TemporaryDirectory(prefix="bench_real_"))
    with work_context as work_name:
        work = Path(work_name).resolve()
        work.mkdir(parents=True, exist_ok=True)
        cohort = build_cohort(work / "data", args.val_every)
        print(f"cohort: {cohort['count']['train']} train + {cohort['count']['val']} val crops "
              f"(kermany_crops/normal), {cohort['n_kermany_dev']} kermany_dev + {cohort['n_amd']} "
              f"amd_drusen_dev test B-scans; refused by octanogan before the run: {len(cohort['refused'])}")
        for path, why in cohort["refused"]:
            print(f"  refused: {path}: {why}")
        store = work / "store"
        if store.exists():
            shutil.rmtree(store)
        extract_out, _, extract_seconds = stage(
            ["extract", str(cohort["manifest"]), "--out", str(store), "--keep-going",
             "--patch-size", str(args.patch_size),
             "--stride", str(args.stride)], work / "logs" / "extract.log")
        n_patches = json.loads((store / "settings.json").read_text())["n_patches"]
        print(f"extract: {extract_out.strip()}", flush=True)
        per_seed, failures = {}, {}
        for seed in args.seeds:
            try:
                per_seed[seed] = anomaly_seed(args, cohort, store, seed, work)
            except RuntimeError as exc:
                failures[seed] = str(exc)
                print(f"  seed {seed} FAILED: {exc}", flush=True)
        wall = time.perf_counter() - start
        print(f"\ntraining budget: {args.iterations} GAN + {args.encoder_iterations} encoder iterations, "
              f"batch {args.batch_size}, base_channels {args.base_channels}, latent {args.latent_dim}, "
              f"on {n_patches} patches {args.patch_size}x{args.patch_size} (extract stride {args.stride}, "
              f"{extract_seconds:.0f} s); scoring {args.mode}"
              + (f" ({args.hybrid_steps} steps)" if args.mode == "hybrid" else "")
              + f", stride {args.score_stride}, smooth {args.smooth:g}")
        for seed, results in per_seed.items():
            seconds = results["_seconds"]
            print(f"seed {seed}: train {seconds['train']:.0f} s, score+evaluate {seconds['evaluate']:.0f} s, "
                  f"{results['_scored_test_volumes']} test volumes scored"
                  + (f", skipped by octanogan: {len(results['_skipped'])}" if results["_skipped"] else ""))
            for vid, why in results["_skipped"]:
                print(f"  skipped {vid}: {why}")
            if results["_outside_retina"]:
                print(f"  annotated voxels outside the retina mask (not in voxel metrics): "
                      f"{results['_outside_retina']}")
            for warning in results["_warnings"]:
                print(f"  evaluation warning: {warning}")
        summary = {}
        if per_seed:
            print(f"\nAUROC [95 % bootstrap CI]; 'NORMAL vs' rows from EVAL/scores/volumes.csv "
                  f"({args.n_bootstrap} resamples within each class); metrics.csv rows: drusen of "
                  "amd_drusen_dev against its background and the healthy test volumes")
            summary = print_anomaly_table(per_seed)
        print(f"wall time {wall:.0f} s" + (f"; work folder {work}" if args.work else ""))
        if args.out_json:
            record = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                   if k != "func"},
                      "cohort": {"count": cohort["count"], "n_kermany_dev": cohort["n_kermany_dev"],
                                 "n_amd": cohort["n_amd"], "refused": cohort["refused"]},
                      "n_patches": n_patches, "extract_seconds": extract_seconds, "wall_seconds": wall,
                      "summary": summary, "failures": {str(k): v for k, v in failures.items()},
                      "seconds": {str(s): r["_seconds"] for s, r in per_seed.items()},
                      "annotated_voxels_outside_retina": {str(s): r["_outside_retina"]
                                                          for s, r in per_seed.items()}}
            args.out_json.parent.mkdir(parents=True, exist_ok=True)
            args.out_json.write_text(json.dumps(record, indent=1) + "\n")
            print(f"wrote {args.out_json}")
    if failures:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    defaults = argparse.ArgumentDefaultsHelpFormatter
    b = commands.add_parser("boundaries", help="ILM/BM against the device and visible failures",
                            formatter_class=defaults,
                            description="ILM/BM error against the Heidelberg device segmentation, "
                                        "and visible ILM/BM failures on the real B-scans.")
    b.add_argument("--out-json", type=Path, help="write every number (and per-B-scan measures) here")
    b.add_argument("--folders", nargs="+", default=list(FAILURE_FOLDERS),
                   help="folders of ../shared/data to check for failures")
    b.add_argument("--figures", type=Path, default=FIGURES, help="where the figures go")
    b.add_argument("--no-figures", action="store_true")
    b.add_argument("--limit", type=int, default=0, help="first N files per folder (0: all)")
    b.add_argument("--seed", type=int, default=0, help="seed of the random passing B-scans shown")
    b.set_defaults(func=boundaries)

    a = commands.add_parser("anomaly", help="extract, train, evaluate on the real scans, per seed",
                            formatter_class=defaults,
                            description="The real CLI (extract, train, evaluate) on kermany_crops/normal "
                                        "(train/val), kermany_dev and amd_drusen_dev (test).")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--iterations", type=int, default=3500, help="GAN iterations")
    a.add_argument("--encoder-iterations", type=int, default=1200)
    a.add_argument("--patch-size", type=int, default=64)
    a.add_argument("--stride", type=int, default=16, help="extraction stride")
    a.add_argument("--base-channels", type=int, default=16)
    a.add_argument("--latent-dim", type=int, default=64)
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    a.add_argument("--mode", default="hybrid", choices=("encoder", "hybrid", "iterative"))
    a.add_argument("--hybrid-steps", type=int, default=20)
    a.add_argument("--score-stride", type=int, default=32)
    a.add_argument("--smooth", type=float, default=4.0, help="smooth_sigma of the anomaly maps")
    a.add_argument("--n-bootstrap", type=int, default=500)
    a.add_argument("--val-every", type=int, default=5, help="every N-th normal crop is held out as val")
    a.add_argument("--device", default="cpu")
    a.add_argument("--work", type=Path, help="keep everything here (default: a temporary folder)")
    a.add_argument("--out-json", type=Path)
    a.set_defaults(func=anomaly)

    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # children inherit it; see the module docstring
    args.func(args)


if __name__ == "__main__":
    main()
