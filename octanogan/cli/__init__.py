"""The ``octanogan`` command line. Each stage's commands live in their own module here.

These modules import only typer at the top; torch, MONAI and the stage code load inside the
commands, so ``octanogan --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module

import typer

from octanogan import __version__
from octanogan.cli.common import STATE

COMMAND_MODULES = ("phantom", "convert", "extract", "train", "score", "predict", "report", "run")

app = typer.Typer(
    name="octanogan",
    help="Unsupervised anomaly detection in retinal OCT (AnoGAN / f-AnoGAN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"octanogan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Unsupervised anomaly detection in retinal OCT (AnoGAN / f-AnoGAN)."""
    STATE["debug"] = debug


for _name in COMMAND_MODULES:
    import_module(f"octanogan.cli.{_name}").register(app)


def entry_point() -> None:
    """The ``octanogan`` command and ``python -m octanogan``: the app, and under torchrun an exit
    that skips the teardown that can abort a rank (:func:`octanogan.distributed.joined_process_group`)."""
    from octanogan.cli.common import end_rank
    from octanogan.distributed import joined_process_group

    try:
        app(prog_name="octanogan")
    except SystemExit as exc:
        if joined_process_group():
            end_rank(exc.code)
        raise
