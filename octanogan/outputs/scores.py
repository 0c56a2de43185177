"""The scores folder written by ``octanogan score``: its file names, tables and maps.

Layout (docs/formats.md)::

    octanogan.json                 marker (kind "scores")
    settings.json                  everything that decided the scores
    maps/<stem>_anomaly.nii.gz     per-voxel residuals on the input grid
    maps/<stem>_retina.nii.gz      retina mask
    maps/<stem>_geometry.npz       flattening shifts, bm_row, ilm, bm
    patches/<stem>.csv             one row per patch; written last: it marks the volume finished
    volumes.csv, bscans.csv        rebuilt from the finished volumes' patch tables

``<stem>`` is :func:`octanogan.fsutil.safe_name` of the volume id, which is collision-free;
ids that would still share a file on a case-insensitive disk are refused up front.
Paths in volumes.csv are relative to the folder where possible and resolved when read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import atomic_path, atomic_write_text, read_json, relative_path, safe_name
from octanogan.outputs.folder import write_marker

KIND = "scores"
SETTINGS, VOLUMES, BSCANS = "settings.json", "volumes.csv", "bscans.csv"
PATCH_COLUMNS = ("volume_id", "bscan", "y", "x", "score", "residual", "feature")
VOLUME_COLUMNS = ("volume_id", "safe_id", "label", "split", "path", "annotation_path", "score",
                  "n_patches", "bscans_failing_qc")
BSCAN_COLUMNS = ("volume_id", "bscan", "score")
#: Quality control of each scored B-scan (``octanogan.preprocess.quality``), beside its score.
BSCAN_QC_COLUMNS = ("qc_passed", "qc_reasons")
MAP_KINDS = {"anomaly": "nii.gz", "retina": "nii.gz", "geometry": "npz"}
#: Settings that may differ between runs writing into one folder (they do not change a score).
IGNORED_SETTINGS = ("versions", "batch_size")


def check_file_names(volume_ids: Iterable[str], where: str | Path) -> None:
    """Refuse ids whose file names would collide (also on case-insensitive file systems)."""
    seen: dict[str, str] = {}
    for volume_id in volume_ids:
        key = safe_name(volume_id).casefold()
        if key in seen and seen[key] != volume_id:
            raise InputError(where, f"volume ids '{seen[key]}' and '{volume_id}' would share the "
                                    "output file names; rename one of them")
        seen[key] = volume_id


def resolve(root: Path, value: str) -> Path:
    """A path from volumes.csv: absolute as stored, or relative to the scores folder."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def read_geometry(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a volume's geometry file (ILM, BM, shifts, export fill, QC); one InputError
    naming the file when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as geometry:
            return {name: np.asarray(geometry[name]) for name in geometry.files}
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable .npz file ({exc})") from exc


