"""Fixtures of the fault suite: earlier outputs that no failure may touch, and a tree hash."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def earlier(tiny_cohort, tiny_run, tmp_path_factory) -> dict[str, Path]:
    """Outputs of earlier, successful commands: a cohort, a store, a run, scores, an evaluation."""
    from typer.testing import CliRunner

    from octanogan.cli import app

    root = tmp_path_factory.mktemp("earlier")
    cohort = tiny_cohort.parent
    evaluation = root / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(tiny_run), str(tiny_cohort), "--annotations",
                                      str(cohort / "annotations.csv"), "--out", str(evaluation),
                                      "--device", "cpu", "--hybrid-steps", "2", "--n-bootstrap", "10"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {"cohort": cohort, "store": tiny_run.parent / "store", "run": tiny_run, "eval": evaluation}
