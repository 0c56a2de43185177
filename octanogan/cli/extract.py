"""``octanogan extract``: cut healthy training patches into a patch store."""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import CONFIG, handle_errors, progress, with_config
from octanogan.io.vocabulary import Label, Split
from octanogan.patches.config import ExtractConfig

DEFAULTS = ExtractConfig()


@handle_errors
def extract(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., help="Manifest CSV listing the volumes."),
    out: Path = typer.Option(..., "--out", "-o", help="Patch store folder to write."),
    patch_size: int = typer.Option(DEFAULTS.patch_size, "--patch-size",
                                   help="Patch side in pixels (power of two)."),
    stride: int = typer.Option(DEFAULTS.stride, "--stride", help="Distance between patch centres."),
    label: Label = typer.Option(DEFAULTS.label, "--label", help="Manifest label to take."),
    split: Split = typer.Option(DEFAULTS.split, "--split", help="Manifest split to take."),
    keep_going: bool = typer.Option(False, "--keep-going",
                                    help="Leave out unreadable volumes and volumes whose every "
                                         "B-scan fails quality control, and list them."),
    config: Path | None = CONFIG,
) -> None:
    """Cut patches from the flattened retina of the healthy training volumes.

    Preprocessing settings (``docs/preprocessing.md``) come from the ``extract: preprocess:``
    section of ``--config``.
    """
    from octanogan.config import from_dict
    from octanogan.patches.extract import extract_store

    names = {"patch_size": "patch_size", "stride": "stride", "label": "label", "split": "split"}
    settings = from_dict(ExtractConfig, with_config(ctx, config, "extract", names),
                         f"{config} [extract]" if config else "command line")
    summary = extract_store(manifest, out, settings, progress=progress, keep_going=keep_going)
    rate = summary.n_patches / max(summary.seconds, 1e-9)
    typer.echo(f"extracted {summary.n_patches} patches from {summary.n_volumes} volume(s) "
               f"in {summary.seconds:.1f} s ({rate:.0f} patches/s) -> {summary.store}")
    for line in summary.skipped_lines():
        typer.echo(line)
    for refusal in summary.refused:
        typer.secho(f"refused {refusal}", err=True, fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    """Add ``extract`` to ``app``."""
    app.command()(extract)