class ScoresFolder:
    """Names of the files of one scores folder, and the writer side of ``octanogan score``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def patches_csv(self, volume_id: str) -> Path:
        return self.patch_file(safe_name(volume_id))

    def patch_file(self, stem: str) -> Path:
        return self.root / "patches" / f"{stem}.csv"

    def map_path(self, volume_id: str, kind: str) -> Path:
        return self.map_file(safe_name(volume_id), kind)

    def map_file(self, stem: str, kind: str) -> Path:
        """``maps/<stem>_<kind>.<ext>`` for kind anomaly, retina or geometry."""
        return self.root / "maps" / f"{stem}_{kind}.{MAP_KINDS[kind]}"

    def is_done(self, volume_id: str) -> bool:
        """A volume is finished once its patch table exists (it is written last)."""
        return self.patches_csv(volume_id).is_file()

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Record settings and mark the folder; refuse to mix scores made with other settings."""
        path = self.root / SETTINGS
        if path.is_file():
            old = read_json(path, hint="choose a new --out folder")

            def deciding(values: dict[str, Any]) -> dict[str, Any]:
                return {k: v for k, v in values.items() if k not in IGNORED_SETTINGS}

            if not isinstance(old, dict) or deciding(old) != deciding(settings):
                raise OctanoganError(f"{self.root}: holds scores made with other settings "
                                     f"(see its {SETTINGS}); choose a new --out folder")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_marker(self.root, KIND)
        atomic_write_text(path, json.dumps(settings, indent=2))

    def write_volume(self, volume_id: str, affine: np.ndarray, anomaly: np.ndarray,
                     retina: np.ndarray, geometry: dict[str, np.ndarray], patches: pd.DataFrame) -> None:
        """Maps first, patch table last: the table's presence marks the volume finished."""
        from octanogan.io import write_nifti

        write_nifti(anomaly, affine, self.map_path(volume_id, "anomaly"))
        write_nifti(retina, affine, self.map_path(volume_id, "retina"), dtype=np.uint8)
        with atomic_path(self.map_path(volume_id, "geometry")) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **geometry)
        with atomic_path(self.patches_csv(volume_id)) as tmp:
            patches.to_csv(tmp, index=False, columns=list(PATCH_COLUMNS))

    def write_tables(self, manifest: pd.DataFrame,
                     aggregate: Callable[[pd.DataFrame], tuple[pd.DataFrame, float]]) -> pd.DataFrame:
        """Rebuild volumes.csv and bscans.csv from the finished volumes' patch tables;
        ``aggregate`` turns a patch table into B-scan scores and the volume score (scoring's rule)."""
        volumes, bscans = [], []
        for row in manifest.itertuples(index=False):
            if not self.is_done(row.volume_id):
                continue
            patches = pd.read_csv(self.patches_csv(row.volume_id))
            per_bscan, volume_score = aggregate(patches)
            reasons = self.quality(row.volume_id).reasons
            bscans += [(row.volume_id, b, v, not reasons[b], ";".join(reasons[b]))
                       for b, v in zip(per_bscan["bscan"], per_bscan["score"])]
            volumes.append((row.volume_id, safe_name(row.volume_id), row.label, row.split,
                            relative_path(row.path, self.root),
                            relative_path(row.annotation_path, self.root) if row.annotation_path else "",
                            volume_score, len(patches), sum(bool(r) for r in reasons)))
        table = pd.DataFrame(volumes, columns=list(VOLUME_COLUMNS))
        with atomic_path(self.root / VOLUMES) as tmp:
            table.to_csv(tmp, index=False)
        with atomic_path(self.root / BSCANS) as tmp:
            pd.DataFrame(bscans, columns=[*BSCAN_COLUMNS, *BSCAN_QC_COLUMNS]).to_csv(tmp, index=False)
        return table

    def geometry(self, stem: str) -> dict[str, np.ndarray]:
        """The arrays of ``maps/<stem>_geometry.npz`` (ILM, BM, export fill, QC); one InputError
        naming the file when it cannot be read."""
        return read_geometry(self.map_file(stem, "geometry"))

    def quality(self, volume_id: str) -> Any:
        """The QC of a scored volume's B-scans (``Quality``), kept in its geometry file."""
        from octanogan.preprocess.quality import Quality

        try:
            return Quality.from_arrays(self.geometry(safe_name(volume_id)))
        except KeyError as exc:
            raise InputError(self.map_path(volume_id, "geometry"),
                             f"holds no quality control ({exc}); score this volume again into a new "
                             "folder") from None


