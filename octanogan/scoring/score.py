"""``octanogan score``: anomaly maps and score tables for every volume of a manifest."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import OctanoganError
from octanogan.fsutil import atomic_path, atomic_write_text, safe_name
from octanogan.io import OCTVolume, read_volume, write_nifti
from octanogan.patches.grid import cut_patches, retina_grid
from octanogan.preprocess import PreprocessConfig, preprocess_volume, unflatten
from octanogan.scoring.aggregate import aggregate_scores
from octanogan.scoring.inversion import InversionConfig, LatentInverter
from octanogan.scoring.stitch import Stitcher

PATCH_COLUMNS = ["volume_id", "bscan", "y", "x", "score", "residual", "feature"]


@dataclass
class ScoreConfig:
    """Everything that decides a score; recorded in ``SCORES/settings.json``."""

    inversion: InversionConfig = field(default_factory=InversionConfig)
    stride: int = 32
    batch_size: int = 256
    weighting: str = "uniform"
    smooth_sigma: float = 0.0
    top_fraction: float = 0.1
    splits: tuple[str, ...] = ("val", "test")


@dataclass
class VolumeScores:
    """What scoring one volume produced (its files are already on disk)."""

    volume_id: str
    patches: pd.DataFrame
    anomaly_map: np.ndarray
    seconds: float


class VolumeScorer:
    """Scores volumes with one loaded model: preprocess, grid, invert in batches, stitch."""

    def __init__(self, inverter: LatentInverter, patch_size: int, preprocess: PreprocessConfig,
                 config: ScoreConfig, device: Any) -> None:
        self.inverter = inverter
        self.patch_size = patch_size
        self.preprocess = preprocess
        self.config = config
        self.device = device

    def score(self, volume: OCTVolume, volume_id: str) -> tuple[VolumeScores, Any]:
        """Anomaly map (input geometry), patch table and the preprocessing of one volume."""
        import torch

        start = time.perf_counter()
        self.inverter.reseed(volume_id)
        prep = preprocess_volume(volume.data, self.preprocess)
        centres = retina_grid(prep.ilm_flat, prep.bm_row, volume.shape[1], self.patch_size,
                              self.config.stride)
        stitcher = Stitcher(volume.shape, self.patch_size, self.config.weighting)
        parts = []
        for begin in range(0, len(centres), self.config.batch_size):
            batch = centres[begin : begin + self.config.batch_size]
            x = torch.from_numpy(cut_patches(prep.flat, batch, self.patch_size))
            result = self.inverter.invert(x[:, None].to(self.device))
            stitcher.add(result.residual_map.cpu().numpy(), batch)
            parts.append(np.stack([result.score.cpu().numpy(), result.residual.cpu().numpy(),
                                   result.feature.cpu().numpy()], axis=1))
        values = np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)
        table = pd.DataFrame({"volume_id": volume_id, "bscan": centres[:, 0], "y": centres[:, 1],
                              "x": centres[:, 2], "score": values[:, 0], "residual": values[:, 1],
                              "feature": values[:, 2]}, columns=PATCH_COLUMNS)
        anomaly = unflatten(self._smoothed(stitcher), prep.shifts, fill=0.0).astype(np.float32)
        return VolumeScores(volume_id, table, anomaly, time.perf_counter() - start), prep


    def _smoothed(self, stitcher: Stitcher) -> np.ndarray:
        """The stitched residual, optionally Gaussian-smoothed within each B-scan.

        Per-pixel residuals are dominated by speckle; smoothing (σ in pixels) trades resolution
        for a map whose high values mark structures rather than single noisy pixels. Smoothing is
        normalised by the covered area so that uncovered pixels do not pull the edges down.
        """
        result = stitcher.result()
        sigma = self.config.smooth_sigma
        if sigma <= 0:
            return result
        from scipy import ndimage

        covered = (stitcher.weight > 0).astype(np.float32)
        blur = (0.0, sigma, sigma)
        total = ndimage.gaussian_filter(result * covered, blur)
        norm = ndimage.gaussian_filter(covered, blur)
        out = np.zeros_like(result)
        np.divide(total, norm, out=out, where=(covered > 0) & (norm > 1e-6))
        return out


class ScoresFolder:
    """The on-disk layout of ``octanogan score`` output (docs/formats.md)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def patches_csv(self, volume_id: str) -> Path:
        return self.root / "patches" / f"{safe_name(volume_id)}.csv"

    def map_path(self, volume_id: str, kind: str) -> Path:
        suffix = "npz" if kind == "geometry" else "nii.gz"
        return self.root / "maps" / f"{safe_name(volume_id)}_{kind}.{suffix}"

    def is_done(self, volume_id: str) -> bool:
        """A volume is finished once its patch table exists (it is written last)."""
        return self.patches_csv(volume_id).is_file()

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Record settings; refuse to mix outputs made with different ones."""
        path = self.root / "settings.json"
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            if {k: v for k, v in old.items() if k != "versions"} != \
               {k: v for k, v in settings.items() if k != "versions"}:
                raise OctanoganError(f"{self.root}: holds scores made with other settings "
                                     "(see its settings.json); choose a new --out folder")
        atomic_write_text(path, json.dumps(settings, indent=2))

    def write_volume(self, volume: OCTVolume, scores: VolumeScores, prep: Any) -> None:
        """Maps first, patch table last: the table's presence marks the volume finished."""
        vid = scores.volume_id
        write_nifti(scores.anomaly_map, volume.affine, self.map_path(vid, "anomaly"))
        write_nifti(prep.retina_mask, volume.affine, self.map_path(vid, "retina"), dtype=np.uint8)
        with atomic_path(self.map_path(vid, "geometry")) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, shifts=prep.shifts, bm_row=prep.bm_row,
                                    ilm=prep.ilm, bm=prep.bm)
        with atomic_path(self.patches_csv(vid)) as tmp:
            scores.patches.to_csv(tmp, index=False)

    def write_tables(self, manifest: pd.DataFrame, top_fraction: float) -> pd.DataFrame:
        """Rebuild volumes.csv and bscans.csv from the finished volumes' patch tables."""
        volumes, bscans = [], []
        for row in manifest.itertuples(index=False):
            if not self.is_done(row.volume_id):
                continue
            patches = pd.read_csv(self.patches_csv(row.volume_id))
            per_bscan, volume_score = aggregate_scores(patches, top_fraction)
            bscans += [(row.volume_id, b, v) for b, v in zip(per_bscan["bscan"], per_bscan["score"])]
            volumes.append((row.volume_id, safe_name(row.volume_id), row.label, row.split, row.path,
                            row.annotation_path, volume_score, len(patches)))
        table = pd.DataFrame(volumes, columns=["volume_id", "safe_id", "label", "split", "path",
                                               "annotation_path", "score", "n_patches"])
        with atomic_path(self.root / "volumes.csv") as tmp:
            table.to_csv(tmp, index=False)
        with atomic_path(self.root / "bscans.csv") as tmp:
            pd.DataFrame(bscans, columns=["volume_id", "bscan", "score"]).to_csv(tmp, index=False)
        return table


