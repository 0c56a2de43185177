"""``octanogan predict``: anomaly maps, a predictions table and a report for unlabelled scans.

The output folder's layout is :mod:`octanogan.outputs.prediction`'s (docs/formats.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import ConfigError, InputError, OctanoganError, Refusal
from octanogan.fsutil import atomic_path, atomic_write_json
from octanogan.io.manifest import load_manifest
from octanogan.outputs.calibration import read_calibration
from octanogan.outputs.cells import safe_cell
from octanogan.outputs.folder import atomic_dir, claim_output
from octanogan.outputs.lock import scope
from octanogan.outputs.prediction import INPUTS, KIND, PREDICTIONS, RECORD, REPORT, SCORES
from octanogan.provenance import now

PREDICTION_COLUMNS = ("volume_id", "input", "status", "score", "threshold", "above_threshold",
                      "flagged_regions", "flagged_bscans", "n_bscans", "bscans_failing_qc",
                      "problem")
COUNT_COLUMNS = ("flagged_regions", "flagged_bscans", "n_bscans", "bscans_failing_qc")
#: Smallest region counted in predictions.csv (single noisy voxels are not findings).
MIN_REGION_VOXELS = 10


@dataclass
class PredictionSummary:
    out: Path
    table: pd.DataFrame
    refused: list[Refusal] = field(default_factory=list)
    #: The run's calibration.json that set the thresholds (None: scores only).
    calibration: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def calibration_source(self) -> str:
        """Which calibration set the thresholds, in words (for the command's summary)."""
        if self.calibration is None:
            return "the run has no calibration: scores only (run `octanogan calibrate`)"
        healthy = self.calibration.get("healthy") or {}
        return (f"thresholds: healthy p{self.calibration.get('percentile', 99.0):g} of "
                f"{healthy.get('n_volumes', '?')} val volume(s), made by `octanogan "
                f"{healthy.get('made_by', 'calibrate')}` on {self.calibration.get('date', '?')}")


def _input_manifest(inputs: list[Path], folder: Path, keep_names: bool
                    ) -> tuple[pd.DataFrame, list[tuple[str, str]], dict[str, str]]:
    """The volumes to score: a manifest given as the only input, or the inputs converted into
    ``folder`` (pseudonymous ids unless ``keep_names``). Returns them, the refused inputs and
    each volume's input file."""
    if len(inputs) == 1 and inputs[0].suffix.lower() == ".csv":
        manifest = load_manifest(inputs[0]).assign(split="test")
        return manifest, [], dict(zip(manifest["volume_id"], manifest["path"]))
    from octanogan.io.convert import convert_inputs

    report = convert_inputs(inputs, folder, label="unknown", split="test",
                            pseudonymise=not keep_names)
    if not report.rows:
        raise InputError(inputs[0] if len(inputs) == 1 else folder,
                         "no input could be read: " + "; ".join(map(str, report.refused[:3])))
    return (load_manifest(report.manifest_path), report.refused,
            {row["volume_id"]: row["source"] for row in report.rows})


def _volume_row(files: Any, volume_id: str, thresholds: dict[str, float]) -> dict[str, Any]:
    """One predictions.csv row from a scored volume's files."""
    from octanogan.report.regions import flagged_regions

    score = files.volume_score(volume_id)
    threshold = thresholds.get("volume")
    bscans = files.bscan_scores(volume_id)["score"].to_numpy()
    anomaly = files.anomaly_map(volume_id)
    regions = None
    if "voxel" in thresholds:
        retina = files.retina_mask(volume_id, anomaly.shape)
        _, regions = flagged_regions(anomaly, thresholds["voxel"], np.eye(4), retina, 1,
                                     MIN_REGION_VOXELS)
    qc = files.quality(volume_id)
    return {
        "volume_id": volume_id, "status": "scored", "score": score, "threshold": threshold,
        "above_threshold": None if threshold is None else bool(score > threshold),
        "flagged_regions": regions,
        "flagged_bscans": None if "bscan" not in thresholds else int((bscans > thresholds["bscan"]).sum()),
        "n_bscans": len(qc.reasons), "bscans_failing_qc": int((~qc.passed).sum()), "problem": "",
    }


def _threshold_record(run_dir: Path, out: Path, calibration: dict[str, Any] | None,
                      scoring: dict[str, Any]) -> dict[str, Any]:
    """prediction.json: thresholds, their source, the run (no metrics)."""
    from octanogan.outputs.run import run_provenance

    record: dict[str, Any] = {"kind": KIND, "date": now(), "scores_dir": SCORES,
                              "run": run_provenance(run_dir, out), "scoring": scoring, "markers": {}}
    if calibration is not None:
        percentile = calibration.get("percentile", 99.0)
        record["thresholds"] = {f"healthy_p{percentile:g}": calibration["thresholds"]}
        record["calibration"] = {k: calibration.get(k) for k in ("date", "percentile", "healthy")}
    return record


@dataclass
class PredictOptions:
    """The ``predict:`` section of a pipeline YAML (``octanogan predict --config``)."""

    keep_names: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        from octanogan.device import DEVICE_CHOICES

        if not isinstance(self.keep_names, bool):
            raise ConfigError("keep_names", f"must be true or false, got {self.keep_names!r}")
        if self.device not in DEVICE_CHOICES:
            raise ConfigError("device", f"must be one of {list(DEVICE_CHOICES)}, got {self.device!r}")


@scope()
def predict_inputs(run_dir: str | Path, inputs: Iterable[str | Path], out: str | Path,
                   device: str = "auto", keep_names: bool = False,
                   progress: Callable[[Iterable], Iterable] | None = None,
                   score: dict[str, Any] | None = None,
                   score_source: str = "command line") -> PredictionSummary:
    """Preprocess and score ``inputs`` with the run's calibrated settings; write OUT whole.

    Inputs are files or folders octanogan reads, or one manifest CSV (labels may be empty or
    ``unknown``). Unreadable inputs are listed as refused and the rest is predicted. Without a
    calibration ``score`` (a flat ``score:`` section) over the defaults sets the scoring and the
    tables carry no thresholds; with one, ``score`` may only repeat its settings (see
    ``prediction_score_config``).
    """
    from octanogan.distributed import ranks_from_env
    from octanogan.outputs.scores import ScoreFiles
    from octanogan.prediction.calibrate import prediction_score_config
    from octanogan.report.render import render_into
    from octanogan.scoring.score import score_manifest

    if ranks_from_env().active:
        raise OctanoganError("predict runs in one process: start it without torchrun")
    start = time.perf_counter()
    run_dir, out, inputs = Path(run_dir), Path(out), [Path(p) for p in inputs]
    if not inputs:
        raise OctanoganError("predict needs at least one input")
    claim_output(out, KIND, [run_dir, *inputs])
    calibration = _run_calibration(run_dir)
    config = prediction_score_config(calibration, score or {}, score_source)
    thresholds = dict(calibration["thresholds"]) if calibration else {}
    with atomic_dir(out, KIND) as tmp:
        manifest, refused, sources = _input_manifest(inputs, tmp / INPUTS, keep_names)
        summary = score_manifest(run_dir, manifest, tmp / SCORES, config, device, keep_going=True,
                                 progress=progress, shard=(0, 1))
        # problems name files relative to OUT (where they will be once OUT is in place)
        refused += [Refusal(sources.get(r.volume_id, ""), r.reason.replace(f"{tmp}{os.sep}", ""),
                            r.volume_id) for r in summary.failed]
        files = ScoreFiles(tmp / SCORES)
        table = _predictions_table(files, manifest["volume_id"], sources, refused, thresholds)
        with atomic_path(tmp / PREDICTIONS) as target:
            table.to_csv(target, index=False)
        atomic_write_json(tmp / RECORD, _threshold_record(run_dir, out, calibration, files.settings))
        render_into(tmp, tmp / REPORT)
    return PredictionSummary(out, table, refused, calibration, time.perf_counter() - start)


def _run_calibration(run_dir: Path) -> dict[str, Any] | None:
    """The run's calibration, refused when it was made with other weights of the run."""
    from octanogan.outputs.run import weights_hash

    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder not found")
    calibration = read_calibration(run_dir)
    if calibration is not None and calibration.get("run_hash") not in (None, weights_hash(run_dir)):
        raise InputError(run_dir / "calibration.json", "was made with other weights of this run; "
                                                       "run `octanogan calibrate` again")
    return calibration


def _predictions_table(files: Any, volume_ids: Iterable[str], sources: dict[str, str],
                       refused: list[Refusal], thresholds: dict[str, float]) -> pd.DataFrame:
    """predictions.csv: the scored volumes, highest score first, then the refused inputs."""
    rows = [{**_volume_row(files, v, thresholds), "input": sources.get(v, "")}
            for v in volume_ids if v in files.volumes.index]
    rows += [{"volume_id": r.volume_id, "input": r.file, "status": "refused", "problem": r.reason}
             for r in refused]
    table = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS)).astype(
        {c: "Int64" for c in COUNT_COLUMNS} | {"above_threshold": "boolean"})
    table = table.sort_values("score", ascending=False, na_position="last", kind="stable")
    for column in ("input", "problem"):  # the user's paths and messages: text, never formulas
        table[column] = [safe_cell(v) if isinstance(v, str) else v for v in table[column]]
    return table
