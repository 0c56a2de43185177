"""Aggregating patch scores into B-scan and volume scores (torch-free, shared by score and evaluate)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_mean(scores: np.ndarray, fraction: float) -> float:
    """Mean of the top ``fraction`` of scores (the maximum when that is under one score)."""
    if len(scores) == 0:
        return float("nan")
    k = int(np.floor(len(scores) * fraction))
    return float(np.max(scores)) if k < 1 else float(np.mean(np.sort(scores)[-k:]))


def aggregate_scores(patches: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, float]:
    """B-scan scores (``bscan, score``) and the volume score, as top-fraction means of patches."""
    bscans = [(int(b), top_mean(g["score"].to_numpy(), fraction))
              for b, g in patches.groupby("bscan", sort=True)]
    table = pd.DataFrame(bscans, columns=["bscan", "score"])
    return table, top_mean(patches["score"].to_numpy(), fraction)
