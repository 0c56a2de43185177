"""Stage wiring shared by the CLI: ``evaluate`` (score → metrics → report) and ``run`` (YAML).

A pipeline YAML (see ``pipelines/``) has one section per stage::

    data:     {phantom: {healthy: 8, diseased: 4, shape: [16, 248, 256], seed: 0}}
              or {manifest: path, annotations: path, markers: path}
    extract:  ExtractConfig fields (patch_size, stride, ...)
    train:    TrainConfig fields
    score:    InversionConfig fields (mode, steps, ...) and ScoreConfig fields (stride, ...)
    evaluate: EvaluationConfig fields (n_bootstrap, seed, ...)

Every section is validated before any stage runs. ``octanogan run PIPELINE --out DIR`` runs the
stages in order into DIR/{data,patches,run,eval}; a stage whose output is complete is reused, so
an interrupted pipeline resumes, and DIR/pipeline.yaml records the settings it was made with.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from octanogan.config import from_dict, load_sections, load_yaml, to_dict
from octanogan.errors import ConfigError, InputError, OctanoganError
from octanogan.io.manifest import MANIFEST
from octanogan.outputs import evaluation as evaluation_layout
from octanogan.outputs import run as run_layout
from octanogan.outputs.folder import claim_output, write_marker
from octanogan.phantom.config import CohortConfig
from octanogan.scoring.config import ScoreConfig, score_config

DATA_KEYS = ("phantom", "manifest", "annotations", "markers")


@dataclasses.dataclass
class DataSpec:
    """The ``data`` section: a phantom, or a manifest with optional annotations and markers."""

    phantom: CohortConfig | None = None
    manifest: Path | None = None
    annotations: Path | None = None
    markers: Path | None = None


@dataclasses.dataclass
class Pipeline:
    """A validated pipeline YAML."""

    data: DataSpec
    extract: Any
    train: Any
    score: ScoreConfig
    evaluate: Any

    def record(self) -> dict[str, Any]:
        """What a pipeline output folder was made with (compared on reruns); where it runs is
        not part of it (a run may move from CPU to GPU)."""
        return _without_device(json.loads(json.dumps(to_dict(self), default=str)))


def _without_device(record: dict[str, Any]) -> dict[str, Any]:
    train = record.get("train")
    if isinstance(train, dict):
        record = {**record, "train": {k: v for k, v in train.items() if k != "device"}}
    return record


def _data_spec(data: Any, pipeline: Path) -> DataSpec:
    source = f"{pipeline} [data]"
    if not isinstance(data, dict):
        raise ConfigError("data", "must be a mapping", pipeline)
    unknown = sorted(set(data) - set(DATA_KEYS))
    if unknown:
        raise ConfigError(", ".join(map(str, unknown)), f"is unknown; known: {list(DATA_KEYS)}", source)
    if "phantom" in data:
        if set(data) != {"phantom"}:
            raise ConfigError("phantom", "excludes 'manifest', 'annotations' and 'markers'", source)
        return DataSpec(phantom=from_dict(CohortConfig, data["phantom"] or {}, f"{pipeline} [data.phantom]"))
    if "manifest" not in data:
        raise ConfigError("data", "needs 'phantom' or 'manifest'", pipeline)
    base = Path(pipeline).parent

    def resolve(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(key, f"must be a path, got {value!r}", source)
        return Path(os.path.abspath(base / Path(value).expanduser()))

    return DataSpec(manifest=resolve("manifest"), annotations=resolve("annotations"),
                    markers=resolve("markers"))


@dataclasses.dataclass
class EvaluationSummary:
    """What ``evaluate`` and ``run`` hand back: the report's page and the warnings to show."""

    index: Path
    warnings: list[str]


