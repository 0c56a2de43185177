"""The shipped pipeline YAMLs stay valid: every section builds its stage's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from octanogan.config import from_dict, load_yaml
from octanogan.patches.extract import ExtractConfig
from octanogan.pipeline import INVERSION_KEYS, SECTIONS
from octanogan.scoring.inversion import InversionConfig
from octanogan.scoring.score import ScoreConfig
from octanogan.training import TrainConfig

PIPELINES = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_pipeline_sections_build_configs(path):
    spec = load_yaml(path)
    assert set(spec) <= SECTIONS
    assert "phantom" in spec["data"] or "manifest" in spec["data"]
    from_dict(ExtractConfig, spec.get("extract", {}), str(path))
    from_dict(TrainConfig, spec.get("train", {}), str(path))
    score = spec.get("score", {})
    from_dict(InversionConfig, {k: v for k, v in score.items() if k in INVERSION_KEYS}, str(path))
    from_dict(ScoreConfig, {k: v for k, v in score.items() if k not in INVERSION_KEYS}, str(path))


def test_there_are_pipelines():
    assert {p.name for p in PIPELINES} >= {"demo.yaml", "paper.yaml", "fast.yaml"}