def read_table(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    """A CSV of the scores folder, with clear errors for a missing file or column."""
    if not path.is_file():
        raise InputError(path, "not found; is this a folder written by `octanogan score`?")
    try:
        table = pd.read_csv(path, dtype={"volume_id": str, "safe_id": str, "path": str,
                                         "annotation_path": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable CSV ({exc})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing} (have {list(table.columns)})")
    if "score" in table.columns:
        scores = pd.to_numeric(table["score"], errors="coerce")
        if scores.isna().any():
            row = int(np.flatnonzero(scores.isna().to_numpy())[0]) + 1
            raise InputError(path, f"row {row}: score is not a number")
        table["score"] = scores.astype(np.float64)
    return table


class ScoreFiles(ScoresFolder):
    """Read access to a finished scores folder: tables, settings and per-volume files."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        if not self.root.is_dir():
            raise InputError(self.root, "scores folder not found")
        self.settings = self._read_settings()
        volumes = read_table(self.root / VOLUMES, ("volume_id", "score"))
        repeated = volumes["volume_id"][volumes["volume_id"].duplicated()].tolist()
        if repeated:
            raise InputError(self.root / VOLUMES, f"volume id(s) listed twice: {repeated[:5]}")
        self.volumes = volumes.set_index("volume_id", drop=False)
        self.bscans = read_table(self.root / BSCANS, BSCAN_COLUMNS)

    def _read_settings(self) -> dict[str, Any]:
        return read_json(self.root / SETTINGS, "not found; is this a folder written by `octanogan score`?")

    @property
    def patch_size(self) -> int:
        """Patch side length P from settings.json."""
        size = self.settings.get("patch_size")
        if not isinstance(size, int) or size < 1:
            raise InputError(self.root / SETTINGS, f"patch_size must be a positive integer, got {size!r}")
        return size

    def missing(self, volume_ids: Iterable[str]) -> list[str]:
        """The ids among ``volume_ids`` that volumes.csv does not list."""
        return [v for v in volume_ids if v not in self.volumes.index]

    def require(self, volume_ids: Iterable[str], purpose: str) -> None:
        """Raise naming volumes.csv when any of ``volume_ids`` was not scored."""
        missing = self.missing(volume_ids)
        if missing:
            shown = ", ".join(repr(v) for v in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InputError(self.root / VOLUMES, f"no scores for {len(missing)} {purpose} volume(s): "
                                                  f"{shown}; run `octanogan score` on them first")

    def _existing(self, path: Path, volume_id: str) -> Path:
        if not path.is_file():
            raise InputError(path, f"missing scores file of volume '{volume_id}'")
        return path

    def stem(self, volume_id: str) -> str:
        safe = str(self.volumes.at[volume_id, "safe_id"]) if "safe_id" in self.volumes else ""
        return safe or safe_name(volume_id)

    def volume_score(self, volume_id: str) -> float:
        return float(self.volumes.at[volume_id, "score"])

    def bscan_scores(self, volume_id: str) -> pd.DataFrame:
        """``bscan, score`` of one volume's scored B-scans."""
        rows = self.bscans[self.bscans["volume_id"] == volume_id]
        return rows[["bscan", "score"]].reset_index(drop=True)

    def patches(self, volume_id: str) -> pd.DataFrame:
        """The patch table of one volume (centres in the flattened B-scan)."""
        return read_table(self._existing(self.patch_file(self.stem(volume_id)), volume_id),
                          ("bscan", "y", "x", "score"))

    def anomaly_map(self, volume_id: str) -> np.ndarray:
        """The per-voxel anomaly map ``[B, D, W]``."""
        from octanogan.io import read_volume

        path = self._existing(self.map_file(self.stem(volume_id), "anomaly"), volume_id)
        data = read_volume(path).data
        if data.size and data.min() < 0:
            raise InputError(path, "anomaly map holds negative values; expected residuals >= 0")
        return data

    def retina_mask(self, volume_id: str, shape: tuple[int, ...]) -> np.ndarray:
        """The boolean retina mask, checked against the anomaly map's shape."""
        from octanogan.io import read_volume

        path = self._existing(self.map_file(self.stem(volume_id), "retina"), volume_id)
        mask = read_volume(path).data > 0
        if mask.shape != tuple(shape):
            raise InputError(path, f"retina mask shape {mask.shape} differs from the anomaly "
                                   f"map's {tuple(shape)}")
        return mask

    def shifts(self, volume_id: str, shape: tuple[int, ...]) -> np.ndarray:
        """Flattening shifts ``int [B, W]`` of one volume."""
        path = self._existing(self.map_file(self.stem(volume_id), "geometry"), volume_id)
        try:
            shifts = read_geometry(path)["shifts"]
        except KeyError as exc:
            raise InputError(path, "holds no 'shifts' array") from exc
        expected = (shape[0], shape[2])
        if shifts.shape != expected or not np.issubdtype(shifts.dtype, np.integer):
            raise InputError(path, f"shifts must be integers of shape {expected}, "
                                   f"got {shifts.dtype} {shifts.shape}")
        return shifts
