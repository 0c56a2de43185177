"""A phantom cohort on disk: NIfTI volumes, label maps, true boundaries, manifest.

Layout under ``OUT``::

    images/<id>.nii.gz            uint8 grey levels 0..255 (read back as float32)
    labels/<id>_labels.nii.gz     uint8 label map (all zero for healthy volumes)
    boundaries/<id>.npz           ilm, bm [B, W] true rows; layers [n + 1, B, W]; layer_names;
                                  invalid [B, H, W] bool (fill/padding); artefacts (JSON text)
    manifest.csv                  volume_id, path, label, split, annotation_path, device, eye
    annotations.csv               volume_id, annotation_path
    markers.json                  {"1": "IRF", ...}

The folder is marked as a ``cohort`` (``octanogan.json``) before its first file and the manifest is
written last, so a folder with a manifest holds a complete cohort. ``make_cohort`` writes only into
a new or empty folder, or into an unfinished cohort of its own (marker, no manifest: a killed run),
which it completes; a finished cohort or anyone else's non-empty folder is refused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from octanogan.errors import InputError
from octanogan.fsutil import atomic_path, atomic_write_text
from octanogan.io import affine_from_spacing, write_nifti
from octanogan.io.manifest import MANIFEST
from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.outputs.folder import claim_output, write_marker
from octanogan.outputs.lock import scope
from octanogan.phantom.anatomy import LAYER_NAMES
from octanogan.phantom.artefacts import ArtefactConfig
from octanogan.phantom.config import DEFAULT_SHAPE, CohortConfig
from octanogan.phantom.lesions import MARKERS
from octanogan.phantom.volume import generate_volume

MANIFEST_COLUMNS = ("volume_id", "path", "label", "split", "annotation_path", "device", "eye")


def healthy_splits(n: int) -> list[str]:
    """Splits of ``n`` healthy volumes: about 60/20/20 train/val/test, at least one val and test."""
    if n < 3:
        return ["train", "val"][:n]
    n_held_out = max(1, round(0.2 * n))
    return ["train"] * (n - 2 * n_held_out) + ["val"] * n_held_out + ["test"] * n_held_out


def spacing_for_shape(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """Voxel size that keeps the default field of view (the phantom's anatomy scales with shape)."""
    return tuple(s * d / n for s, d, n in zip(DEFAULT_SPACING_MM, DEFAULT_SHAPE, shape))  # type: ignore[return-value]


def volume_seed(seed: int, diseased: bool, index: int) -> int:
    """Each volume's own seed, derived from the cohort seed, its group and its index."""
    return int(np.random.SeedSequence((seed, int(diseased), index)).generate_state(1)[0])


def _csv_text(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: row[c] for c in columns} for row in rows)
    return buffer.getvalue()


def claim_cohort(out_dir: str | Path) -> None:
    """Refuse an ``out_dir`` that holds a finished cohort or is a non-empty folder not ours.

    A cohort folder without ``manifest.csv`` is an unfinished cohort (a killed run): it may be
    completed, its files overwritten.
    """
    out_dir = Path(out_dir)
    if claim_output(out_dir, "cohort") and (out_dir / MANIFEST).exists():
        raise InputError(out_dir, "holds a phantom cohort already; choose a new folder")


@scope()
def make_cohort(
    out_dir: str | Path,
    n_healthy: int = CohortConfig.healthy,
    n_diseased: int = CohortConfig.diseased,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    seed: int = CohortConfig.seed,
    on_volume: Callable[[str], None] | None = None,
    artefacts: ArtefactConfig | None = None,
    speckle: str = CohortConfig.speckle,
) -> Path:
    """Write a phantom cohort to ``out_dir`` and return its manifest path.

    Healthy volumes are split train/val/test, diseased ones are all test. ``on_volume(volume_id)``
    is called after each volume is written (for progress bars). ``out_dir`` must be new, empty
    or an unfinished cohort (see :func:`claim_cohort`). ``artefacts`` (e.g.
    ``ArtefactConfig.realistic()``) adds real-world artefacts drawn from each volume's seed; with
    artefact sizes or letterboxing, volumes differ in shape and spacing (the field stays 6 x 6 mm).
    ``speckle="brightness"`` makes the speckle grain scale with the grey level, as in real exports.
    """
    out_dir = Path(out_dir)
    shape = CohortConfig(n_healthy, n_diseased, tuple(shape), seed, speckle).shape  # one validator
    claim_cohort(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_marker(out_dir, "cohort")
    spacing = spacing_for_shape(shape)
    plan = [(f"healthy_{i:03d}", False, i, split) for i, split in enumerate(healthy_splits(n_healthy))]
    plan += [(f"diseased_{i:03d}", True, i, "test") for i in range(n_diseased)]
    rows = []
    for position, (volume_id, diseased, index, split) in enumerate(plan):
        eye = "OD" if position % 2 == 0 else "OS"
        volume = generate_volume(shape, volume_seed(seed, diseased, index), diseased, spacing, eye,
                                 artefacts=artefacts, speckle=speckle)
        affine = affine_from_spacing(volume.spacing_mm)
        image_path, label_path = f"images/{volume_id}.nii.gz", f"labels/{volume_id}_labels.nii.gz"
        write_nifti(volume.image, affine, out_dir / image_path, dtype=np.uint8)  # lossless: 0..255
        write_nifti(volume.labels, affine, out_dir / label_path, dtype=np.uint8)
        with atomic_path(out_dir / "boundaries" / f"{volume_id}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, ilm=volume.ilm, bm=volume.bm, layers=volume.layer_boundaries,
                                layer_names=np.array(LAYER_NAMES), invalid=volume.invalid,
                                artefacts=np.array(json.dumps(volume.artefacts, sort_keys=True)))
        label = "diseased" if diseased else "healthy"
        rows.append({"volume_id": volume_id, "path": image_path, "label": label, "split": split,
                     "annotation_path": label_path, "device": "phantom", "eye": eye})
        if on_volume is not None:
            on_volume(volume_id)
    atomic_write_text(out_dir / "markers.json", json.dumps({str(k): v for k, v in MARKERS.items()}, indent=2))
    atomic_write_text(out_dir / "annotations.csv", _csv_text(rows, ("volume_id", "annotation_path")))
    manifest = out_dir / MANIFEST
    atomic_write_text(manifest, _csv_text(rows, MANIFEST_COLUMNS))
    return manifest
