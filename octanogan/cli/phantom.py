"""``octanogan phantom``: write a synthetic macular OCT cohort with exact ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import typer

from octanogan.cli.common import CONFIG, handle_errors, progress, with_config
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
    ctx: typer.Context,
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
    config: Path | None = CONFIG,
) -> None:
    """Write a synthetic macular SD-OCT cohort: NIfTI volumes, label maps, boundaries, manifest."""
    from octanogan.config import from_dict
    from octanogan.phantom import ArtefactConfig, make_cohort
    from octanogan.phantom.cohort import claim_cohort

    settings = with_config(ctx, config, "data.phantom", {
        "healthy": "healthy", "diseased": "diseased", "shape": "shape", "seed": "seed",
        "speckle": "speckle", "artefacts": "artefacts"})
    if isinstance(settings.get("shape"), str):
        settings["shape"] = parse_shape(settings["shape"])
    cohort = from_dict(CohortConfig, settings, f"{config} [data.phantom]" if config else "command line")
    claim_cohort(out_dir)  # before the progress bar: a refusal is one line
    start = time.perf_counter()
    n = cohort.healthy + cohort.diseased
    with progress(total=n, desc="phantom", unit="volume") as bar:
        manifest = make_cohort(out_dir, cohort.healthy, cohort.diseased, cohort.shape, cohort.seed,
                               on_volume=lambda _: bar.update(),
                               artefacts=ArtefactConfig.named(cohort.artefacts), speckle=cohort.speckle)
    seconds = time.perf_counter() - start
    with_artefacts = "" if cohort.artefacts == "none" else f", {cohort.artefacts} artefacts"
    typer.echo(f"wrote {n} volumes ({cohort.healthy} healthy, {cohort.diseased} diseased, shape "
               f"{cohort.shape}{with_artefacts}) to {out_dir} in {seconds:.1f} s "
               f"({seconds / max(n, 1):.2f} s per volume)")
    typer.echo(f"manifest: {manifest}")
    typer.echo(f"labels: {out_dir / 'labels'}  boundaries: {out_dir / 'boundaries'}  "
               f"markers: {out_dir / 'markers.json'}")


def register(app: typer.Typer) -> None:
    """Add ``phantom`` to ``app``."""
    app.command("phantom")(phantom)
