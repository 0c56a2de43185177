"""Read an EVAL folder and the SCORES folder it points to (contracts: docs/formats.md).

The report never recomputes anything: every number it shows comes from these files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError
from octanogan.fsutil import read_json
from octanogan.outputs import evaluation as layout
from octanogan.outputs import prediction as prediction_layout
from octanogan.outputs.scores import BSCANS, VOLUMES, ScoresFolder, read_table, resolve

LEVELS = ("volume", "bscan", "patch", "voxel")
DEFAULT_HEALTHY_POINT = "healthy_p99"
VOLUME_COLUMNS = ("volume_id", "safe_id", "label", "split", "path", "score")
METRIC_COLUMNS = ("level", "marker", "metric", "operating_point", "value", "ci_low", "ci_high")
#: Manifest columns that may appear on a page; every other column stays off the report.
SHOWN_MANIFEST_COLUMNS = ("device", "eye")
_SAFE_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class VolumeEntry:
    """One scored volume: where its files are and the facts the report may show."""

    volume_id: str
    safe_id: str
    label: str
    split: str
    path: Path
    annotation_path: Path | None
    score: float
    n_patches: int
    bscans_failing_qc: int = 0
    device: str = ""
    eye: str = ""


@dataclass
class Evaluation:
    """Everything the report reads, loaded once."""

    eval_dir: Path
    info: dict[str, Any]
    scores_dir: Path
    markers: dict[int, str]
    metrics: pd.DataFrame
    curves: dict[str, Any]
    volumes: list[VolumeEntry]
    bscan_scores: dict[str, np.ndarray]
    bscan_qc: dict[str, dict[int, str]]  # volume id -> B-scan -> reasons it fails QC

    def qc_problems(self, volume_id: str, n_bscans: int) -> list[str]:
        """Per B-scan, why it fails quality control in words ("" where it passes)."""
        from octanogan.preprocess.quality import REASONS

        failing = self.bscan_qc.get(volume_id, {})
        return ["; ".join(REASONS.get(r, r) for r in failing[b].split(";")) if failing.get(b) else ""
                for b in range(n_bscans)]

    @property
    def healthy_point(self) -> str:
        """Name of the healthy-percentile operating point (``healthy_p<percentile>``)."""
        names = [k for k in (self.info.get("thresholds") or {}) if str(k).startswith("healthy_p")]
        return names[0] if names else DEFAULT_HEALTHY_POINT

    @property
    def operating_points(self) -> tuple[str, str]:
        return (self.healthy_point, "youden")

    def threshold(self, level: str, operating_point: str | None = None) -> float | None:
        """A threshold from evaluation.json, or None when it is missing or not a number."""
        operating_point = operating_point or self.healthy_point
        value = ((self.info.get("thresholds") or {}).get(operating_point) or {}).get(level)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def map_path(self, entry: VolumeEntry, kind: str) -> Path:
        """The volume's map of ``kind`` (anomaly or retina) in the scores folder."""
        return ScoresFolder(self.scores_dir).map_file(entry.safe_id, kind)

    def patch_table_path(self, entry: VolumeEntry) -> Path:
        return ScoresFolder(self.scores_dir).patch_file(entry.safe_id)


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable CSV ({exc})") from exc
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}")
    return table


def _numbers(path: Path, column: pd.Series) -> np.ndarray:
    """A numeric column; empty cells become NaN, any other non-number is an error."""
    text = column.str.strip()
    values = pd.to_numeric(text.replace("", "nan"), errors="coerce")
    bad = values.isna() & ~text.str.lower().isin(["", "nan"])
    if bad.any():
        raise InputError(path, f"column '{column.name}' holds '{text[bad].iloc[0]}', not a number")
    return values.to_numpy(dtype=float)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _pointer(eval_dir: Path, info: dict[str, Any], key: str) -> Path | None:
    value = info.get(key)
    return _resolve(eval_dir, str(value)) if value else None


def _manifest_facts(manifest: Path | None) -> dict[str, dict[str, str]]:
    """Allow-listed manifest columns per volume id; empty when the manifest is not at hand."""
    if manifest is None or not manifest.is_file():
        return {}
    table = _read_csv(manifest, ("volume_id",))
    shown = [c for c in SHOWN_MANIFEST_COLUMNS if c in table.columns]
    return {row["volume_id"].strip(): {c: row[c].strip() for c in shown}
            for row in table.to_dict("records")}


