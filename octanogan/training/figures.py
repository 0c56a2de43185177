"""Training figures: sample grids and the loss curve, written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from octanogan.fsutil import atomic_path


def image_grid(images: torch.Tensor, columns: int = 8, gap: int = 2) -> np.ndarray:
    """``[N, 1, P, P]`` in [-1, 1] -> one uint8 image, ``columns`` patches per row, grey gaps."""
    n, _, p, _ = images.shape
    rows = math.ceil(n / columns)
    grid = np.full((rows * (p + gap) - gap, columns * (p + gap) - gap), 128, dtype=np.uint8)
    pixels = ((images[:, 0].detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    for k, patch in enumerate(pixels):
        r, c = divmod(k, columns)
        grid[r * (p + gap):r * (p + gap) + p, c * (p + gap):c * (p + gap) + p] = patch
    return grid


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a greyscale uint8 image as PNG."""
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image, extension=".png")


def plot_losses(losses_csv: Path, out: Path) -> None:
    """Loss curves of both phases (moving average over 1 % of the iterations) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.read_csv(losses_csv)
    panels = [("gan", ["d_loss", "g_loss"], "GAN"), ("encoder", ["e_loss", "e_image", "e_feature"],
                                                      "encoder (izi_f)")]
    panels = [p for p in panels if (table["phase"] == p[0]).any()]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 3.5),
                             squeeze=False)
    for ax, (phase, columns, title) in zip(axes[0], panels):
        rows = table[table["phase"] == phase]
        window = max(1, len(rows) // 100)
        for column in columns:
            smooth = rows[column].rolling(window, min_periods=1).mean()
            ax.plot(rows["iteration"], smooth, label=column, linewidth=1)
        ax.set(title=title, xlabel="iteration", ylabel="loss")
        ax.legend()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