def load_pipeline(path: str | Path, device: str | None = None) -> Pipeline:
    """Read and validate every section of a pipeline YAML before anything runs; ``device`` (the
    command line's) beats the YAML's ``train.device``, which beats ``auto``."""
    from octanogan.evaluation import EvaluationConfig
    from octanogan.patches.extract import ExtractConfig
    from octanogan.prediction.predict import PredictOptions
    from octanogan.training.config import TrainConfig

    path = Path(path)
    spec = load_sections(path)

    def section(name: str) -> Any:
        value = spec.get(name)
        return {} if value is None else value

    from_dict(PredictOptions, section("predict"), f"{path} [predict]")  # read by `predict --config`
    train = section("train")
    if isinstance(train, dict) and device is not None:
        train = {**train, "device": device}
    return Pipeline(
        data=_data_spec(section("data"), path),
        extract=from_dict(ExtractConfig, section("extract"), f"{path} [extract]"),
        train=from_dict(TrainConfig, train, f"{path} [train]"),
        score=score_config(section("score"), f"{path} [score]"),
        evaluate=from_dict(EvaluationConfig, section("evaluate"), f"{path} [evaluate]"),
    )


def prepare_evaluation(out: Path, scores_dir: Path, annotations: Path | None,
                       markers: Path | None) -> tuple[dict[str, str], dict[int, str]]:
    """Check the evaluation folder and read annotations and markers, before any scoring starts."""
    from octanogan.io.manifest import load_annotations, load_markers

    claim_output(out, evaluation_layout.KIND)
    inside = Path(scores_dir).resolve().parent == Path(out).resolve()
    if Path(out).resolve() in Path(scores_dir).resolve().parents and not inside:
        raise InputError(scores_dir, "a scores folder inside the evaluation folder must be a direct "
                                     "subfolder of it")
    annotation_map = load_annotations(annotations) if annotations else {}
    if markers is None and annotations is not None:
        markers = Path(annotations).parent / "markers.json"
    marker_map: dict[int, str] = {}
    if markers is not None and Path(markers).is_file():
        marker_map = load_markers(markers)
    elif annotation_map:
        raise InputError(markers or Path(annotations).parent / "markers.json",  # type: ignore[arg-type]
                         "marker table not found; pass --markers")
    if inside:  # the scores will be written inside OUT: mark it as ours before scoring starts
        Path(out).mkdir(parents=True, exist_ok=True)
        write_marker(out, evaluation_layout.KIND)
    return annotation_map, marker_map


def evaluate_stage(run_dir: Path, manifest_path: Path, manifest: pd.DataFrame, scores_dir: Path,
                   out: Path, annotations: Path | None, annotation_map: dict[str, str],
                   marker_map: dict[int, str], config: Any, progress: Callable | None = None,
                   top_fraction: float | None = None) -> EvaluationSummary:
    """Metrics and report for a scored manifest, built beside ``out`` and swapped in whole.

    A failure leaves the previous evaluation (and its report) untouched. A scores folder inside
    ``out`` is carried into the new folder with hard links. Returns the report's index.html and
    the warnings for the user (the CLI prints them; library code prints nothing).
    """
    from octanogan.evaluation import evaluate_scores
    from octanogan.fsutil import link_tree, read_json, relative_path
    from octanogan.outputs.folder import atomic_dir
    from octanogan.report.render import render_into

    out, scores_dir = Path(out), Path(scores_dir)
    inside = scores_dir.resolve().parent == out.resolve()
    provenance = {"run": run_layout.run_provenance(run_dir, out),
                  "manifest": relative_path(manifest_path, out),
                  "annotations": relative_path(annotations, out) if annotations else None}
    with atomic_dir(out, evaluation_layout.KIND) as tmp:
        used_scores = scores_dir
        if inside:
            used_scores = tmp / scores_dir.name
            link_tree(scores_dir, used_scores)
        evaluate_scores(used_scores, manifest, annotation_map, marker_map, tmp, config, provenance,
                        top_fraction)
        record = read_json(tmp / evaluation_layout.EVALUATION)
        report_progress = (lambda items: progress(items, desc="report", unit="vol")) if progress else None
        render_into(tmp, tmp / evaluation_layout.REPORT, progress=report_progress)
    warnings = list(record.get("warnings", []))
    if not _record_in_run(Path(run_dir), out, record, config):
        warnings.append(f"{Path(run_dir) / 'calibration.json'} was made by `octanogan calibrate` and "
                        "is kept; this evaluation's thresholds are in its evaluation.json only")
    return EvaluationSummary(out / evaluation_layout.REPORT / "index.html", warnings)