def _annotation_table(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    from octanogan.io.manifest import load_annotations

    return load_annotations(path)


def _markers(eval_path: Path, raw: Any) -> dict[int, str]:
    try:
        markers = {int(k): str(v) for k, v in (raw or {}).items()}
    except (AttributeError, ValueError) as exc:
        raise InputError(eval_path, f"'markers' must map label values to names ({exc})") from exc
    return dict(sorted(markers.items()))


def _volumes(scores_dir: Path, annotations: dict[str, str],
             facts: dict[str, dict[str, str]]) -> list[VolumeEntry]:
    path = scores_dir / VOLUMES
    table = read_table(path, VOLUME_COLUMNS).astype({c: str for c in ("label", "split")})
    scores = table["score"].to_numpy(dtype=float)
    n_patches, failing_qc = (_numbers(path, table[c].astype(str)) if c in table.columns
                             else np.zeros(len(table)) for c in ("n_patches", "bscans_failing_qc"))
    entries = []
    for i, row in enumerate(table.to_dict("records")):
        if not _SAFE_FILE_STEM.fullmatch(row["safe_id"]):
            raise InputError(path, f"row {i + 1}: safe_id '{row['safe_id']}' is not a plain file name")
        stored = row.get("annotation_path", "")
        annotation = resolve(scores_dir, stored) if stored else annotations.get(row["volume_id"])
        entries.append(VolumeEntry(
            volume_id=row["volume_id"], safe_id=row["safe_id"], label=row["label"],
            split=row["split"], path=resolve(scores_dir, row["path"]),
            annotation_path=Path(annotation) if annotation else None,
            score=float(scores[i]),
            n_patches=int(n_patches[i]) if math.isfinite(n_patches[i]) else 0,
            bscans_failing_qc=int(failing_qc[i]) if math.isfinite(failing_qc[i]) else 0,
            **facts.get(row["volume_id"], {}),
        ))
    return sorted(entries, key=lambda e: (-e.score if math.isfinite(e.score) else math.inf,
                                          e.volume_id))


def _bscan_scores(scores_dir: Path, volumes: list[VolumeEntry]
                  ) -> tuple[dict[str, np.ndarray], dict[str, dict[int, str]]]:
    """B-scan scores per volume (NaN where none) and the QC failures of its scored B-scans."""
    path = scores_dir / BSCANS
    table = read_table(path, ("volume_id", "bscan", "score"))
    bscans = _numbers(path, table["bscan"].astype(str)).astype(int)
    scores = table["score"].to_numpy(dtype=float)
    reasons = table["qc_reasons"].astype(str).to_numpy() if "qc_reasons" in table.columns else None
    result: dict[str, np.ndarray] = {}
    failing: dict[str, dict[int, str]] = {}
    for volume_id, rows in table.groupby("volume_id").indices.items():
        values = np.full(bscans[rows].max() + 1, np.nan)
        values[bscans[rows]] = scores[rows]
        result[volume_id] = values
        if reasons is not None:
            failing[volume_id] = {int(bscans[r]): str(reasons[r]) for r in rows if reasons[r]}
    return ({v.volume_id: result.get(v.volume_id, np.zeros(0)) for v in volumes},
            {v.volume_id: failing.get(v.volume_id, {}) for v in volumes})


def load_evaluation(eval_dir: str | Path) -> Evaluation:
    """Load an evaluation folder (evaluation.json, metrics.csv, curves.json) or a prediction
    folder (prediction.json: thresholds, no metrics), and the scores they point to."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise InputError(eval_dir, "evaluation folder not found")
    if (eval_dir / prediction_layout.RECORD).is_file():  # (the marker comes last, after the report)
        return _load(eval_dir, eval_dir / prediction_layout.RECORD, evaluated=False)
    return _load(eval_dir, eval_dir / layout.EVALUATION, evaluated=True)


def _load(eval_dir: Path, eval_path: Path, evaluated: bool) -> Evaluation:
    info = read_json(eval_path)
    scores_dir = _pointer(eval_dir, info, "scores_dir")
    if scores_dir is None:
        raise InputError(eval_path, "names no 'scores_dir'")
    if not scores_dir.is_dir():
        raise InputError(scores_dir, "scores folder (from evaluation.json) not found")
    manifest = _pointer(eval_dir, info, "manifest")
    volumes = _volumes(scores_dir, _annotation_table(_pointer(eval_dir, info, "annotations")),
                       _manifest_facts(manifest))
    metrics = pd.DataFrame(columns=list(METRIC_COLUMNS))  # a prediction evaluates nothing
    if evaluated:
        metrics = _read_csv(eval_dir / layout.METRICS_CSV, METRIC_COLUMNS)
        for column in ("value", "ci_low", "ci_high", "n_pos", "n_neg"):
            if column in metrics.columns:
                metrics[column] = _numbers(eval_dir / layout.METRICS_CSV, metrics[column])
    curves_path = eval_dir / layout.CURVES
    curves = read_json(curves_path) if curves_path.exists() else {}
    bscan_scores, bscan_qc = _bscan_scores(scores_dir, volumes)
    return Evaluation(
        eval_dir=eval_dir, info=info, scores_dir=scores_dir,
        markers=_markers(eval_path, info.get("markers")), metrics=metrics,
        curves=curves if isinstance(curves, dict) else {}, volumes=volumes,
        bscan_scores=bscan_scores, bscan_qc=bscan_qc,
    )
