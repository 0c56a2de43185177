"""Stage wiring shared by the CLI: ``evaluate`` (score → metrics → report) and ``run`` (YAML).

A pipeline YAML (see ``pipelines/``) has one section per stage::

    data:     {phantom: {healthy: 8, diseased: 4, shape: [16, 248, 256], seed: 0}}
              or {manifest: path, annotations: path, markers: path}
    extract:  ExtractConfig fields (patch_size, stride, ...)
    train:    TrainConfig fields
    score:    mode, steps, hybrid_steps, lam, norm, lr, stride, batch_size, weighting, seed
    evaluate: n_bootstrap, seed

``octanogan run PIPELINE --out DIR`` runs them in order into DIR/{data,patches,run,eval};
a stage whose output is complete is reused, so an interrupted pipeline resumes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from octanogan.errors import InputError


def _provenance(run_dir: Path) -> dict[str, Any]:
    run_json = Path(run_dir) / "run.json"
    info: dict[str, Any] = {"run_dir": str(Path(run_dir).resolve())}
    if run_json.is_file():
        info.update(json.loads(run_json.read_text(encoding="utf-8")))
    return info


def evaluate_stage(run_dir: Path, manifest_path: Path, manifest: pd.DataFrame, scores_dir: Path,
                   out: Path, annotations: Path | None, markers: Path | None, n_bootstrap: int,
                   seed: int, progress: Callable | None = None) -> Path:
    """Metrics and report for a scored manifest; returns the report's index.html."""
    from octanogan.evaluation import EvaluationConfig, evaluate_scores
    from octanogan.io.manifest import load_annotations, load_markers
    from octanogan.report import render_report

    annotation_map = load_annotations(annotations) if annotations else {}
    if markers is None and annotations is not None:
        markers = Path(annotations).parent / "markers.json"
    if markers is None or not Path(markers).is_file():
        if annotation_map:
            raise InputError(markers or Path(annotations).parent / "markers.json",
                             "marker table not found; pass --markers")
        marker_map: dict[int, str] = {}
    else:
        marker_map = load_markers(markers)
    provenance = {"run": _provenance(run_dir), "manifest": str(Path(manifest_path).resolve()),
                  "annotations": str(Path(annotations).resolve()) if annotations else None}
    config = EvaluationConfig(n_bootstrap=n_bootstrap, seed=seed)
    evaluate_scores(Path(scores_dir), manifest, annotation_map, marker_map, Path(out), config, provenance)
    record = json.loads((Path(out) / "evaluation.json").read_text(encoding="utf-8"))
    for warning in record.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    report_progress = (lambda items: progress(items, desc="report", unit="vol")) if progress else None
    return render_report(Path(out), progress=report_progress)


SECTIONS = {"data", "extract", "train", "score", "evaluate", "seed", "description"}
INVERSION_KEYS = {"mode", "steps", "hybrid_steps", "lam", "norm", "lr", "seed"}