def _record_in_run(run_dir: Path, eval_dir: Path, record: dict[str, Any], config: Any) -> bool:
    """Keep in the run what predict and the model card need from an evaluation: the calibration
    (when thresholds came from healthy val volumes) and the headline metrics. False when the run's
    calibration was kept (one that ``calibrate`` made)."""
    from octanogan.fsutil import atomic_write_json, relative_path
    from octanogan.outputs.calibration import LAST_EVALUATION, write_calibration
    from octanogan.outputs.scores import ScoreFiles
    from octanogan.prediction.calibrate import calibration_record

    reference = record.get("threshold_volumes") or {}
    written = True
    if reference.get("split") == "val" and reference.get("volume_ids"):
        files = ScoreFiles(eval_dir / str(record["scores_dir"]))
        written = write_calibration(run_dir, calibration_record(
            files, list(reference["volume_ids"]), config,
            {"split": "val", "made_by": "evaluate", "evaluation": relative_path(eval_dir, run_dir),
             "manifest": (relative_path(eval_dir / record["manifest"], run_dir)
                          if record.get("manifest") else None)}))
    metrics = pd.read_csv(eval_dir / evaluation_layout.METRICS_CSV).fillna({"operating_point": ""})
    headline = metrics[(metrics["marker"] == "pooled") & metrics["metric"].isin(["auroc", "ap"])
                       & (metrics["operating_point"] == "")]
    evaluated = record.get("evaluated_volumes") or {}
    atomic_write_json(run_dir / LAST_EVALUATION, {
        "date": record.get("date"), "evaluation": relative_path(eval_dir, run_dir),
        "healthy": evaluated.get("healthy"), "diseased": evaluated.get("diseased"),
        "markers": record.get("markers"),
        "metrics": headline[["level", "metric", "value", "ci_low", "ci_high"]].to_dict("records"),
    })
    return written


def run_pipeline(pipeline_path: Path, out: Path, device: str | None, echo: Callable[[str], None],
                 progress: Callable, on_train_iteration: Callable | None = None) -> EvaluationSummary:
    """Run every stage of a pipeline YAML into ``out``; returns the report's page and warnings."""
    import yaml

    from octanogan.distributed import ranks_from_env
    from octanogan.fsutil import atomic_write_text

    if ranks_from_env().active:
        raise OctanoganError("run executes its stages in one process: start it without torchrun "
                             "(train, score and evaluate run under torchrun one by one; docs/scaling.md)")
    pipeline = load_pipeline(pipeline_path, device)
    device = pipeline.train.device  # training and scoring run on the same device
    out = Path(os.path.abspath(out))
    inputs = [p for p in (pipeline.data.manifest,) if p is not None]
    record = pipeline.record()
    if claim_output(out, "pipeline", inputs):
        saved = load_yaml(out / "pipeline.yaml") if (out / "pipeline.yaml").is_file() else None
        if saved is None or _without_device(saved) != record:
            raise InputError(out, "holds a pipeline run made with other settings (see its pipeline.yaml); "
                                  "choose a new --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_marker(out, "pipeline")
        atomic_write_text(out / "pipeline.yaml", yaml.safe_dump(record, sort_keys=False))
    manifest_path, annotations, markers = _data_stage(pipeline.data, out, echo)
    eval_dir = out / "eval"
    scores_dir = eval_dir / evaluation_layout.SCORES
    annotation_map, marker_map = prepare_evaluation(eval_dir, scores_dir, annotations, markers)
    store = _extract_stage(pipeline.extract, manifest_path, out, echo, progress)
    run_dir = _train_stage(pipeline.train, store, out, echo, on_train_iteration)
    manifest = _score_stage(pipeline.score, run_dir, manifest_path, scores_dir, device, echo,
                            progress)
    summary = evaluate_stage(run_dir, manifest_path, manifest, scores_dir, eval_dir, annotations,
                             annotation_map, marker_map, pipeline.evaluate, progress,
                             pipeline.score.top_fraction)
    _print_headline(eval_dir, echo)
    return summary


def _data_stage(data: DataSpec, out: Path,
                echo: Callable[[str], None]) -> tuple[Path, Path | None, Path | None]:
    if data.phantom is None:
        return data.manifest, data.annotations, data.markers  # type: ignore[return-value]
    from octanogan.phantom import ArtefactConfig, make_cohort

    folder = out / "data"
    if (folder / MANIFEST).is_file() and claim_output(folder, "cohort"):
        echo(f"[phantom] reusing {folder}")
    else:
        spec = data.phantom
        make_cohort(folder, n_healthy=spec.healthy, n_diseased=spec.diseased, shape=spec.shape,
                    seed=spec.seed, artefacts=ArtefactConfig.named(spec.artefacts), speckle=spec.speckle)
        echo(f"[phantom] cohort in {folder}")
    return folder / MANIFEST, folder / "annotations.csv", folder / "markers.json"


def _extract_stage(config: Any, manifest_path: Path, out: Path, echo: Callable[[str], None],
                   progress: Callable) -> Path:
    from octanogan.patches.extract import extract_store
    from octanogan.patches.store import is_complete_store

    store = out / "patches"
    if is_complete_store(store):
        echo(f"[extract] reusing {store}")
        return store
    summary = extract_store(manifest_path, store, config, progress)
    echo(f"[extract] {summary.n_patches} patches from {summary.n_volumes} volumes "
         f"in {summary.seconds:.1f} s")
    for line in summary.skipped_lines():
        echo(line)
    return store


def _train_stage(config: Any, store: Path, out: Path, echo: Callable[[str], None],
                 on_iteration: Callable | None) -> Path:
    from octanogan.training import train

    run_dir = out / "run"
    if run_layout.is_finished(run_dir):
        echo(f"[train] reusing {run_dir}")
        return run_dir
    summary = train(store, run_dir, config, resume=run_layout.is_resumable(run_dir),
                    on_iteration=on_iteration)
    echo(f"[train] {summary.gan_iterations} GAN + {summary.encoder_iterations} encoder iterations "
         f"in {summary.seconds:.0f} s -> {run_dir}")
    for line in summary.notices + [f"warning: {w}" for w in summary.warnings]:
        echo(f"[train] {line}")
    return run_dir


def _score_stage(config: ScoreConfig, run_dir: Path, manifest_path: Path, scores_dir: Path, device: str,
                 echo: Callable[[str], None], progress: Callable) -> pd.DataFrame:
    from octanogan.io.manifest import load_manifest
    from octanogan.scoring.score import score_manifest

    manifest = load_manifest(manifest_path)
    summary = score_manifest(run_dir, manifest, scores_dir, config, device,
                             progress=lambda rows: progress(rows, desc="score", unit="vol"))
    echo(f"[score] {len(summary.scored)} volumes ({summary.n_patches} patches, "
         f"{summary.seconds:.1f} s, mode {config.inversion.mode}); {len(summary.skipped)} reused")
    for line in summary.flagged_lines():
        echo(line)
    return manifest


def _print_headline(eval_dir: Path, echo: Callable[[str], None]) -> None:
    metrics = pd.read_csv(eval_dir / evaluation_layout.METRICS_CSV)
    pooled = metrics[(metrics["marker"] == "pooled") & (metrics["metric"].isin(["auroc", "ap"]))
                     & (metrics["operating_point"].fillna("") == "")]
    for row in pooled.itertuples(index=False):
        echo(f"  {row.level:>6} {row.metric:<5} {row.value:.3f} "
             f"(95% CI {row.ci_low:.3f}-{row.ci_high:.3f})")
