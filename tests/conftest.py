"""Shared fixtures: a tiny phantom cohort (seconds to make) and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import SHARED_DATA
from typer.testing import CliRunner

TINY_SHAPE = (3, 496, 128)


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    """One rule for the real-data tests: ``@pytest.mark.realdata`` skips, with one reason, where
    the shared development data (../shared/data beside the repository) is absent."""
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real data not found at {SHARED_DATA}")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def tiny_run(tiny_cohort, tmp_path_factory) -> Path:
    """A run folder trained for a few iterations on the tiny cohort (32x32 patches, tiny nets)."""
    from octanogan.patches.extract import ExtractConfig, extract_store
    from octanogan.training import TrainConfig, train

    root = tmp_path_factory.mktemp("run")
    extract_store(tiny_cohort, root / "store", ExtractConfig(patch_size=32, stride=16))
    config = TrainConfig(iterations=6, encoder_iterations=6, batch_size=8, latent_dim=8,
                         base_channels=8, seed=0, device="cpu", checkpoint_every=3)
    train(root / "store", root / "run", config)
    return root / "run"
