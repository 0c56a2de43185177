"""``octanogan report``: re-render the HTML report of an EVAL folder from its saved outputs."""

from __future__ import annotations

from pathlib import Path

import typer

from octanogan.cli.common import handle_errors, progress


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""

    @app.command("report")
    @handle_errors
    def report(
        eval_dir: Path = typer.Argument(..., help="EVAL folder written by 'octanogan evaluate'."),
    ) -> None:
        """Render EVAL_DIR/report/ (cohort page and one page per volume) without recomputing."""
        from octanogan.report import render_report

        index = render_report(eval_dir, progress=lambda items: progress(items, desc="volumes",
                                                                        unit="vol"))
        typer.echo(f"report: {index}")
