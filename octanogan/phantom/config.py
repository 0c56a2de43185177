"""The phantom cohort's settings: one dataclass for `octanogan phantom`, the pipeline's
``data.phantom`` section and :func:`octanogan.phantom.make_cohort` (light: no NumPy at import)."""

from __future__ import annotations

from dataclasses import dataclass

from octanogan import checks
from octanogan.errors import ConfigError, OctanoganError

#: A default volume: 49 B-scans of 496 x 512, a Spectralis-like macular cube.
DEFAULT_SHAPE = (49, 496, 512)
SPECKLES = ("log", "brightness")
ARTEFACT_PRESETS = ("none", "realistic")


@dataclass
class CohortConfig:
    """How many volumes, of which shape and seed, with which speckle and artefacts."""

    healthy: int = 8
    diseased: int = 4
    shape: tuple[int, int, int] = DEFAULT_SHAPE
    seed: int = 0
    #: ``log``: speckle of even strength in grey levels; ``brightness``: grain grows with it.
    speckle: str = "log"
    #: ``none`` (a clean phantom) or ``realistic`` (the artefacts of real exports).
    artefacts: str = "none"

    def __post_init__(self) -> None:
        from octanogan.phantom.volume import check_shape

        checks.integer("healthy", self.healthy, 0)
        checks.integer("diseased", self.diseased, 0)
        checks.integer("seed", self.seed, 0, checks.MAX_SEED)
        checks.choice("speckle", self.speckle, SPECKLES)
        checks.choice("artefacts", self.artefacts, ARTEFACT_PRESETS)
        if self.healthy + self.diseased == 0:
            raise ConfigError("healthy", "and 'diseased' cannot both be 0")
        if not isinstance(self.shape, (list, tuple)) or len(self.shape) != 3 \
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.shape):
            raise ConfigError("shape", f"must be three integers [B-scans, depth, width], got {self.shape!r}")
        try:
            self.shape = check_shape(tuple(self.shape))
        except OctanoganError as exc:
            raise ConfigError("shape", str(exc)) from None