def run_pipeline(pipeline: Path, out: Path, device: str, echo: Callable[[str], None],
                 progress: Callable, on_train_iteration: Callable | None = None) -> Path:
    """Run every stage of a pipeline YAML into ``out``; returns the report's index.html."""
    from octanogan.config import load_yaml

    spec = load_yaml(pipeline)
    unknown = set(spec) - SECTIONS
    if unknown:
        raise InputError(pipeline, f"unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
    out = Path(out)
    manifest_path, annotations, markers = _data_stage(spec.get("data", {}), pipeline, out, echo)
    store = _extract_stage(spec.get("extract", {}), f"{pipeline} [extract]", manifest_path, out, echo,
                           progress)
    run_dir = _train_stage(spec.get("train", {}), f"{pipeline} [train]", store, out, device, echo,
                           on_train_iteration)
    manifest = _score_stage(spec.get("score", {}), f"{pipeline} [score]", run_dir, manifest_path, out,
                            device, echo, progress)
    evaluate_spec = spec.get("evaluate", {})
    eval_dir = out / "eval"
    index = evaluate_stage(run_dir, manifest_path, manifest, eval_dir / "scores", eval_dir,
                           annotations, markers, int(evaluate_spec.get("n_bootstrap", 1000)),
                           int(evaluate_spec.get("seed", 0)), progress)
    _print_headline(eval_dir, echo)
    return index


def _extract_stage(settings: dict[str, Any], source: str, manifest_path: Path, out: Path,
                   echo: Callable[[str], None], progress: Callable) -> Path:
    from octanogan.config import from_dict
    from octanogan.patches.extract import ExtractConfig, extract_store

    store = out / "patches"
    if (store / "settings.json").is_file():
        echo(f"[extract] reusing {store}")
        return store
    summary = extract_store(manifest_path, store, from_dict(ExtractConfig, settings, source), progress)
    echo(f"[extract] {summary.n_patches} patches from {summary.n_volumes} volumes "
         f"in {summary.seconds:.1f} s")
    return store


def _train_stage(settings: dict[str, Any], source: str, store: Path, out: Path, device: str,
                 echo: Callable[[str], None], on_iteration: Callable | None) -> Path:
    from octanogan.config import from_dict
    from octanogan.training import TrainConfig, train

    run_dir = out / "run"
    if (run_dir / "run.json").is_file() and (run_dir / "generator.pt").is_file() \
            and json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("finished"):
        echo(f"[train] reusing {run_dir}")
        return run_dir
    config = from_dict(TrainConfig, {"device": device, **settings}, source)
    summary = train(store, run_dir, config, resume=(run_dir / "checkpoint.pt").is_file(),
                    on_iteration=on_iteration)
    echo(f"[train] {summary.gan_iterations} GAN + {summary.encoder_iterations} encoder iterations "
         f"in {summary.seconds:.0f} s -> {run_dir}")
    return run_dir


def _score_stage(settings: dict[str, Any], source: str, run_dir: Path, manifest_path: Path, out: Path,
                 device: str, echo: Callable[[str], None], progress: Callable) -> pd.DataFrame:
    from octanogan.config import from_dict
    from octanogan.io.manifest import load_manifest
    from octanogan.scoring.inversion import InversionConfig
    from octanogan.scoring.score import ScoreConfig, score_manifest

    inversion = from_dict(InversionConfig, {k: v for k, v in settings.items() if k in INVERSION_KEYS},
                          source)
    config = from_dict(ScoreConfig, {k: v for k, v in settings.items() if k not in INVERSION_KEYS},
                       source)
    config.inversion = inversion
    manifest = load_manifest(manifest_path)
    summary = score_manifest(run_dir, manifest, out / "eval" / "scores", config, device,
                             progress=lambda rows: progress(rows, desc="score", unit="vol"))
    echo(f"[score] {len(summary.scored)} volumes ({summary.n_patches} patches, "
         f"{summary.seconds:.1f} s, mode {inversion.mode}); {len(summary.skipped)} reused")
    return manifest


def _data_stage(data: dict[str, Any], pipeline: Path, out: Path,
                echo: Callable[[str], None]) -> tuple[Path, Path | None, Path | None]:
    if "phantom" in data:
        from octanogan.phantom import make_cohort

        options = dict(data["phantom"])
        folder = out / "data"
        if (folder / "manifest.csv").is_file():
            echo(f"[phantom] reusing {folder}")
        else:
            make_cohort(folder, n_healthy=int(options.get("healthy", 8)),
                        n_diseased=int(options.get("diseased", 4)),
                        shape=tuple(options.get("shape", (49, 496, 512))),
                        seed=int(options.get("seed", 0)))
            echo(f"[phantom] cohort in {folder}")
        return folder / "manifest.csv", folder / "annotations.csv", folder / "markers.json"
    if "manifest" not in data:
        raise InputError(pipeline, "section 'data' needs 'phantom' or 'manifest'")
    base = Path(pipeline).parent

    def resolve(key: str) -> Path | None:
        return (base / data[key]).resolve() if data.get(key) else None

    return resolve("manifest"), resolve("annotations"), resolve("markers")  # type: ignore[return-value]


def _print_headline(eval_dir: Path, echo: Callable[[str], None]) -> None:
    metrics = pd.read_csv(eval_dir / "metrics.csv")
    pooled = metrics[(metrics["marker"] == "pooled") & (metrics["metric"].isin(["auroc", "ap"]))
                     & (metrics["operating_point"].fillna("") == "")]
    for row in pooled.itertuples(index=False):
        echo(f"  {row.level:>6} {row.metric:<5} {row.value:.3f} "
             f"(95% CI {row.ci_low:.3f}-{row.ci_high:.3f})")
    sys.stdout.flush()
