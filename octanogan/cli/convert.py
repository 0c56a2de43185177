"""``octanogan convert``: vendor files, DICOM, B-scan folders and public datasets to NIfTI."""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import fail, handle_errors, progress
from octanogan.io.vocabulary import Label, Split

DATASET_NAMES = ("kermany", "retouch", "duke")


def register(app: typer.Typer) -> None:
    """Add the ``convert`` command to app."""

    @app.command()
    @handle_errors
    def convert(
        inputs: list[Path] = typer.Argument(
            ..., help="Files or folders to convert (vendor files, DICOM, B-scan image folders, "
                      "NIfTI, .npy); with --dataset, the dataset's root folder."),
        out: Path = typer.Option(
            ..., "--out", help="Output folder (volumes/, manifest.csv): new, empty, or an earlier "
                               "conversion to add to; never inside or around an input."),
        label: Label = typer.Option("healthy", help="Manifest label of every converted volume."),
        split: Split = typer.Option("train", help="Manifest split of every converted volume."),
        dataset: str = typer.Option(
            None, help=f"Convert a public dataset laid out as released: {', '.join(DATASET_NAMES)}"
                       " (label and split then come from the dataset)."),
        pseudonymise: bool = typer.Option(
            True, "--pseudonymise/--keep-names",
            help="Name volumes by a hash of the file's content (default: vendor file names often "
                 "hold patient ids), or keep the file names as volume ids. Ignored with "
                 "--dataset (public datasets keep their public case names)."),
    ) -> None:
        """Convert OCT inputs to NIfTI volumes and a manifest; unusable files are listed."""
        def bar(items):  # type: ignore[no-untyped-def]
            return progress(list(items), desc="convert", unit="input")

        if dataset is not None:
            from octanogan.io.datasets import DATASETS

            if dataset not in DATASETS:
                fail(f"unknown dataset '{dataset}' (expected one of {', '.join(DATASETS)})")
            if len(inputs) != 1:
                fail(f"--dataset {dataset} takes one root folder, got {len(inputs)} inputs")
            report = DATASETS[dataset](inputs[0], out, progress=bar)
        else:
            from octanogan.io.convert import convert_inputs

            report = convert_inputs(inputs, out, label=label, split=split, progress=bar,
                                    pseudonymise=pseudonymise)
        for refusal in report.refused:
            typer.secho(f"refused: {refusal}", fg=typer.colors.YELLOW,
                        err=True)
        typer.echo(f"{len(report.rows)} volume(s) in {report.manifest_path}"
                   + (f"; {len(report.refused)} refused (see {report.refused_path})"
                      if report.refused else ""))
        if not report.rows:
            fail("nothing converted", code=1)
