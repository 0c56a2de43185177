"""What the cohort page shows: provenance, metric tables, curves, distributions, ranking."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from octanogan.report import charts
from octanogan.report.images import marker_colour
from octanogan.report.inputs import LEVELS, Evaluation, VolumeEntry

LEVEL_TITLES = {"volume": "Volume", "bscan": "B-scan", "patch": "Patch", "voxel": "Voxel"}
OPERATING_POINT_TITLES = {"": "Threshold-free", "youden": "At the Youden point"}


def operating_point_title(point: str) -> str:
    """``healthy_p99`` -> "At the healthy 99th percentile"."""
    if point.startswith("healthy_p"):
        return f"At the healthy {point.removeprefix('healthy_p')}th percentile"
    return OPERATING_POINT_TITLES.get(point, point)
METRIC_TITLES = {"auroc": "AUROC", "ap": "AP", "pro": "PRO", "sensitivity": "Sensitivity",
                 "specificity": "Specificity", "precision": "Precision", "recall": "Recall",
                 "dice": "Dice"}
SCORING_KEYS = ("steps", "hybrid_steps", "lam", "norm", "patch_size", "stride", "anomaly_map", "smooth_sigma")
#: Settings that only mean something in some inversion modes.
MODE_ONLY_KEYS = {"steps": "iterative", "hybrid_steps": "hybrid"}
LONG_VALUE = 120


@dataclass(frozen=True)
class Cell:
    value: str
    ci: str = ""


@dataclass
class MetricTable:
    """One level: markers as rows, metrics (grouped by operating point) as columns."""

    level: str
    title: str
    groups: list[tuple[str, list[str]]]
    rows: list[tuple[str, str, list[Cell]]]
    charts: list[charts.Chart] = field(default_factory=list)


@dataclass(frozen=True)
class RankedVolume:
    rank: int
    entry: VolumeEntry
    href: str
    flagged: bool | None


def fmt(value: Any, digits: int = 2) -> str:
    """A number for display; '–' when missing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{value:.{digits}f}" if math.isfinite(value) else "–"


