"""Real-scan benchmark (not a test): boundaries and anomaly detection on ../shared/data.

    python tests/benchmarks/bench_real.py boundaries [--out-json real_boundaries.json]
    python tests/benchmarks/bench_real.py anomaly --seeds 0 1 2 [--budget demo|quick] [--work DIR]

The data is the development set in ../shared/data beside the repository (see its README.md); the
script says so and exits 0 when it is absent. Set OMP_NUM_THREADS to the cores really free.

boundaries: octanogan's preprocessing on every B-scan. (1) ILM/BM error against the Heidelberg
device's own segmentation in heidelberg_vol/Linescan_1.vol, over all columns and on the optic-disc
side; (2) visible failures of ILM/BM on kermany_dev, kermany_crops (normal, abnormal) and
topcon_healthy_bscans, by rule (see FAILURE RULES below), with figures of every failing B-scan
(docs/figures/real_boundary_failures*.png) and of 12 random passing ones
(docs/figures/real_boundary_ok.png).

anomaly: octanogan's extract, train and scorer with pipelines/demo.yaml's settings, trained on
kermany_crops/normal (every 5th crop held back as healthy validation); fluid against the expert
masks of duke_dme_dev (voxel, patch, B-scan), drusen of amd_drusen_dev (voxel), NORMAL against
CNV/DME/DRUSEN of kermany_dev per image (bootstrap over patients), and the healthy-score ratios
across exports, beside the trivial baselines and the study's other maps (real_study.py), per seed
and as mean (min-max) over seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
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

#: Training budgets: "demo" is pipelines/demo.yaml's train section; "quick" the study's protocol.
QUICK_BUDGET = {"iterations": 1500, "encoder_iterations": 600}
SUMMARY_COLUMNS = {"fluid_voxel_auroc": "fluid voxel", "fluid_voxel_ap": "fluid voxel AP",
                   "fluid_patch_auroc": "fluid patch", "fluid_bscan_auroc": "fluid B-scan",
                   "drusen_voxel_auroc": "drusen voxel", "image_top_pooled": "image pooled",
                   "image_top_CNV": "CNV", "image_top_DME": "DME", "image_top_DRUSEN": "DRUSEN",
                   "ratio_kermany_normal": "ratio Kermany NORMAL", "ratio_duke_no_fluid": "ratio Duke"}


def demo_settings(budget: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Extraction, training and scoring settings of pipelines/demo.yaml (the defaults a user gets)."""
    import yaml

    from octanogan.scoring.config import score_config

    pipeline = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    train = {k: v for k, v in pipeline["train"].items() if k not in ("seed", "checkpoint_every")}
    if budget == "quick":
        train.update(QUICK_BUDGET)
    return pipeline["extract"], train, score_config(pipeline["score"], "pipelines/demo.yaml")


def value_of(cell: Any) -> float:
    value = cell[0] if isinstance(cell, (list, tuple)) else cell
    return float(value) if value is not None else float("nan")


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max over seeds of every number of every map."""
    seeds = sorted(per_seed)
    summary: dict[str, Any] = {}
    for name, row in per_seed[seeds[0]].items():
        if name.startswith("_"):
            continue
        summary[name] = {}
        for metric in row:
            values = [value_of(per_seed[s][name].get(metric)) for s in seeds]
            finite = [v for v in values if np.isfinite(v)]
            summary[name][metric] = {"mean": float(np.mean(finite)) if finite else None,
                                     "min": min(finite) if finite else None,
                                     "max": max(finite) if finite else None,
                                     "per_seed": dict(zip(map(str, seeds), values))}
    baselines = [per_seed[s]["_image_baselines"] for s in seeds]
    summary["_image_baselines"] = {k: value_of(v) for k, v in baselines[0].items()}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(f"{'map':<20}" + "".join(f"{title:>22}" for title in SUMMARY_COLUMNS.values()))
    for name, row in summary.items():
        if name.startswith("_"):
            continue
        cells = ""
        for metric in SUMMARY_COLUMNS:
            cell = row.get(metric)
            cells += (f"{cell['mean']:>8.3f} ({cell['min']:.3f}-{cell['max']:.3f})" if cell and
                      cell["mean"] is not None else f"{'-':>22}")
        print(f"{name:<20}{cells}")
    base = summary["_image_baselines"]
    for key in ("max_thickness", "retina_darkness"):
        print(f"whole-image baseline {key}: pooled {base[key + '_pooled']:.3f}, "
              + ", ".join(f"{d} {base[f'{key}_{d}']:.3f}" for d in ("CNV", "DME", "DRUSEN")))


def anomaly(args: argparse.Namespace) -> None:
    require_data()
    import real_study
    import torch

    from octanogan.preprocess import PreprocessConfig

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    start = time.perf_counter()
    extract, train, score = demo_settings(args.budget)
    work_context = (contextlib.nullcontext(str(args.work)) if args.work
                    else tempfile.TemporaryDirectory(prefix="bench_real_"))
    per_seed: dict[int, dict[str, Any]] = {}
    with work_context as work_name:
        work = Path(work_name).resolve()
        work.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            per_seed[seed] = real_study.run_protocol(
                work, seed, PreprocessConfig(), extract["patch_size"], extract["stride"],
                score_stride=score.stride, sigma=score.smooth_sigma, train_settings=train,
                n_bootstrap=args.n_bootstrap, product=score,
                log=lambda line: print(line, flush=True))
    wall = time.perf_counter() - start
    summary = summarise(per_seed)
    print(f"\nbudget {args.budget}: train {train}; scoring {dataclasses.asdict(score)}")
    print("mean (min-max) over seeds " + ", ".join(map(str, args.seeds))
          + "; 'product' is octanogan's own scorer with these settings, the rest are the study's "
            "maps from one encoder inversion of the same model (tests/benchmarks/real_study.py)")
    print_summary(summary)
    print(f"wall time {wall:.0f} s")
    if args.out_json:
        record = {"budget": args.budget, "train": train, "score": dataclasses.asdict(score),
                  "seeds": args.seeds, "wall_seconds": wall, "summary": summary,
                  "per_seed": {str(s): r for s, r in per_seed.items()}}
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(record, indent=1, default=float) + "\n")
        print(f"wrote {args.out_json}")


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

    a = commands.add_parser("anomaly", help="octanogan's maps and the trivial baselines, per seed",
                            formatter_class=defaults,
                            description="Train on kermany_crops/normal with pipelines/demo.yaml's settings; "
                                        "fluid (duke_dme_dev), drusen (amd_drusen_dev) and whole images "
                                        "(kermany_dev) against the trivial baselines.")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--budget", choices=("demo", "quick"), default="demo",
                   help="demo: pipelines/demo.yaml's iterations; quick: 1500 + 600 (the study's protocol)")
    a.add_argument("--n-bootstrap", type=int, default=200)
    a.add_argument("--work", type=Path, help="keep stores and runs here (default: a temporary folder)")
    a.add_argument("--out-json", type=Path)
    a.set_defaults(func=anomaly)

    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # children inherit it; see the module docstring
    args.func(args)


if __name__ == "__main__":
    main()
