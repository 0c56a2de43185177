"""``octanogan run``: every stage of a pipeline YAML, in order."""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import PhaseBars, handle_errors, progress
from octanogan.device import DeviceName


@handle_errors
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML (see pipelines/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for all stage outputs."),
    device: DeviceName | None = typer.Option(
        None, "--device", help="Where to train and score (default: the YAML's train.device, else auto)."),
) -> None:
    """Run phantom/data, extract, train, score, evaluate and report from one YAML."""
    import time

    from octanogan.pipeline import run_pipeline

    start = time.perf_counter()
    with PhaseBars() as bars:
        summary = run_pipeline(pipeline, out, device, typer.echo, progress, bars)
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"done in {time.perf_counter() - start:.0f} s")
    typer.echo(f"report: {summary.index.resolve()}")


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command()(run)
