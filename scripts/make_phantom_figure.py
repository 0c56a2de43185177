"""Draw docs/figures/phantom.png: a healthy and a diseased phantom B-scan, and the lesion labels.

Usage: python scripts/make_phantom_figure.py [--seed 3] [--out docs/figures/phantom.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from octanogan.fsutil import atomic_path  # noqa: E402
from octanogan.phantom import MARKERS, generate_volume  # noqa: E402

COLOURS = {1: "#1f9bff", 2: "#ffd400", 3: "#ff3b30", 4: "#39ff14", 5: "#ff00ff"}


def bscan_through_lesions(labels: np.ndarray) -> int:
    """The B-scan showing the most marker types, then the most lesion voxels."""
    kinds = [len(np.unique(b[b > 0])) for b in labels]
    counts = (labels > 0).sum(axis=(1, 2))
    return int(max(range(len(labels)), key=lambda i: (kinds[i], counts[i])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/phantom.png"))
    args = parser.parse_args()

    healthy = generate_volume(seed=args.seed)
    diseased = generate_volume(seed=args.seed, diseased=True)
    b = bscan_through_lesions(diseased.labels)
    centre = healthy.image.shape[0] // 2
    panels = [(healthy.image[centre], f"healthy (seed {args.seed}), B-scan {centre}"),
              (diseased.image[b], f"diseased (same eye), B-scan {b}"),
              (diseased.image[b], "diseased with lesion labels")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.2), constrained_layout=True)
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    colours = ListedColormap(["none"] + [COLOURS[v] for v in sorted(MARKERS)])
    overlay = np.ma.masked_equal(diseased.labels[b], 0)
    axes[2].imshow(overlay, cmap=colours, vmin=0, vmax=len(MARKERS), alpha=0.55, aspect="auto",
                   interpolation="nearest")
    axes[2].plot(diseased.ilm[b], color="#00e5ff", lw=0.8, label="ILM")
    axes[2].plot(diseased.bm[b], color="#ff9500", lw=0.8, label="BM")
    present = sorted(int(v) for v in np.unique(diseased.labels[b]) if v)
    handles = [Patch(color=COLOURS[v], label=MARKERS[v]) for v in present]
    axes[2].legend(handles=handles + axes[2].get_lines(), loc="lower right", fontsize=9, framealpha=0.8)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    print(f"wrote {args.out} (B-scan {b})")


if __name__ == "__main__":
    main()
