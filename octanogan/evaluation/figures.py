"""ROC, precision-recall and score-distribution figures (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from octanogan.fsutil import atomic_path

LEVEL_TITLES = {"voxel": "Voxel", "patch": "Patch", "bscan": "B-scan", "volume": "Volume"}
THRESHOLD_STYLES = {"youden": ":"}  # healthy-derived thresholds: dashed


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(figure)


def plot_curves(curves: dict[str, dict[str, Any]], kind: str, level: str, path: Path) -> None:
    """One ROC (``kind='roc'``) or PR (``kind='pr'``) curve per marker of one level."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    area = "auc" if kind == "roc" else "ap"
    for marker, curve in curves.items():
        x = np.array(curve["x"], dtype=float)
        y = np.array(curve["y"], dtype=float)
        axes.plot(x, y, lw=2.2 if marker == "pooled" else 1.3,
                  label=f"{marker} ({area.upper()} {curve[area]:.3f})")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        axes.set(xlabel="False positive rate", ylabel="True positive rate")
    else:
        axes.set(xlabel="Recall", ylabel="Precision")
    axes.set(xlim=(0, 1), ylim=(0, 1.02), title=f"{LEVEL_TITLES[level]} level {kind.upper()}")
    axes.legend(loc="lower right" if kind == "roc" else "upper right", fontsize=8)
    _save(figure, path)


def plot_score_distribution(volume_scores: dict[str, np.ndarray],
                            patch_scores: dict[str, np.ndarray],
                            thresholds: dict[str, dict[str, float]], path: Path) -> None:
    """Histograms of healthy vs diseased volume and patch scores, thresholds marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, level, scores in ((axes[0], "volume", volume_scores), (axes[1], "patch", patch_scores)):
        pooled = np.concatenate([s for s in scores.values() if len(s)] or [np.zeros(1)])
        bins = np.linspace(pooled.min(), pooled.max() + 1e-12, 40)
        for label, values in scores.items():
            if len(values):
                ax.hist(values, bins=bins, density=True, alpha=0.5, label=f"{label} (n={len(values)})")
        for name, by_level in thresholds.items():
            if level in by_level:
                ax.axvline(by_level[level], color="black", ls=THRESHOLD_STYLES.get(name, "--"),
                           lw=1, label=f"{name} {by_level[level]:.3g}")
        ax.set(xlabel=f"{level} score", ylabel="density", title=f"{LEVEL_TITLES[level]} scores")
        ax.legend(fontsize=8)
    _save(figure, path)
