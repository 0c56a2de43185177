"""Draw docs/figures/phantom_artefacts.png: phantom B-scans with real-world artefacts and their truth.

Usage: python scripts/make_artefact_figure.py [--out docs/figures/phantom_artefacts.png]

Each panel switches one or two artefacts on (chance 1) for one seed; the true ILM (cyan) and BM
(orange) are drawn over the image, NaN where the truth has no BM (optic disc) or no image (padding),
and the pixels marked ``invalid`` (fill, padding) are tinted red in the right half of each panel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from octanogan.fsutil import atomic_path  # noqa: E402
from octanogan.phantom import generate_volume  # noqa: E402
from octanogan.phantom.artefacts import ArtefactConfig  # noqa: E402

#: (title, config, seed, diseased, shape); the B-scan shown is the one with the most artefact.
PANELS = (
    ("registration fill wedge", ArtefactConfig(fill_wedges=1.0), 3, False, (3, 496, 512)),
    ("fill wedge + tilt", ArtefactConfig(fill_wedges=1.0, tilt=1.0), 1, True, (3, 496, 768)),
    ("letterbox (zero padding)", ArtefactConfig(letterbox=1.0), 2, False, (3, 512, 512)),
    ("high myopia bowl + tilt", ArtefactConfig(curvature=1.0, tilt=1.0), 4, False, (3, 496, 768)),
    ("optic disc: cup, no BM", ArtefactConfig(optic_disc=1.0), 5, False, (5, 496, 768)),
    ("vessel shadows + vignetting", ArtefactConfig(vessel_shadows=1.0, vignetting=1.0), 6, True,
     (3, 496, 512)),
    ("low-SNR B-scan", ArtefactConfig(low_snr=1.0, low_snr_bscans=0.0), 7, True, (3, 496, 512)),
    ("realistic mix, 248 x 256", ArtefactConfig.realistic(), 8, True, (3, 248, 256)),
    ("realistic mix, 1024 x 1536", ArtefactConfig.realistic(), 12, False, (3, 1024, 1536)),
)


def pick_bscan(volume) -> int:
    """The B-scan with the most invalid pixels, else one without BM (disc), else a low-SNR one."""
    invalid = volume.invalid.sum(axis=(1, 2))
    if invalid.max() > 0:
        return int(np.argmax(invalid))
    no_bm = np.isnan(volume.bm).sum(axis=1)
    if no_bm.max() > 0:
        return int(np.argmax(no_bm))
    low = volume.artefacts.get("low_snr_bscans") or [volume.image.shape[0] // 2]
    return int(low[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures/phantom_artefacts.png"))
    args = parser.parse_args()

    fig, axes = plt.subplots(3, 3, figsize=(18, 13), constrained_layout=True)
    for ax, (title, config, seed, diseased, shape) in zip(axes.ravel(), PANELS):
        volume = generate_volume(shape, seed=seed, diseased=diseased, artefacts=config)
        b = pick_bscan(volume)
        image = volume.image[b]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
        half = np.zeros((*image.shape, 4))
        half[..., 0] = 1.0
        half[..., 3] = 0.35 * volume.invalid[b]
        half[:, : image.shape[1] // 2, 3] = 0
        ax.imshow(half, aspect="auto", interpolation="nearest")
        ax.plot(volume.ilm[b], color="#00e5ff", lw=0.9, label="true ILM")
        ax.plot(volume.bm[b], color="#ff9500", lw=0.9, label="true BM")
        values = sorted({w["value"] for w in volume.artefacts["fill_wedges"] if w["bscan"] == b})
        fill = f", fill value {'/'.join(map(str, values))}" if values else ""
        ax.set_title(f"{title}\n{image.shape[0]} x {image.shape[1]}, seed {seed}, B-scan {b}{fill}",
                     fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].legend(loc="lower right", fontsize=9, framealpha=0.8)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=60, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
