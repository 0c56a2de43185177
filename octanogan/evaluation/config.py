"""Evaluation settings (light: importable without pandas or matplotlib)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from octanogan import checks

#: Upper bounds, checked before any scoring starts (each resample costs a full metric pass).
MAX_BOOTSTRAP = 100_000
MAX_VOXEL_BINS = 1 << 20


@dataclasses.dataclass
class EvaluationConfig:
    """Evaluation settings; recorded in evaluation.json."""

    #: Settings renamed in a pipeline YAML's ``evaluate:`` section (a refused old key names the new).
    RENAMED: ClassVar[dict[str, str]] = {"seed": "bootstrap_seed"}

    n_bootstrap: int = 1000
    #: Seed of the bootstrap resamples (the inversion's seed is the score section's ``seed``).
    bootstrap_seed: int = 0
    healthy_percentile: float = 99.0
    voxel_bins: int = 2048

    def __post_init__(self) -> None:
        checks.integer("n_bootstrap", self.n_bootstrap, 0, MAX_BOOTSTRAP)
        checks.integer("bootstrap_seed", self.bootstrap_seed, 0, checks.MAX_SEED)
        checks.number("healthy_percentile", self.healthy_percentile, 0.0, 100.0, True, True)
        checks.integer("voxel_bins", self.voxel_bins, 2, MAX_VOXEL_BINS)
