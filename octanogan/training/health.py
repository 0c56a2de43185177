"""Signs that a training run went wrong, read from its own numbers (docs/training.md).

Three checks, each with a documented threshold, run when ``train`` ends; what they find is kept in
``run.json`` (``health``), shown on the model card and printed by ``train`` as warning lines:

- **non-finite losses**: any NaN or infinite loss in ``losses.csv`` (the weights are then useless);
- **the discriminator wins** (``dcgan`` objective only: its losses are probabilities): over the
  last quarter of the GAN iterations (at least :data:`WINDOW_MIN` of them), the median D loss is
  below :data:`D_LOSS_FLOOR` and the median D(G(z)) below :data:`D_FAKE_FLOOR`: D tells every
  sample apart and G's gradient vanishes. WGAN-GP's critic losses have no such scale; not checked;
- **samples that all look alike** (mode collapse): the mean pairwise L1 distance between 64
  samples G(z) of a fixed z is under :data:`DIVERSITY_FLOOR` of that between 32 real patches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

D_LOSS_FLOOR = 0.05
D_FAKE_FLOOR = 0.05
WINDOW_MIN = 20
DIVERSITY_FLOOR = 0.25


@dataclass
class Health:
    """What the checks found; ``warnings`` is empty for a run that looks healthy."""

    warnings: list[str] = field(default_factory=list)
    sample_diversity: float | None = None

    def record(self) -> dict[str, object]:
        return {"warnings": self.warnings, "sample_diversity": self.sample_diversity}


def check_losses(losses: pd.DataFrame, objective: str) -> list[str]:
    """Warnings about a ``losses.csv`` table (see the module's thresholds)."""
    warnings = []
    numbers = losses.drop(columns=["iteration", "phase"]).apply(pd.to_numeric, errors="coerce")
    rows = np.flatnonzero((~np.isfinite(numbers.to_numpy(dtype=float)) & _logged(losses)).any(axis=1))
    if rows.size:
        first = losses.iloc[rows[0]]
        warnings.append(f"losses became NaN or infinite at {first['phase']} iteration "
                        f"{int(first['iteration'])}: the weights of this run are not usable; lower "
                        "--lr or check the patch store")
    gan = losses[losses["phase"] == "gan"]
    if objective == "dcgan" and len(gan):
        window = gan.tail(max(WINDOW_MIN, len(gan) // 4))
        d_loss = pd.to_numeric(window["d_loss"], errors="coerce").median()
        d_fake = pd.to_numeric(window["d_fake"], errors="coerce").median()
        if len(window) >= WINDOW_MIN and d_loss < D_LOSS_FLOOR and d_fake < D_FAKE_FLOOR:
            warnings.append(f"the discriminator wins: median D loss {d_loss:.3g} and D(G(z)) "
                            f"{d_fake:.3g} over the last {len(window)} GAN iterations (below "
                            f"{D_LOSS_FLOOR} and {D_FAKE_FLOOR}); the generator learns nothing "
                            "more: lower the learning rate, or try --objective wgan-gp")
    return warnings


def _logged(losses: pd.DataFrame) -> np.ndarray:
    """Cells each phase logs (the encoder logs no D losses, the GAN no encoder losses)."""
    columns = [c for c in losses.columns if c not in ("iteration", "phase")]
    gan = {"d_loss", "g_loss", "d_real", "d_fake"}
    encoder = {"e_loss", "e_image", "e_feature"}
    phase = losses["phase"].to_numpy()
    return np.stack([np.where(phase == "gan", c in gan, c in encoder) for c in columns], axis=1)


def check_diversity(diversity: float) -> list[str]:
    """A warning when the samples of a fixed z look alike (see :data:`DIVERSITY_FLOOR`)."""
    if math.isfinite(diversity) and diversity < DIVERSITY_FLOOR:
        return [f"the generator's samples look alike (diversity {diversity:.2f} of the real "
                f"patches', below {DIVERSITY_FLOOR}): mode collapse; see samples/ and train again "
                "with another seed or objective"]
    return []


def check_run(losses_csv: Path, objective: str, diversity: float | None) -> Health:
    """All checks of a finished session."""
    warnings: list[str] = []
    if losses_csv.is_file():
        losses = pd.read_csv(losses_csv, keep_default_na=True)
        warnings += check_losses(losses, objective)
    if diversity is not None:
        warnings += check_diversity(diversity)
    return Health(warnings, diversity)
