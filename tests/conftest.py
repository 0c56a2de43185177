"""Shared fixtures: a tiny phantom cohort (seconds to make) and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

TINY_SHAPE = (3, 496, 128)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A phantom cohort (5 healthy, 2 diseased, 3x496x128); returns its manifest path."""
    from octanogan.phantom import make_cohort

    return make_cohort(tmp_path_factory.mktemp("cohort"), n_healthy=5, n_diseased=2,
                       shape=TINY_SHAPE, seed=7)


@pytest.fixture
def cli():
    """Invoke the real ``octanogan`` app in-process; returns the click Result."""
    from octanogan.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke
