"""``octanogan score`` and ``octanogan evaluate``.

Option defaults and choices come from the config dataclasses (torch-free modules), so ``--help``
shows them without loading torch and the CLI never repeats a default by hand.
"""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import CONFIG, handle_errors, progress, with_config
from octanogan.device import DeviceName
from octanogan.evaluation.config import EvaluationConfig
from octanogan.outputs.evaluation import SCORES
from octanogan.scoring.config import AnomalyMap, InversionConfig, Mode, Norm, ScoreConfig, Weighting

MODE_HELP = "iterative (AnoGAN, Γ Adam steps on z), encoder (f-AnoGAN) or hybrid (encoder, then steps)."
INVERSION, SCORING, EVALUATION = InversionConfig(), ScoreConfig(), EvaluationConfig()


#: Scoring options of the CLI and the ``score:`` settings they set.
SCORE_OPTIONS = {"mode": "mode", "steps": "steps", "hybrid_steps": "hybrid_steps", "lam": "lam",
                 "norm": "norm", "lr": "lr", "stride": "stride", "batch_size": "batch_size",
                 "weighting": "weighting", "smooth": "smooth_sigma", "seed": "seed",
                 "anomaly_map": "anomaly_map"}


def score_config_from_cli(ctx: typer.Context, config: Path | None) -> ScoreConfig:
    """ScoreConfig: defaults, then the ``score:`` section of ``--config``, then typed options."""
    from octanogan.scoring.config import score_config

    return score_config(with_config(ctx, config, "score", SCORE_OPTIONS),
                        f"{config} [score]" if config else "command line")


def evaluation_config_from_cli(ctx: typer.Context, config: Path | None,
                               names: dict[str, str]) -> EvaluationConfig:
    """EvaluationConfig: defaults, then the ``evaluate:`` section of ``--config``, then typed options."""
    from octanogan.config import from_dict

    return from_dict(EvaluationConfig, with_config(ctx, config, "evaluate", names),
                     f"{config} [evaluate]" if config else "command line")


def _parse_shard(text: str) -> tuple[int, int]:
    from octanogan.errors import OctanoganError

    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise OctanoganError(f"--shard must look like 0/4, got '{text}'") from None
    return index, count


def _run_scoring(run_dir: Path, manifest_path: Path, out: Path, config: ScoreConfig, device: str,
                 keep_going: bool, shard: str = "0/1"):  # noqa: ANN202
    """Score and print a summary (rank 0 alone under torchrun; every rank reports its failures)."""
    from octanogan.distributed import ranks_from_env
    from octanogan.io.manifest import load_manifest
    from octanogan.scoring.score import score_manifest

    manifest = load_manifest(manifest_path)
    main = ranks_from_env().is_main
    summary = score_manifest(run_dir, manifest, out, config, device, keep_going,
                             progress=(lambda rows: progress(rows, desc="score", unit="vol")) if main
                             else None, shard=_parse_shard(shard))
    for refusal in summary.failed:
        typer.secho(f"skipped {refusal}", err=True, fg=typer.colors.YELLOW)
    if not main:
        return manifest, summary
    rate = summary.n_patches / max(summary.seconds, 1e-9)
    typer.echo(f"scored {len(summary.scored)} volume(s), {summary.n_patches} patches in "
               f"{summary.seconds:.1f} s ({rate:.0f} patches/s); {len(summary.skipped)} already done "
               f"-> {summary.scores_dir}")
    for line in summary.flagged_lines():
        typer.echo(line)
    return manifest, summary


# Shared options of score and evaluate.
MODE = typer.Option(INVERSION.mode, "--mode", help=MODE_HELP)
STEPS = typer.Option(INVERSION.steps, "--steps", help="Γ: Adam steps on z in iterative mode.")
HYBRID_STEPS = typer.Option(INVERSION.hybrid_steps, "--hybrid-steps",
                            help="Adam steps after the encoder in hybrid mode.")
LAMBDA = typer.Option(INVERSION.lam, "--lambda", help="λ: weight of the feature (discrimination) loss.")
NORM = typer.Option(INVERSION.norm, "--norm", help="l1 (paper) or l2 residuals.")
LR = typer.Option(INVERSION.lr, "--lr", help="Adam learning rate for z.")
STRIDE = typer.Option(SCORING.stride, "--stride", help="Distance between patch centres when scoring.")
BATCH = typer.Option(SCORING.batch_size, "--batch-size", help="Patches inverted together.")
WEIGHTING = typer.Option(SCORING.weighting, "--weighting", help="Blending of overlapping patches.")
SMOOTH = typer.Option(SCORING.smooth_sigma, "--smooth",
                      help="Gaussian σ (pixels) for the anomaly map; 0: per-pixel values.")
