"""``octanogan evaluate``: metrics of a SCORES folder against labels and annotations.

Reads the scores folder, the manifest and the annotations; writes the EVAL folder of
docs/formats.md (evaluation.json, metrics.json, metrics.csv, curves.json, figures/).
Definitions and choices: docs/evaluation.md.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan import __version__
from octanogan.errors import OctanoganError
from octanogan.evaluation.binning import bin_width
from octanogan.evaluation.bootstrap import resample_weights
from octanogan.evaluation.config import EvaluationConfig
from octanogan.evaluation.curves import table_curves
from octanogan.evaluation.figures import plot_curves, plot_score_distribution
from octanogan.evaluation.levels import (
    LEVELS,
    POOLED,
    LevelTables,
    MarkerCodes,
    VolumeEvidence,
    build_tables,
    healthy_thresholds,
    read_evidence,
)
from octanogan.evaluation.metrics import youden_bin
from octanogan.evaluation.rows import ROW_COLUMNS, metric_rows
from octanogan.fsutil import atomic_path, atomic_write_json, relative_path
from octanogan.outputs import evaluation as layout
from octanogan.outputs.scores import ScoreFiles
from octanogan.provenance import now

FORMAT_VERSION = 1


def _annotation(row: Any, annotations: dict[str, str]) -> str | None:
    """The annotation of a manifest row: the annotations table first, then the manifest."""
    return annotations.get(row.volume_id) or getattr(row, "annotation_path", "") or None


def _threshold_volumes(manifest: pd.DataFrame,
                       files: ScoreFiles) -> tuple[pd.DataFrame, str | None, list[str]]:
    """Healthy scored volumes of ``val`` (else ``train``) that thresholds come from."""
    warnings = []
    for split in ("val", "train"):
        healthy = manifest[(manifest["split"] == split) & (manifest["label"] == "healthy")]
        unscored = files.missing(healthy["volume_id"])
        if unscored:
            warnings.append(f"{len(unscored)} healthy {split} volume(s) have no scores and do not "
                            f"set thresholds: {unscored[:5]}")
        scored = healthy[~healthy["volume_id"].isin(unscored)]
        if len(scored):
            if split == "train":
                warnings.append("no scored healthy val volumes: healthy thresholds come from "
                                "healthy TRAIN volumes (the model has seen them: optimistic)")
            return scored, split, warnings
    warnings.append("no scored healthy val or train volumes: healthy-threshold operating points "
                    "are omitted")
    return manifest.iloc[:0], None, warnings


def _recompute_fraction(files: ScoreFiles, top_fraction: float | None) -> float | None:
    """The top fraction to recompute B-scan/volume scores with, or None to use the tables."""
    written = files.settings.get("top_fraction")
    if top_fraction is None or written is None or math.isclose(float(written), top_fraction):
        return None
    return top_fraction


def _youden_thresholds(tables: LevelTables) -> dict[str, float]:
    """Per level, the score maximising TPR - FPR on the pooled table of the evaluated set."""
    thresholds = {}
    for level, by_marker in tables.tables.items():
        pooled = by_marker[POOLED]
        if pooled.n_pos and pooled.n_neg:
            counts = pooled.point()
            thresholds[level] = float(counts.grid[youden_bin(counts.totals())])
    return thresholds


def pointer(path: Path, folder: Path) -> str:
    """How evaluation.json names a path: relative to the evaluation folder."""
    return relative_path(path, folder)


def _record(out_dir: Path, files: ScoreFiles, markers: dict[int, str], config: EvaluationConfig,
            provenance: dict[str, Any], thresholds: dict[str, dict[str, float]],
            reference: pd.DataFrame, reference_split: str | None, evaluated: list[VolumeEvidence],
            codes: MarkerCodes, exponent: int, warnings: list[str]) -> dict[str, Any]:
    """The contents of evaluation.json."""
    outside = np.sum([e.outside_retina for e in evaluated if e.outside_retina is not None], axis=0)
    return {
        **provenance,
        "format_version": FORMAT_VERSION,
        "date": now(),
        "octanogan_version": __version__,
        "scores_dir": pointer(files.root, out_dir),
        "markers": {str(v): name for v, name in sorted(markers.items())},
        "thresholds": thresholds,
        "threshold_volumes": {"split": reference_split, "volume_ids": list(reference["volume_id"])},
        "evaluated_volumes": {
            "split": "test",
            "volume_ids": [e.volume_id for e in evaluated],
            "healthy": sum(e.label == "healthy" for e in evaluated),
            "diseased": sum(e.label == "diseased" for e in evaluated),
            "without_annotation": [e.volume_id for e in evaluated if not e.has_truth],
        },
        "voxel_grid": {"n_bins": config.voxel_bins, "upper": 2.0**exponent,
                       "bin_width": bin_width(exponent, config.voxel_bins)},
        "annotated_voxels_outside_retina": (
            {name: int(outside[c]) for c, name in enumerate(codes.names, start=1)}
            if np.ndim(outside) else {}),
        "settings": dataclasses.asdict(config),
        "scoring": files.settings,
        "warnings": warnings,
        "files": {"metrics": layout.METRICS_JSON, "metrics_csv": layout.METRICS_CSV,
                  "curves": layout.CURVES, "figures": layout.FIGURES},
    }


def _write_figures(out_dir: Path, curves: dict[str, dict[str, dict[str, Any]]],
                   evaluated: list[VolumeEvidence], thresholds: dict[str, dict[str, float]]) -> None:
    figures = out_dir / layout.FIGURES
    for kind, by_level in curves.items():
        for level, by_marker in by_level.items():
            if by_marker:
                plot_curves(by_marker, kind, level, figures / f"{kind}_{level}.png")
    by_label = {label: [e for e in evaluated if e.label == label] for label in ("healthy", "diseased")}
    plot_score_distribution(
        {label: np.array([e.score for e in group]) for label, group in by_label.items()},
        {label: np.concatenate([e.patch_scores for e in group] or [np.zeros(0)])
         for label, group in by_label.items()},
        thresholds, figures / "score_distribution.png")


def evaluate_scores(scores_dir: Path, manifest: pd.DataFrame, annotations: dict[str, str],
                    markers: dict[int, str], out_dir: Path, config: EvaluationConfig,
                    provenance: dict[str, Any], top_fraction: float | None = None) -> pd.DataFrame:
    """Evaluate the test volumes of ``manifest`` from their scores; write the EVAL files.

    B-scan and volume scores come from the scores tables, or are recomputed from the patch tables
    when ``top_fraction`` (the score section's setting, its one owner) differs from the one the
    scores folder was made with.

    Thresholds come from healthy val volumes (healthy train as a recorded fallback); the Youden
    point is chosen on the evaluated set. Returns the metric rows (columns of docs/formats.md).
    """
    out_dir = Path(out_dir)
    files = ScoreFiles(scores_dir)
    codes = MarkerCodes(markers)
    test = manifest[manifest["split"] == "test"]
    if test.empty:
        raise OctanoganError("the manifest has no test volumes to evaluate")
    files.require(test["volume_id"], "test")
    reference, reference_split, warnings = _threshold_volumes(manifest, files)
    fraction = _recompute_fraction(files, top_fraction)

    evaluated = [read_evidence(files, row.volume_id, row.label, _annotation(row, annotations),
                               codes, config.voxel_bins, top_fraction=fraction)
                 for row in test.itertuples(index=False)]
    healthy = [read_evidence(files, row.volume_id, row.label, None, codes, config.voxel_bins,
                             use_annotation=False, top_fraction=fraction)
               for row in reference.itertuples(index=False)]
    exponent = max((e.voxel_exponent for e in evaluated + healthy if e.voxel_hist is not None),
                   default=0)
    tables = build_tables(evaluated, codes, config.voxel_bins, exponent)

    thresholds: dict[str, dict[str, float]] = {}
    if healthy:
        thresholds[f"healthy_p{config.healthy_percentile:g}"] = healthy_thresholds(
            healthy, config.healthy_percentile, config.voxel_bins, exponent)
    thresholds["youden"] = _youden_thresholds(tables)

    weights = resample_weights(len(evaluated), config.n_bootstrap, config.bootstrap_seed)
    rows: list[dict[str, object]] = []
    curves: dict[str, dict[str, dict[str, Any]]] = {"roc": {}, "pr": {}}
    for level in LEVELS:
        curves["roc"][level], curves["pr"][level] = {}, {}
        level_thresholds = {name: t[level] for name, t in thresholds.items() if level in t}
        for marker, table in tables.tables[level].items():
            regions = tables.regions.get(marker) if level == "voxel" else None
            table_rows = metric_rows(level, marker, table, level_thresholds, weights, regions)
            if table_rows:
                rows.extend(table_rows)
                curves["roc"][level][marker], curves["pr"][level][marker] = table_curves(
                    table.point())

    record = _record(out_dir, files, markers, config, provenance, thresholds, reference, reference_split,
                     evaluated, codes, exponent, warnings)
    record["top_fraction"] = fraction if fraction is not None else files.settings.get("top_fraction")
    metrics = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    atomic_write_json(out_dir / layout.EVALUATION, record)
    atomic_write_json(out_dir / layout.METRICS_JSON, {"rows": rows, **record})
    with atomic_path(out_dir / layout.METRICS_CSV) as tmp:
        metrics.to_csv(tmp, index=False)
    atomic_write_json(out_dir / layout.CURVES, curves)
    _write_figures(out_dir, curves, evaluated, thresholds)
    return metrics
