"""The shipped pipeline YAMLs stay valid: every section builds its stage's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from octanogan.pipeline import load_pipeline

PIPELINES = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_pipeline_sections_build_configs(path):
    pipeline = load_pipeline(path, "cpu")
    assert pipeline.data.phantom is not None or pipeline.data.manifest is not None
    assert pipeline.train.device == "cpu"


def test_there_are_pipelines():
    assert {p.name for p in PIPELINES} >= {"demo.yaml", "paper.yaml", "fast.yaml"}