ANOMALY_MAP = typer.Option(SCORING.anomaly_map, "--map",
                           help="Per-voxel map: darker or brighter than G(z) after smoothing the signed "
                                "difference, or the paper's absolute |x-G(z)|.")
SEED = typer.Option(INVERSION.seed, "--seed", help="Seed for z₀ in iterative mode.")
DEVICE = typer.Option("auto", "--device", help="Where to run.")
KEEP_GOING = typer.Option(False, "--keep-going", help="Report and skip a bad volume instead of stopping.")


@handle_errors
def score(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run folder written by 'octanogan train'."),
    manifest: Path = typer.Argument(..., help="Manifest CSV of the volumes to score."),
    out: Path = typer.Option(..., "--out", "-o", help="Scores folder (resumes if it exists)."),
    mode: Mode = MODE, steps: int = STEPS, hybrid_steps: int = HYBRID_STEPS, lam: float = LAMBDA,
    norm: Norm = NORM, lr: float = LR, stride: int = STRIDE, batch_size: int = BATCH,
    weighting: Weighting = WEIGHTING, smooth: float = SMOOTH, seed: int = SEED, device: DeviceName = DEVICE,
    anomaly_map: AnomalyMap = ANOMALY_MAP,
    keep_going: bool = KEEP_GOING,
    shard: str = typer.Option("0/1", "--shard", help="i/N: score every N-th volume from i (parallel jobs)."),
    config: Path | None = CONFIG,
) -> None:
    """Map every patch of the val and test volumes to the latent space; write anomaly maps.

    Under ``torchrun --nproc-per-node N -m octanogan score ...`` the N processes split the volumes.
    """
    from octanogan.device import resolve_device
    from octanogan.distributed import process_group

    settings = score_config_from_cli(ctx, config)  # the scoring options, read from ctx over the YAML
    with process_group(resolve_device(device)):
        _run_scoring(run_dir, manifest, out, settings, device, keep_going, shard)


@handle_errors
def evaluate(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run folder written by 'octanogan train'."),
    manifest: Path = typer.Argument(..., help="Manifest: val sets thresholds, test is evaluated."),
    annotations: Path = typer.Option(None, "--annotations", help="volume_id,annotation_path CSV."),
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation folder."),
    scores: Path = typer.Option(None, "--scores", help="Reuse this scores folder (default: OUT/scores)."),
    markers: Path = typer.Option(None, "--markers", help="Marker table (default: beside annotations)."),
    n_bootstrap: int = typer.Option(EVALUATION.n_bootstrap, "--n-bootstrap",
                                    help="Bootstrap resamples for the 95% CIs."),
    bootstrap_seed: int = typer.Option(EVALUATION.bootstrap_seed, "--bootstrap-seed",
                                       help="Seed of the bootstrap resamples (--seed seeds z₀)."),
    mode: Mode = MODE, steps: int = STEPS, hybrid_steps: int = HYBRID_STEPS, lam: float = LAMBDA,
    norm: Norm = NORM, lr: float = LR, stride: int = STRIDE, batch_size: int = BATCH,
    weighting: Weighting = WEIGHTING, smooth: float = SMOOTH, seed: int = SEED, device: DeviceName = DEVICE,
    anomaly_map: AnomalyMap = ANOMALY_MAP,
    keep_going: bool = KEEP_GOING,
    config: Path | None = CONFIG,
) -> None:
    """Score (or reuse scores), compute metrics with CIs, and write the HTML report."""
    from octanogan.device import resolve_device
    from octanogan.distributed import process_group
    from octanogan.io.manifest import load_manifest, require_labels
    from octanogan.pipeline import evaluate_stage, prepare_evaluation

    settings = score_config_from_cli(ctx, config)  # the scoring options, read from ctx over the YAML
    evaluation = evaluation_config_from_cli(ctx, config, {"n_bootstrap": "n_bootstrap",
                                                                 "bootstrap_seed": "bootstrap_seed"})
    scores_dir = scores or out / SCORES
    require_labels(load_manifest(manifest), manifest)
    annotation_map, marker_map = prepare_evaluation(out, scores_dir, annotations, markers)
    with process_group(resolve_device(device)) as ranks:  # torchrun: the ranks share the scoring
        manifest_table, _ = _run_scoring(run_dir, manifest, scores_dir, settings, device, keep_going)
    if not ranks.is_main:
        return
    summary = evaluate_stage(run_dir, manifest, manifest_table, scores_dir, out, annotations,
                             annotation_map, marker_map, evaluation, progress, settings.top_fraction)
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"report: {summary.index.absolute()}")


def register(app: typer.Typer) -> None:
    """Add ``score`` and ``evaluate`` to ``app``."""
    app.command()(score)
    app.command()(evaluate)