@dataclass
class ScoreSummary:
    scores_dir: Path
    scored: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]
    n_patches: int
    seconds: float


def _weights_hash(run_dir: Path) -> str:
    """SHA-256 over the run's network weights: which model made these scores."""
    import hashlib

    from octanogan.fsutil import sha256_file

    digest = hashlib.sha256()
    for name in ("generator.pt", "discriminator.pt", "encoder.pt"):
        if (run_dir / name).is_file():
            digest.update(sha256_file(run_dir / name).encode())
    return digest.hexdigest()


def score_manifest(
    run_dir: str | Path,
    manifest: pd.DataFrame,
    out_dir: str | Path,
    config: ScoreConfig,
    device_name: str = "auto",
    keep_going: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> ScoreSummary:
    """Score every volume of ``manifest`` in the configured splits into ``out_dir``.

    Finished volumes are skipped, so a killed run resumes where it stopped. A volume that fails
    stops the run with its error, or with ``keep_going`` is reported and skipped. ``shard=(i, n)``
    scores only every n-th volume from the i-th, so n jobs can share a cohort and one folder; a
    last unsharded run (or ``evaluate``) then finds them all done and writes the tables.
    """
    import torch

    index, count = shard
    if not 0 <= index < count:
        raise OctanoganError(f"--shard must be i/N with 0 <= i < N, got {index}/{count}")
    from octanogan.device import resolve_device
    from octanogan.training import load_run
    from octanogan.training.run_folder import versions

    device = resolve_device(device_name)
    run = load_run(run_dir, device=device)
    torch.manual_seed(config.inversion.seed)
    patch_size = run.patch_size
    preprocess = PreprocessConfig(**run.record.get("store", {}).get("preprocess", {}))
    inverter = LatentInverter(run.generator, run.discriminator, run.encoder, run.latent_dim,
                              config.inversion)
    scorer = VolumeScorer(inverter, patch_size, preprocess, config, device)
    folder = ScoresFolder(Path(out_dir))
    folder.check_settings({
        "run_dir": str(Path(run_dir).resolve()), "run_hash": _weights_hash(Path(run_dir)),
        "patch_size": patch_size, "preprocess": dataclasses.asdict(preprocess),
        **{k: v for k, v in dataclasses.asdict(config).items() if k != "splits"},
        "versions": versions(),
    })
    selected = manifest[manifest["split"].isin(config.splits)].reset_index(drop=True)
    start = time.perf_counter()
    scored, skipped, failed, n_patches = [], [], [], 0
    rows = list(selected.itertuples(index=False))[index::count]
    for row in progress(rows) if progress else rows:
        if folder.is_done(row.volume_id):
            skipped.append(row.volume_id)
            continue
        try:
            volume = read_volume(row.path)
            result, prep = scorer.score(volume, row.volume_id)
            folder.write_volume(volume, result, prep)
        except OctanoganError as exc:
            if not keep_going:
                raise
            failed.append((row.volume_id, str(exc)))
            continue
        scored.append(row.volume_id)
        n_patches += len(result.patches)
    folder.write_tables(selected, config.top_fraction)
    return ScoreSummary(folder.root, scored, skipped, failed, n_patches, time.perf_counter() - start)
