"""``octanogan calibrate``, ``predict`` and ``info``: from a trained run to a new patient's report."""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import CONFIG, config_section, handle_errors, progress, with_config
from octanogan.cli.score import (
    ANOMALY_MAP,
    BATCH,
    DEVICE,
    HYBRID_STEPS,
    LAMBDA,
    LR,
    MODE,
    NORM,
    SEED,
    SMOOTH,
    STEPS,
    STRIDE,
    WEIGHTING,
    evaluation_config_from_cli,
    score_config_from_cli,
)
from octanogan.device import DeviceName
from octanogan.evaluation.config import EvaluationConfig
from octanogan.scoring.config import AnomalyMap, Mode, Norm, Weighting

EVALUATION = EvaluationConfig()


@handle_errors
def calibrate(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run folder written by 'octanogan train'."),
    manifest: Path = typer.Argument(..., help="Manifest whose healthy val volumes calibrate."),
    percentile: float = typer.Option(EVALUATION.healthy_percentile, "--percentile",
                                     help="Healthy percentile that sets each level's threshold."),
    mode: Mode = MODE, steps: int = STEPS, hybrid_steps: int = HYBRID_STEPS, lam: float = LAMBDA,
    norm: Norm = NORM, lr: float = LR, stride: int = STRIDE, batch_size: int = BATCH,
    weighting: Weighting = WEIGHTING, smooth: float = SMOOTH, seed: int = SEED, device: DeviceName = DEVICE,
    anomaly_map: AnomalyMap = ANOMALY_MAP,
    config: Path | None = CONFIG,
) -> None:
    """Score the healthy val volumes once; store thresholds and settings in the run folder."""
    from octanogan.prediction.calibrate import calibrate_run

    # scoring options are read from ctx, over the YAML's score: and evaluate: sections
    settings = score_config_from_cli(ctx, config)
    evaluation = evaluation_config_from_cli(ctx, config, {"percentile": "healthy_percentile"})
    record = calibrate_run(run_dir, manifest, settings, evaluation, device,
                           progress=lambda rows: progress(rows, desc="calibrate", unit="vol"))
    percentile = evaluation.healthy_percentile
    levels = ", ".join(f"{k} {v:.4g}" for k, v in record["thresholds"].items())
    typer.echo(f"calibrated on {record['healthy']['n_volumes']} healthy val volume(s), "
               f"{percentile:g}th percentile: {levels} -> {Path(run_dir) / 'calibration.json'}")


@handle_errors
def predict(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run folder written by 'octanogan train'."),
    inputs: list[Path] = typer.Argument(..., help="Scans (files or folders octanogan reads), or "
                                                  "one manifest CSV; no labels needed."),
    out: Path = typer.Option(..., "--out", "-o", help="Prediction folder to write (new)."),
    keep_names: bool = typer.Option(False, "--keep-names",
                                    help="Name volumes after their files (default: pseudonymous)."),
    device: DeviceName = DEVICE,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Pipeline YAML: its predict: section (keep_names, device) and "
                                     "score: section; a calibrated run refuses scoring settings "
                                     "other than its calibration's (options typed here win)."),
) -> None:
    """Anomaly maps, predictions.csv and an HTML report for scans nobody has labelled."""
    from octanogan.config import from_dict
    from octanogan.prediction.predict import PredictOptions, predict_inputs

    options = from_dict(PredictOptions, with_config(ctx, config, "predict", {"keep_names": "keep_names",
                                                                            "device": "device"}),
                        f"{config} [predict]" if config else "command line")
    summary = predict_inputs(run_dir, inputs, out, options.device, options.keep_names,
                             progress=lambda rows: progress(rows, desc="predict", unit="vol"),
                             score=config_section(config, "score"),
                             score_source=f"{config} [score]" if config else "defaults")
    scored = summary.table[summary.table["status"] == "scored"]
    above = int(scored["above_threshold"].fillna(False).astype(bool).sum())
    typer.echo(f"predicted {len(scored)} volume(s) in {summary.seconds:.1f} s"
               + (f"; {above} above the calibrated threshold" if summary.calibrated else "")
               + f"; {summary.calibration_source()}")
    for refusal in summary.refused:
        typer.secho(f"refused {refusal}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"report: {(Path(out) / 'report' / 'index.html').absolute()}")


@handle_errors
def info(run_dir: Path = typer.Argument(..., help="Run folder written by 'octanogan train'.")) -> None:
    """Print the run's model card: training data and budget, calibration, last evaluation."""
    from octanogan.report.model_card import model_card

    typer.echo(model_card(run_dir).text())


def register(app: typer.Typer) -> None:
    """Add ``calibrate``, ``predict`` and ``info`` to ``app``."""
    app.command()(calibrate)
    app.command()(predict)
    app.command()(info)
