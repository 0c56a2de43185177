"""Draw detected ILM/BM and the flattened result on real and phantom B-scans.

Writes docs/figures/flatten_real.png (Topcon crops and a Heidelberg line scan from
../shared/data, with the device's own segmentation dashed) and docs/figures/flatten_phantom.png.

    .venv/bin/python scripts/make_flatten_figure.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from octanogan.fsutil import atomic_path  # noqa: E402
from octanogan.io import read_volume  # noqa: E402
from octanogan.preprocess import Preprocessed, preprocess_volume  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FIGURES = REPO / "docs" / "figures"


def draw_row(axes, result: Preprocessed, bscan: int, title: str,
             reference: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Original with ILM (cyan) / BM (yellow), then the flattened B-scan with the BM row."""
    columns = np.arange(result.image.shape[2])
    left, right = axes
    left.imshow(result.image[bscan], cmap="gray", vmin=-1, vmax=1, aspect="auto")
    left.plot(columns, result.ilm[bscan], color="cyan", lw=0.8, label="ILM (detected)")
    left.plot(columns, result.bm[bscan], color="yellow", lw=0.8, label="BM (detected)")
    if reference is not None:
        left.plot(columns, reference[0], "m--", lw=0.8, label="device ILM/BM")
        left.plot(columns, reference[1], "m--", lw=0.8)
    left.set_title(f"{title}: original", fontsize=8)
    right.imshow(result.flat[bscan], cmap="gray", vmin=-1, vmax=1, aspect="auto")
    right.plot(columns, result.ilm_flat[bscan], color="cyan", lw=0.8)
    right.axhline(result.bm_row, color="yellow", lw=0.8)
    right.set_title(f"{title}: flattened (BM at row {result.bm_row})", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def save(fig, name: str) -> None:
    target = FIGURES / name
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {target}")


def real_figure() -> None:
    import eyepy as ep

    topcon = preprocess_volume(read_volume(DATA / "topcon_healthy_bscans").data)
    heidelberg = ep.import_heyex_vol(DATA / "heidelberg_vol" / "Linescan_1.vol")
    heidelberg_result = preprocess_volume(np.asarray(heidelberg.data, dtype=np.float32))
    device = (heidelberg.layers["ILM"].data[0], heidelberg.layers["BM"].data[0])
    bscans = [0, 30, 53, 70, 95]
    fig, axes = plt.subplots(len(bscans) + 1, 2, figsize=(9, 3.0 * (len(bscans) + 1)))
    draw_row(axes[0], heidelberg_result, 0, "Heidelberg line scan", reference=device)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    for row, bscan in zip(axes[1:], bscans):
        draw_row(row, topcon, bscan, f"Topcon B-scan {bscan}")
    save(fig, "flatten_real.png")


def phantom_figure() -> None:
    from octanogan.phantom import generate_volume

    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    for row, diseased in zip(axes, (False, True)):
        phantom = generate_volume(seed=1, diseased=diseased)
        result = preprocess_volume(phantom.image)
        bscan = phantom.image.shape[0] // 2
        truth = (phantom.ilm[bscan], phantom.bm[bscan])
        draw_row(row, result, bscan, "diseased phantom" if diseased else "healthy phantom",
                 reference=truth)
    axes[0, 0].legend(["ILM (detected)", "BM (detected)", "true ILM/BM"], fontsize=6,
                      loc="lower left")
    save(fig, "flatten_phantom.png")


def main() -> int:
    if not DATA.is_dir():
        print(f"real OCT samples not found at {DATA}; this script needs ../shared/data",
              file=sys.stderr)
        return 1
    real_figure()
    phantom_figure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
