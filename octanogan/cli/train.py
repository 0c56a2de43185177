"""``octanogan train``: DCGAN (or WGAN-GP) on healthy patches, then the f-AnoGAN encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from octanogan.cli.common import PhaseBars, handle_errors
from octanogan.device import DeviceName
from octanogan.training.config import Objective, TrainConfig

#: Unset options keep the value of --config, else these defaults.
DEFAULTS = TrainConfig()


def _setting(name: str, text: str) -> Any:
    """An option that overrides one TrainConfig setting; its help shows the default."""
    return typer.Option(None, help=f"{text} (default: {getattr(DEFAULTS, name)}).")


@handle_errors
def train_command(
    store_dir: Path = typer.Argument(..., help="Patch store written by 'octanogan extract'."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                          help="YAML: TrainConfig fields, flat or under 'train:'."),
    iterations: int | None = _setting("iterations", "GAN iterations (generator updates)"),
    encoder_iterations: int | None = _setting("encoder_iterations", "Encoder iterations (0: no encoder)"),
    batch_size: int | None = _setting("batch_size", "Patches per batch"),
    latent_dim: int | None = _setting("latent_dim", "Size of z"),
    base_channels: int | None = _setting("base_channels", "Width of the outermost conv block"),
    lr: float | None = _setting("lr", "Adam learning rate"),
    objective: Objective | None = _setting("objective", "GAN objective"),
    flip: bool | None = typer.Option(None, "--flip/--no-flip",
                                     help=f"Random left-right flips (default: {DEFAULTS.flip})."),
    seed: int | None = _setting("seed", "Seed of weights, data order and noise"),
    device: DeviceName | None = _setting("device", "Where to train"),
    workers: int | None = _setting("workers", "Data loading processes (0: main process)"),
    checkpoint_every: int | None = _setting("checkpoint_every", "Iterations between checkpoints"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run in --out."),
) -> None:
    """Train the GAN on healthy patches, then the encoder; write a run folder.

    Under torchrun every rank trains its part of each batch (DDP) and rank 0 writes and reports.
    """
    from octanogan.device import resolve_device
    from octanogan.distributed import process_group, ranks_from_env
    from octanogan.errors import OctanoganError
    from octanogan.training import load_train_config, train
    from octanogan.training.run_folder import recover, resume_config

    overrides = {"iterations": iterations, "encoder_iterations": encoder_iterations,
                 "batch_size": batch_size, "latent_dim": latent_dim, "base_channels": base_channels,
                 "lr": lr, "objective": objective, "flip": flip, "seed": seed, "device": device,
                 "workers": workers, "checkpoint_every": checkpoint_every}
    if resume and overwrite:
        raise OctanoganError("--resume and --overwrite exclude each other")
    if resume and config is not None:
        raise OctanoganError("--config cannot be used with --resume: the run's own config.yaml is used")
    main = ranks_from_env().is_main
    if main:
        recover(out)  # a replacement killed before its first checkpoint: the old run comes back first
    settings = resume_config(out, overrides) if resume else load_train_config(config, overrides)

    with process_group(resolve_device(settings.device)), PhaseBars() as bars:
        summary = train(store_dir, out, settings, resume=resume, overwrite=overwrite,
                        on_iteration=bars if main else None)
    if not main:
        return
    if summary.gan_iterations == 0 and summary.encoder_iterations == 0:
        typer.echo(f"nothing to train: the run in {out} is complete (raise --iterations or "
                   "--encoder-iterations to continue it)")
        return
    for notice in summary.notices:
        typer.echo(notice)
    for warning in summary.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    minutes, seconds = divmod(summary.seconds, 60)
    typer.echo(f"trained {summary.gan_iterations} GAN + {summary.encoder_iterations} encoder "
               f"iterations in {int(minutes)}m{seconds:04.1f}s, {summary.patches_per_s:.0f} patches/s "
               f"({summary.epochs:.2f} GAN epochs); run folder: {summary.run_dir}")


def register(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train_command)
