"""Pipeline YAMLs and how settings resolve: defaults < YAML section < command line, the same
number parsing in every section, one owner for each setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from octanogan.errors import ConfigError
from octanogan.pipeline import load_pipeline

PIPELINES = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_shipped_pipelines_build_their_configs_as_written(path):
    """Each section's values arrive in its config (a typo'd key or a dropped section would not)."""
    spec = yaml.safe_load(path.read_text())
    pipeline = load_pipeline(path)
    for name in ("extract", "train", "evaluate"):
        for key, value in (spec.get(name) or {}).items():
            if not isinstance(value, dict):
                assert getattr(getattr(pipeline, name), key) == value, (name, key)
    assert pipeline.train.device == (spec.get("train") or {}).get("device", "auto")


def test_there_are_pipelines():
    assert {p.name for p in PIPELINES} >= {"demo.yaml", "paper.yaml", "fast.yaml"}


def _pipeline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("data: {phantom: {healthy: 2, diseased: 1, shape: [2, 96, 96]}}\n" + text)
    return path


def test_exponent_numbers_parse_alike_in_every_section(tmp_path):
    """YAML reads 2e-4 as text; train --config took it and run refused it."""
    from octanogan.training import load_train_config

    path = _pipeline(tmp_path, "train: {lr: 2e-4}\nscore: {lam: 1e-1, lr: 5e-2}\n"
                               "evaluate: {healthy_percentile: 9.5e+1}\n")
    pipeline = load_pipeline(path)
    assert pipeline.train.lr == 2e-4 and load_train_config(path).lr == 2e-4
    assert pipeline.score.inversion.lam == 0.1 and pipeline.score.inversion.lr == 0.05
    assert pipeline.evaluate.healthy_percentile == 95.0
    with pytest.raises(ConfigError, match="'lr'"):
        load_pipeline(_pipeline(tmp_path, "train: {lr: fast}\n"))


def test_device_flag_beats_the_yaml_which_beats_auto(tmp_path):
    path = _pipeline(tmp_path, "train: {device: cpu}\n")
    assert load_pipeline(path).train.device == "cpu"
    assert load_pipeline(path, "cuda").train.device == "cuda"  # the command line wins
    assert load_pipeline(_pipeline(tmp_path, "")).train.device == "auto"
    assert "device" not in load_pipeline(path, "cuda").record()["train"]  # where it runs is no setting


def test_the_bootstrap_seed_is_its_own_setting(tmp_path):
    with pytest.raises(ConfigError, match="'seed'"):
        load_pipeline(_pipeline(tmp_path, "evaluate: {seed: 1}\n"))
    pipeline = load_pipeline(_pipeline(tmp_path, "evaluate: {bootstrap_seed: 4}\nscore: {seed: 3}\n"))
    assert pipeline.evaluate.bootstrap_seed == 4 and pipeline.score.inversion.seed == 3


def test_extract_refuses_patches_the_networks_cannot_take():
    from octanogan.models.spec import NetworkSpec
    from octanogan.patches.config import MIN_PATCH_SIZE
    from octanogan.patches.extract import ExtractConfig

    with pytest.raises(ConfigError, match="'patch_size' must be >= 32"):
        ExtractConfig(patch_size=16, stride=8)
    with pytest.raises(ConfigError, match="power of two in \\[32, 1024\\]"):
        ExtractConfig(patch_size=48, stride=8)
    NetworkSpec(patch_size=MIN_PATCH_SIZE, latent_dim=8, base_channels=8)  # the smallest both take
