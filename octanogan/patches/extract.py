"""``octanogan extract``: healthy training patches from the volumes a manifest lists."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from octanogan import __version__
from octanogan.errors import InputError, OctanoganError, Refusal, about
from octanogan.fsutil import naming_failures, relative_path, sha256_file
from octanogan.io import read_volume
from octanogan.io.manifest import load_manifest, select
from octanogan.outputs.folder import atomic_dir, claim_output
from octanogan.patches.config import ExtractConfig
from octanogan.patches.grid import check_fits, cut_patches, patch_centres
from octanogan.patches.store import KIND, QUALITY, PatchStoreWriter
from octanogan.preprocess import Preprocessed, preprocess_volume


@dataclass
class ExtractSummary:
    store: Path
    n_volumes: int
    n_patches: int
    seconds: float
    #: per volume id with B-scans left out: "3 of 49 B-scans fail quality control (...)"
    skipped_bscans: dict[str, str] = field(default_factory=dict)
    #: volumes left out with ``keep_going``, and why
    refused: list[Refusal] = field(default_factory=list)

    def skipped_lines(self) -> list[str]:
        """One line per volume with B-scans left out by quality control."""
        return [f"  {volume_id}: {failures}; they gave no patches"
                for volume_id, failures in self.skipped_bscans.items()]


def extract_store(
    manifest_path: str | Path,
    out_dir: str | Path,
    config: ExtractConfig | None = None,
    progress: Callable | None = None,
    keep_going: bool = False,
) -> ExtractSummary:
    """Cut patches from the selected volumes into a new patch store at ``out_dir``.

    B-scans that fail quality control (``octanogan.preprocess.quality``) give no patches; a
    volume whose every B-scan fails, or that cannot be read, stops the extraction with its
    error, or with ``keep_going`` is refused, listed and left out. Volumes are processed one at
    a time and patches go to disk shard by shard, so memory does not grow with the cohort. The
    store appears at ``out_dir`` only when complete.
    """
    config = config or ExtractConfig()
    start = time.perf_counter()
    manifest = select(load_manifest(manifest_path), label=config.label, split=config.split)
    if manifest.empty:
        raise InputError(manifest_path, f"lists no {config.label} volumes in split '{config.split}'")
    rows = list(manifest.itertuples(index=False))
    claim_output(out_dir, KIND, [manifest_path, *(row.path for row in rows)])
    inputs, quality, skipped, refused = [], [], {}, []
    with atomic_dir(out_dir, KIND) as tmp:
        writer = PatchStoreWriter(tmp, config.patch_size, config.shard_size)
        for row in progress(rows, desc="extract", unit="vol") if progress else rows:
            try:
                prep = _preprocess(row.path, config)
            except OctanoganError as exc:
                if not keep_going:
                    raise
                refused.append(Refusal(str(row.path), str(exc), row.volume_id))
                continue
            if failures := prep.qc.describe_failures():
                skipped[row.volume_id] = failures
            quality += [{"volume_id": row.volume_id, **record} for record in prep.qc.records()]
            centres = patch_centres(prep, config.patch_size, config.stride,
                                    config.preprocess.max_patch_invalid)
            for bscan in np.flatnonzero(prep.qc.passed):
                here = centres[centres[:, 0] == bscan]
                patches = cut_patches(prep.flat, here, config.patch_size)
                writer.add(patches, row.volume_id, bscan, here[:, 1], here[:, 2])
            inputs.append({"volume_id": row.volume_id, "path": relative_path(row.path, out_dir),
                           "sha256": sha256_file(row.path),
                           "bscans_failing_qc": int((~prep.qc.passed).sum())})
        if not inputs:
            raise InputError(manifest_path, f"none of its {len(rows)} volume(s) could be used")
        with naming_failures(tmp / QUALITY):
            pd.DataFrame(quality).to_csv(tmp / QUALITY, index=False)
        settings = {
            "stride": config.stride,
            "label": config.label,
            "split": config.split,
            "preprocess": dataclasses.asdict(config.preprocess),
            "manifest": relative_path(manifest_path, out_dir),
            "inputs": inputs,
            "refused": [{"volume_id": r.volume_id, "problem": r.reason} for r in refused],
            "octanogan_version": __version__,
        }
        n_patches = writer.close(settings)
    return ExtractSummary(Path(out_dir), len(inputs), n_patches, time.perf_counter() - start,
                          skipped, refused)


def _preprocess(path: Path, config: ExtractConfig) -> Preprocessed:
    """Read and preprocess one volume; refuse it when no B-scan passes quality control."""
    volume = read_volume(path)
    with about(path):
        check_fits(volume.shape, config.patch_size)
        prep = preprocess_volume(volume.data, config.preprocess, volume.spacing_mm)
    if not prep.qc.passed.any():
        raise InputError(path, f"every B-scan fails quality control ({prep.qc.failure_text()})")
    return prep
