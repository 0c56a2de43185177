"""Scoring settings (torch-free, so the CLI can show their defaults and choices without torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from octanogan import checks
from octanogan.config import from_dict
from octanogan.errors import ConfigError
from octanogan.io.vocabulary import SPLITS

Mode = Literal["iterative", "encoder", "hybrid"]
Norm = Literal["l1", "l2"]
Weighting = Literal["uniform", "gaussian"]
AnomalyMap = Literal["darker", "brighter", "absolute"]
MODES, NORMS, WEIGHTINGS = get_args(Mode), get_args(Norm), get_args(Weighting)
ANOMALY_MAPS = get_args(AnomalyMap)
#: Upper bounds, checked before any work: far above any sensible run.
MAX_STEPS = 100_000
MAX_STRIDE = 4096
MAX_BATCH = 65_536


@dataclass
class InversionConfig:
    """How to find z for a patch. Γ=500, λ=0.1 and L1 follow Schlegl et al.; the default mode is
    hybrid (encoder, then ``hybrid_steps`` Adam steps), which needs a run trained with an encoder."""

    mode: str = "hybrid"
    steps: int = 500
    hybrid_steps: int = 50
    lam: float = 0.1
    norm: str = "l1"
    lr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        checks.choice("mode", self.mode, MODES)
        checks.choice("norm", self.norm, NORMS)
        checks.integer("steps", self.steps, 0, MAX_STEPS)
        checks.integer("hybrid_steps", self.hybrid_steps, 0, MAX_STEPS)
        checks.number("lam", self.lam, 0.0, 1.0)
        checks.number("lr", self.lr, 0.0, low_open=True)
        checks.integer("seed", self.seed, 0, checks.MAX_SEED)

    @property
    def n_steps(self) -> int:
        """Adam steps on z for this mode."""
        return {"iterative": self.steps, "encoder": 0, "hybrid": self.hybrid_steps}[self.mode]

    @property
    def needs_encoder(self) -> bool:
        return self.mode != "iterative"


@dataclass
class ScoreConfig:
    """Everything that decides a score; recorded in ``SCORES/settings.json``.

    ``anomaly_map`` is what the per-voxel map shows (docs/scoring.md): ``darker`` (default) and
    ``brighter`` smooth the signed difference x - G(z) first (σ = ``smooth_sigma``, so speckle
    cancels and structure stays), then keep the part darker (fluid, tissue under a lifted RPE)
    or brighter than the generator's healthy expectation; ``absolute`` is the paper's |x - G(z)|,
    smoothed afterwards. Patch, B-scan and volume scores are the paper's A in every case.
    """

    inversion: InversionConfig = field(default_factory=InversionConfig)
    stride: int = 32
    batch_size: int = 256
    weighting: str = "uniform"
    anomaly_map: str = "darker"
    smooth_sigma: float = 4.0
    top_fraction: float = 0.1
    splits: tuple[str, ...] = ("val", "test")

    def __post_init__(self) -> None:
        if isinstance(self.inversion, dict):
            self.inversion = InversionConfig(**self.inversion)
        checks.integer("stride", self.stride, 1, MAX_STRIDE)
        checks.integer("batch_size", self.batch_size, 1, MAX_BATCH)
        checks.choice("weighting", self.weighting, WEIGHTINGS)
        checks.choice("anomaly_map", self.anomaly_map, ANOMALY_MAPS)
        checks.number("smooth_sigma", self.smooth_sigma, 0.0)
        checks.number("top_fraction", self.top_fraction, 0.0, 1.0, low_open=True)
        self.splits = tuple(self.splits)
        for split in self.splits:
            checks.choice("splits", split, SPLITS)


#: The inversion's settings, which a flat ``score:`` section holds beside the scoring ones.
INVERSION_KEYS = tuple(f.name for f in dataclasses.fields(InversionConfig))


def score_config(settings: Any, source: str) -> ScoreConfig:
    """ScoreConfig from a flat ``score:`` section (inversion and scoring settings side by side)."""
    if not isinstance(settings, dict):
        raise ConfigError("score", "must be a mapping of settings", source)
    inversion = from_dict(InversionConfig, {k: v for k, v in settings.items() if k in INVERSION_KEYS},
                          source)
    rest = {k: v for k, v in settings.items() if k not in INVERSION_KEYS}
    return dataclasses.replace(from_dict(ScoreConfig, rest, source), inversion=inversion)
