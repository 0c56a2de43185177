"""``octanogan score``: anomaly maps and score tables for every volume of a manifest."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError, OctanoganError, Refusal, about
from octanogan.fsutil import relative_path
from octanogan.io import OCTVolume, read_volume
from octanogan.outputs.lock import scope
from octanogan.outputs.scores import PATCH_COLUMNS, ScoresFolder, check_file_names
from octanogan.patches.grid import check_fits, cut_patches, patch_centres
from octanogan.preprocess import PreprocessConfig, preprocess_volume, unflatten
from octanogan.scoring.aggregate import aggregate_scores
from octanogan.scoring.config import ScoreConfig
from octanogan.scoring.inversion import LatentInverter
from octanogan.scoring.stitch import Stitcher


@dataclass
class VolumeScores:
    """What scoring one volume produced (its files are already on disk)."""

    volume_id: str
    patches: pd.DataFrame
    anomaly_map: np.ndarray
    seconds: float
    #: Seconds spent per stage: preprocess, invert (networks), stitch (maps, smoothing, unflatten).
    stages: dict[str, float] = field(default_factory=dict)


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
        """Anomaly map (input geometry), patch table and the preprocessing of one volume.

        Every B-scan is scored, those failing quality control too (the tables flag them).
        """
        import torch

        start = time.perf_counter()
        self.inverter.reseed(volume_id)
        prep = preprocess_volume(volume.data, self.preprocess, volume.spacing_mm)
        stages = {"preprocess": time.perf_counter() - start, "invert": 0.0}
        clock = time.perf_counter()
        centres = patch_centres(prep, self.patch_size, self.config.stride,
                                self.preprocess.max_patch_invalid)
        stitcher = Stitcher(volume.shape, self.patch_size, self.config.weighting)
        parts = []
        for begin in range(0, len(centres), self.config.batch_size):
            batch = centres[begin : begin + self.config.batch_size]
            x = torch.from_numpy(cut_patches(prep.flat, batch, self.patch_size))
            inverting = time.perf_counter()
            result = self.inverter.invert(x[:, None].to(self.device))
            stitched = result.residual_map if self.config.anomaly_map == "absolute" else result.difference
            stitched = stitched.cpu().numpy()  # (waits for the device: the inversion is done)
            stages["invert"] += time.perf_counter() - inverting
            stitcher.add(stitched, batch)
            parts.append(np.stack([result.score.cpu().numpy(), result.residual.cpu().numpy(),
                                   result.feature.cpu().numpy()], axis=1))
        values = np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)
        table = pd.DataFrame({"volume_id": volume_id, "bscan": centres[:, 0], "y": centres[:, 1],
                              "x": centres[:, 2], "score": values[:, 0], "residual": values[:, 1],
                              "feature": values[:, 2]}, columns=list(PATCH_COLUMNS))
        anomaly = unflatten(self._anomaly(stitcher), prep.shifts, fill=0.0).astype(np.float32)
        anomaly[prep.invalid] = 0.0  # export fill is not image: no anomaly there
        stages["stitch"] = time.perf_counter() - clock - stages["invert"]
        return VolumeScores(volume_id, table, anomaly, time.perf_counter() - start, stages), prep


    def _anomaly(self, stitcher: Stitcher) -> np.ndarray:
        """The configured anomaly map from the stitched (absolute or signed) difference."""
        smoothed = self._smoothed(stitcher)
        if self.config.anomaly_map == "darker":
            return np.maximum(-smoothed, 0.0)
        if self.config.anomaly_map == "brighter":
            return np.maximum(smoothed, 0.0)
        return smoothed

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


@dataclass
class ScoreSummary:
    scores_dir: Path
    scored: list[str]
    skipped: list[str]
    failed: list[Refusal]
    n_patches: int
    seconds: float
    #: volumes scored in this call with B-scans failing QC: "2 of 49 B-scans fail quality control (...)"
    flagged: dict[str, str] = field(default_factory=dict)

    def flagged_lines(self) -> list[str]:
        """One line per volume scored with B-scans that fail quality control."""
        return [f"  {volume_id}: {failures}; scored and flagged in bscans.csv"
                for volume_id, failures in self.flagged.items()]


def _run_preprocessing(record: dict[str, Any], run_dir: Path) -> PreprocessConfig:
    """The preprocessing the run was trained with; a run made by an octanogan whose settings
    no longer exist is refused in one line (its patches cannot be cut the same way)."""
    from octanogan.config import from_dict
    from octanogan.errors import ConfigError

    try:
        return from_dict(PreprocessConfig, record.get("store", {}).get("preprocess", {}),
                         str(run_dir / "run.json"))
    except ConfigError as exc:
        raise InputError(run_dir, f"was trained with preprocessing this octanogan does not have "
                                  f"({exc.setting}): run extract and train again") from None


def _shard(shard: tuple[int, int], ranks: Any) -> tuple[int, int]:
    """This job's share of the cohort: ``--shard i/N``, or the torchrun rank's."""
    if ranks.active:
        if shard != (0, 1):
            raise OctanoganError("--shard splits a cohort between independent jobs; under torchrun "
                                 "the ranks split it already: leave --shard out")
        shard = (ranks.rank, ranks.world_size)
    index, count = shard
    if not 0 <= index < count:
        raise OctanoganError(f"--shard must be i/N with 0 <= i < N, got {index}/{count}")
    return index, count


def open_scorer(run_dir: str | Path, config: ScoreConfig, device: Any) -> tuple[VolumeScorer, dict[str, Any]]:
    """The run's networks wrapped for scoring, and the settings a scores folder records for them;
    a run that cannot serve ``config`` is refused before any volume is read."""
    import torch

    from octanogan.outputs.run import ENCODER, weights_hash
    from octanogan.provenance import versions
    from octanogan.training import load_run

    if not Path(run_dir).is_dir():
        raise InputError(run_dir, "run folder not found")
    if config.inversion.needs_encoder and not (Path(run_dir) / ENCODER).is_file():
        raise InputError(run_dir, f"mode '{config.inversion.mode}' needs an encoder, but this run was "
                                  "trained without one; use --mode iterative or train an encoder")
    run = load_run(run_dir, device=device)
    torch.manual_seed(config.inversion.seed)
    preprocess = _run_preprocessing(run.record, Path(run_dir))
    inverter = LatentInverter(run.generator, run.discriminator, run.encoder, run.latent_dim,
                              config.inversion)
    settings = {
        "run_hash": weights_hash(Path(run_dir)), "patch_size": run.patch_size,
        "preprocess": dataclasses.asdict(preprocess),
        **{k: v for k, v in dataclasses.asdict(config).items() if k != "splits"},
        "versions": versions(),
    }
    return VolumeScorer(inverter, run.patch_size, preprocess, config, device), settings


@scope()
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
    last unsharded run (or ``evaluate``) then finds them all done and writes the tables. Under
    ``torchrun`` the ranks split the volumes the same way, each on its own device, and rank 0
    writes the tables once all are done (:mod:`octanogan.distributed`).
    """
    from octanogan.device import resolve_device
    from octanogan.distributed import barrier, rank_device, ranks_from_env
    from octanogan.outputs.folder import claim_output

    ranks = ranks_from_env()
    index, count = _shard(shard, ranks)
    out_dir = Path(out_dir)
    claim_output(out_dir, "scores", [run_dir], shared=count > 1)  # shards share a folder
    selected = manifest[manifest["split"].isin(config.splits)].reset_index(drop=True)
    check_file_names(selected["volume_id"], out_dir)
    scorer, settings = open_scorer(run_dir, config, rank_device(resolve_device(device_name), ranks))
    folder = ScoresFolder(out_dir)
    folder.check_settings({"run_dir": relative_path(run_dir, out_dir), **settings})
    start = time.perf_counter()
    summary = ScoreSummary(folder.root, [], [], [], 0, 0.0)
    rows = list(selected.itertuples(index=False))[index::count]
    for row in progress(rows) if progress else rows:
        if folder.is_done(row.volume_id):
            summary.skipped.append(row.volume_id)
            continue
        try:
            result, prep = _score_volume(scorer, folder, row)
        except OctanoganError as exc:
            if not keep_going:
                raise
            summary.failed.append(Refusal(str(row.path), str(exc), row.volume_id))
            continue
        summary.scored.append(row.volume_id)
        summary.n_patches += len(result.patches)
        if failures := prep.qc.describe_failures():
            summary.flagged[row.volume_id] = failures
    barrier(ranks)  # every rank's volumes are on disk
    if ranks.is_main:
        folder.write_tables(selected, functools.partial(aggregate_scores, fraction=config.top_fraction))
    summary.seconds = time.perf_counter() - start
    return summary


def _score_volume(scorer: VolumeScorer, folder: ScoresFolder, row: Any) -> tuple[VolumeScores, Any]:
    """Read, score and write one manifest row's volume; errors name its file."""
    volume = read_volume(row.path)
    with about(row.path):
        check_fits(volume.shape, scorer.patch_size)
        result, prep = scorer.score(volume, row.volume_id)
    if result.patches.empty:
        raise InputError(row.path, "no patch of retina to score (retina not found, or hidden by "
                                   "export fill)")
    folder.write_volume(row.volume_id, volume.affine, result.anomaly_map, prep.retina_mask,
                        prep.geometry(), result.patches)
    return result, prep