def fmt_score(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "–"


def display_value(value: Any) -> str:
    """A setting as short text; file paths show their last component only."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return PurePath(value.replace("\\", "/")).name or value
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 8 or any(isinstance(v, (dict, list)) for v in value):
            return f"{len(value)} items"
        return ", ".join(display_value(v) for v in value)
    text = str(value)
    return text if len(text) <= LONG_VALUE else text[:LONG_VALUE - 1] + "…"


def flatten(settings: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``(dotted.key, text)`` pairs."""
    if not isinstance(settings, dict):
        return [(prefix, display_value(settings))] if prefix else []
    pairs: list[tuple[str, str]] = []
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        pairs += flatten(value, name) if isinstance(value, dict) else [(name, display_value(value))]
    return pairs


def _hashes(info: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for section in ("run", "scoring", "settings"):
        for key, value in flatten(info.get(section) or {}, section):
            leaf = key.rsplit(".", 1)[-1]
            if ("hash" in leaf or "sha256" in leaf) and value:
                found.append((key, value))
    return found


def provenance(ev: Evaluation) -> dict[str, Any]:
    """What was run: model run, scoring mode and settings, hashes, versions, date."""
    info = ev.info
    run = info.get("run") or {}
    scoring = info.get("scoring") or {}
    versions = {**(scoring.get("versions") or {}), **(run.get("versions") or {})}
    settings = {**scoring, **(scoring.get("inversion") or {})}  # inversion settings are nested
    mode = settings.get("mode", "–")
    shown = [k for k in SCORING_KEYS if k in settings and MODE_ONLY_KEYS.get(k, mode) == mode]
    summary = [
        ("Model run", display_value(run.get("run_dir", "")) or "–"),
        ("Scoring mode", display_value(mode)),
        ("Scoring settings", ", ".join(f"{k} {display_value(settings[k])}" for k in shown) or "–"),
        ("Volumes", f"{len(ev.volumes)} scored"),
        ("Predicted" if info.get("kind") == "prediction" else "Evaluated", str(info.get("date", "–"))),
    ]
    return {
        "summary": summary,
        "hashes": _hashes(info),
        "versions": [(str(k), display_value(v)) for k, v in sorted(versions.items())],
        "details": [("Evaluation settings", flatten(info.get("settings") or {})),
                    ("Scoring settings", flatten({k: v for k, v in scoring.items()
                                                  if k != "versions"})),
                    ("Model configuration", flatten(run.get("config") or {}))],
    }


def _marker_order(ev: Evaluation, present: list[str]) -> list[str]:
    known = list(ev.markers.values())
    return (["pooled"] if "pooled" in present else []) + \
        [m for m in known if m in present] + sorted(m for m in present if m not in known + ["pooled"])


def marker_colours(ev: Evaluation) -> dict[str, str]:
    colours = {name: marker_colour(i) for i, name in enumerate(ev.markers.values())}
    return {**colours, "pooled": charts.POOLED_COLOUR}


def _columns(rows: pd.DataFrame, operating_points: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    groups = []
    for point in ("", *operating_points):
        metrics = set(rows.loc[rows["operating_point"] == point, "metric"])
        if point and "sensitivity" in metrics:
            metrics.discard("recall")  # recall is sensitivity by another name
        ordered = [m for m in METRIC_TITLES if m in metrics] + sorted(metrics - set(METRIC_TITLES))
        if ordered:
            groups.append((point, ordered))
    return groups


def _cell(found: pd.DataFrame) -> Cell:
    if found.empty:
        return Cell("–")
    row = found.iloc[0]
    ci = ""
    if math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"]):
        ci = f"({fmt(row['ci_low'])}–{fmt(row['ci_high'])})"
    return Cell(fmt(row["value"]), ci)


def _counts(rows: pd.DataFrame) -> str:
    if "n_pos" not in rows.columns or rows.empty:
        return ""
    pos, neg = rows["n_pos"].max(), rows["n_neg"].max() if "n_neg" in rows.columns else math.nan
    return f"{fmt(pos, 0)} / {fmt(neg, 0)}"


def metric_tables(ev: Evaluation) -> list[MetricTable]:
    """One table per level present in metrics.csv, with that level's ROC and PR curves."""
    metrics = ev.metrics
    colours = marker_colours(ev)
    tables = []
    levels = [lv for lv in LEVELS if lv in set(metrics["level"])]
    levels += sorted(set(metrics["level"]) - set(levels))
    for level in levels:
        at_level = metrics[metrics["level"] == level]
        groups = _columns(at_level, ev.operating_points)
        rows = []
        for marker in _marker_order(ev, list(dict.fromkeys(at_level["marker"]))):
            mine = at_level[at_level["marker"] == marker]
            cells = [_cell(mine[(mine["operating_point"] == point) & (mine["metric"] == metric)])
                     for point, metric_names in groups for metric in metric_names]
            rows.append((marker, _counts(mine), cells))
        table = MetricTable(level, LEVEL_TITLES.get(level, level.title()),
                            [(operating_point_title(p), [METRIC_TITLES.get(m, m) for m in ms])
                             for p, ms in groups], rows)
        for kind in ("roc", "pr"):
            curves = (ev.curves.get(kind) or {}).get(level) or {}
            if curves:
                ordered = {m: curves[m] for m in _marker_order(ev, list(curves))}
                table.charts.append(charts.curve_chart(kind, ordered, colours))
        tables.append(table)
    return tables


def threshold_source(ev: Evaluation) -> str | None:
    """Where the healthy-percentile thresholds come from, in words; None when there are none."""
    if ev.threshold("volume") is None and ev.threshold("voxel") is None:
        return None
    percentile = ev.healthy_point.removeprefix("healthy_p")
    calibration = ev.info.get("calibration")
    if isinstance(calibration, dict):
        healthy = calibration.get("healthy") or {}
        ids = [str(v) for v in healthy.get("volume_ids") or []]
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        return (f"The run's calibration: the healthy {percentile}th percentile of "
                f"{healthy.get('n_volumes', '?')} healthy {healthy.get('split', 'val')} volume(s)"
                + (f" ({shown})" if shown else "")
                + f", calibrated {calibration.get('date', '?')} by {healthy.get('made_by', '?')}, "
                f"with the scoring settings shown above. Model: {display_value(_run_dir(ev))}.")
    reference = ev.info.get("threshold_volumes") or {}
    return (f"The healthy {percentile}th percentile of {len(reference.get('volume_ids') or [])} "
            f"healthy {reference.get('split') or '?'} volume(s) of this evaluation; the Youden "
            "point is chosen on the test set.")


def _run_dir(ev: Evaluation) -> str:
    return str((ev.info.get("run") or {}).get("run_dir", "–"))


def ranking(ev: Evaluation, page_href: dict[str, str]) -> list[RankedVolume]:
    """Volumes by anomaly score, highest first, flagged against the volume threshold."""
    threshold = ev.threshold("volume")
    return [RankedVolume(i + 1, entry, page_href[entry.volume_id],
                         None if threshold is None or not math.isfinite(entry.score)
                         else entry.score > threshold)
            for i, entry in enumerate(ev.volumes)]


def _threshold_marks(ev: Evaluation, level: str) -> dict[str, float | None]:
    return {ev.healthy_point.replace("_", " "): ev.threshold(level),
            "Youden": ev.threshold(level, "youden")}


def distributions(ev: Evaluation, page_href: dict[str, str]) -> list[charts.Chart]:
    """Healthy vs diseased scores with thresholds: volumes (dots) and B-scans (histogram)."""
    if not ev.volumes:
        return []
    groups: dict[str, list[tuple[float, str, str]]] = {}
    bscans: dict[str, list[np.ndarray]] = {}
    for entry in ev.volumes:
        groups.setdefault(entry.label, []).append(
            (entry.score, entry.volume_id, page_href[entry.volume_id]))
        bscans.setdefault(entry.label, []).append(ev.bscan_scores[entry.volume_id])
    result = [charts.strip_chart(groups, _threshold_marks(ev, "volume"))]
    stacked = {k: np.concatenate(bscans[k]) for k in charts.label_order(bscans)}
    if any(np.isfinite(v).any() for v in stacked.values()):
        result.append(charts.histogram_chart(stacked, _threshold_marks(ev, "bscan")))
    return result
