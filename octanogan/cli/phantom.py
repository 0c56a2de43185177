"""``octanogan phantom``: write a synthetic macular OCT cohort with exact ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import typer

from octanogan.cli.common import handle_errors, progress
from octanogan.phantom.config import CohortConfig

COHORT = CohortConfig  # its defaults, read without building one (that would check the shape)


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"49,496,512"`` -> ``(49, 496, 512)``; anything else is a one-line error."""
    from octanogan.errors import OctanoganError

    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise OctanoganError(f"--shape must be three positive integers B,H,W (e.g. 49,496,512), got '{text}'")
    return int(parts[0]), int(parts[1]), int(parts[2])


@handle_errors
def phantom(
    out_dir: Path = typer.Argument(..., help="New or empty folder to write the cohort into (created if "
                                             "missing); a finished cohort is never replaced."),
    healthy: int = typer.Option(COHORT.healthy, "--healthy",
                                help="Number of healthy volumes (train/val/test)."),
    diseased: int = typer.Option(COHORT.diseased, "--diseased",
                                 help="Number of diseased volumes (all test)."),
    shape: str = typer.Option(",".join(map(str, COHORT.shape)), "--shape",
                              help="Volume shape B-scans,depth,width."),
    seed: int = typer.Option(COHORT.seed, "--seed",
                             help="Cohort seed (0 or more); the same seed writes the same files."),
    artefacts: Literal["none", "realistic"] = typer.Option(
        COHORT.artefacts, "--artefacts",
        help="Real-world artefacts: none (clean phantom) or realistic (a random mix per volume: fill "
             "wedges, padding, tilt, bowl, vignetting, vessel shadows, low-SNR B-scans, optic disc, "
             "sizes; see docs/phantom.md)."),
    speckle: Literal["log", "brightness"] = typer.Option(
        COHORT.speckle, "--speckle",
        help="Speckle of even strength in grey levels (log), or grain that grows with brightness, as "
             "in real exports (brightness; docs/phantom.md)."),
) -> None:
    """Write a synthetic macular SD-OCT cohort: NIfTI volumes, label maps, boundaries, manifest."""
    from octanogan.phantom import ArtefactConfig, make_cohort
    from octanogan.phantom.cohort import claim_cohort

    cohort = CohortConfig(healthy, diseased, parse_shape(shape), seed, speckle, artefacts)
    volume_shape = cohort.shape
    config = ArtefactConfig.named(artefacts)
    claim_cohort(out_dir)  # before the progress bar: a refusal is one line
    start = time.perf_counter()
    with progress(total=healthy + diseased, desc="phantom", unit="volume") as bar:
        manifest = make_cohort(out_dir, healthy, diseased, volume_shape, seed,
                               on_volume=lambda _: bar.update(), artefacts=config, speckle=speckle)
    seconds = time.perf_counter() - start
    n = healthy + diseased
    with_artefacts = "" if artefacts == "none" else f", {artefacts} artefacts"
    typer.echo(f"wrote {n} volumes ({healthy} healthy, {diseased} diseased, shape {volume_shape}"
               f"{with_artefacts}) to {out_dir} in {seconds:.1f} s ({seconds / max(n, 1):.2f} s per volume)")
    typer.echo(f"manifest: {manifest}")
    typer.echo(f"labels: {out_dir / 'labels'}  boundaries: {out_dir / 'boundaries'}  "
               f"markers: {out_dir / 'markers.json'}")


def register(app: typer.Typer) -> None:
    """Add ``phantom`` to ``app``."""
    app.command("phantom")(phantom)
