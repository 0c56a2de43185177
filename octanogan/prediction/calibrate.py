"""``octanogan calibrate``: operating thresholds of a run, from its healthy val volumes.

The thresholds are the healthy ``percentile`` of each level's scores (voxels inside the retina,
patches, B-scans, volumes), exactly as ``evaluate`` computes its ``healthy_p<percentile>``
operating point; they hold for the scoring settings recorded beside them.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from octanogan.errors import ConfigError, InputError, OctanoganError
from octanogan.evaluation.config import EvaluationConfig
from octanogan.evaluation.levels import MarkerCodes, healthy_thresholds, read_evidence
from octanogan.fsutil import relative_path
from octanogan.io.manifest import load_manifest
from octanogan.outputs.calibration import FORMAT_VERSION, write_calibration
from octanogan.outputs.scores import ScoreFiles
from octanogan.provenance import now
from octanogan.scoring.config import ScoreConfig, score_config

#: Settings of a scores folder that are not scoring choices (they describe the run or machine).
_NOT_SCORING = ("versions", "run_dir", "run_hash", "patch_size", "preprocess", "batch_size")


def calibration_record(files: ScoreFiles, volume_ids: list[str], config: EvaluationConfig,
                       source: dict[str, Any]) -> dict[str, Any]:
    """The calibration of the scored healthy ``volume_ids`` of ``files`` (calibration.json)."""
    if not volume_ids:
        raise InputError(files.root, "no healthy volumes to calibrate on")
    evidence = [read_evidence(files, v, "healthy", None, MarkerCodes({}), config.voxel_bins,
                              use_annotation=False) for v in volume_ids]
    exponent = max((e.voxel_exponent for e in evidence if e.voxel_hist is not None), default=0)
    patches = np.concatenate([e.patch_scores for e in evidence])
    return {
        "format_version": FORMAT_VERSION,
        "date": now(),
        "percentile": config.healthy_percentile,
        "thresholds": healthy_thresholds(evidence, config.healthy_percentile, config.voxel_bins,
                                         exponent),
        "run_hash": files.settings.get("run_hash"),
        "scoring": {k: v for k, v in files.settings.items() if k not in _NOT_SCORING},
        "healthy": {"n_volumes": len(volume_ids), "volume_ids": list(volume_ids), **source},
        "distributions": {
            "volume": [float(e.score) for e in evidence],
            "bscan": np.concatenate([e.bscan_scores for e in evidence]).tolist(),
            "patch_percentiles": np.percentile(patches, np.arange(101)).tolist() if patches.size
            else [],
        },
    }


def calibrated_score_config(calibration: dict[str, Any] | None) -> ScoreConfig:
    """The scoring settings a calibration holds for (the defaults without one)."""
    if calibration is None:
        return ScoreConfig()
    scoring = dict(calibration.get("scoring") or {})
    scoring.setdefault("anomaly_map", "absolute")  # calibrations older than the setting used |x - G(z)|
    inversion = scoring.pop("inversion", {}) or {}
    return score_config({**scoring, **inversion}, "calibration.json")


def calibrate_run(run_dir: str | Path, manifest_path: str | Path, score: ScoreConfig,
                  config: EvaluationConfig, device: str = "auto",
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Any]:
    """Score the manifest's healthy val volumes once and write ``RUN/calibration.json``.

    The scores go to a temporary folder and are dropped: only thresholds, settings and the
    healthy score distributions are kept. Returns the calibration record.
    """
    from octanogan.distributed import ranks_from_env
    from octanogan.scoring.score import score_manifest

    if ranks_from_env().active:
        raise OctanoganError("calibrate runs in one process: start it without torchrun")
    run_dir = Path(run_dir)
    manifest = load_manifest(manifest_path)
    healthy = manifest[(manifest["split"] == "val") & (manifest["label"] == "healthy")]
    if healthy.empty:
        raise InputError(manifest_path, "lists no healthy val volumes to calibrate on")
    with tempfile.TemporaryDirectory(prefix=".octanogan-calibrate-") as tmp:
        scores = Path(tmp) / "scores"
        score_manifest(run_dir, healthy.reset_index(drop=True), scores,
                       dataclasses.replace(score, splits=("val",)), device, progress=progress)
        record = calibration_record(ScoreFiles(scores), list(healthy["volume_id"]), config,
                                    {"split": "val", "manifest": relative_path(manifest_path, run_dir),
                                     "made_by": "calibrate"})
    write_calibration(run_dir, record)
    return record


def prediction_score_config(calibration: dict[str, Any] | None, given: dict[str, Any],
                            source: str) -> ScoreConfig:
    """The settings ``predict`` scores with: the calibration's, or ``given`` (a flat ``score:``
    section) over the defaults when the run has none. A calibration's thresholds hold only for its
    own settings, so ``given`` may change nothing but the batch size there."""
    if calibration is None:
        return score_config(given, source)
    calibrated = calibrated_score_config(calibration)
    flat = {**dataclasses.asdict(calibrated), **dataclasses.asdict(calibrated.inversion)}
    differing = sorted(k for k, v in given.items() if k != "batch_size" and flat.get(k) != v)
    if differing:
        held = ", ".join(f"{k}={flat.get(k)!r}" for k in differing)
        raise ConfigError(", ".join(differing), f"differs from the run's calibration.json ({held}), "
                                                "whose thresholds hold only for its own settings: "
                                                "calibrate again with them, or leave them out", source)
    return dataclasses.replace(calibrated, batch_size=given.get("batch_size", calibrated.batch_size))
