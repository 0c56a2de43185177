"""Reading a SCORES folder written by ``octanogan score`` (layout: docs/formats.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError
from octanogan.fsutil import safe_name
from octanogan.io import read_volume

VOLUME_COLUMNS = ("volume_id", "score")
BSCAN_COLUMNS = ("volume_id", "bscan", "score")
PATCH_COLUMNS = ("bscan", "y", "x", "score")


def read_table(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    """A CSV of the scores folder, with clear errors for a missing file or column."""
    if not path.is_file():
        raise InputError(path, "not found; is this a folder written by `octanogan score`?")
    try:
        table = pd.read_csv(path, dtype={"volume_id": str}, keep_default_na=False)
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


class ScoreFiles:
    """The tables, settings and per-volume files of one SCORES folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(self.root, "scores folder not found")
        self.settings = self._read_settings()
        volumes = read_table(self.root / "volumes.csv", VOLUME_COLUMNS)
        repeated = volumes["volume_id"][volumes["volume_id"].duplicated()].tolist()
        if repeated:
            raise InputError(self.root / "volumes.csv", f"volume id(s) listed twice: {repeated[:5]}")
        self.volumes = volumes.set_index("volume_id", drop=False)
        self.bscans = read_table(self.root / "bscans.csv", BSCAN_COLUMNS)

    def _read_settings(self) -> dict[str, Any]:
        path = self.root / "settings.json"
        if not path.is_file():
            raise InputError(path, "not found; is this a folder written by `octanogan score`?")
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc})") from exc
        if not isinstance(settings, dict):
            raise InputError(path, "settings must be a JSON object")
        return settings

    @property
    def patch_size(self) -> int:
        """Patch side length P from settings.json."""
        size = self.settings.get("patch_size")
        if not isinstance(size, int) or size < 1:
            raise InputError(self.root / "settings.json",
                             f"patch_size must be a positive integer, got {size!r}")
        return size

    def missing(self, volume_ids: Iterable[str]) -> list[str]:
        """The ids among ``volume_ids`` that volumes.csv does not list."""
        return [v for v in volume_ids if v not in self.volumes.index]

    def require(self, volume_ids: Iterable[str], purpose: str) -> None:
        """Raise naming volumes.csv when any of ``volume_ids`` was not scored."""
        missing = self.missing(volume_ids)
        if missing:
            shown = ", ".join(repr(v) for v in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InputError(self.root / "volumes.csv",
                             f"no scores for {len(missing)} {purpose} volume(s): {shown}; "
                             "run `octanogan score` on them first")

    def _file(self, volume_id: str, name: str) -> Path:
        safe = str(self.volumes.at[volume_id, "safe_id"]) if "safe_id" in self.volumes else ""
        path = self.root / name.format(safe=safe or safe_name(volume_id))
        if not path.is_file():
            raise InputError(path, f"missing scores file of volume '{volume_id}'")
        return path

    def volume_score(self, volume_id: str) -> float:
        return float(self.volumes.at[volume_id, "score"])

    def bscan_scores(self, volume_id: str) -> pd.DataFrame:
        """``bscan, score`` of one volume's scored B-scans."""
        rows = self.bscans[self.bscans["volume_id"] == volume_id]
        return rows[["bscan", "score"]].reset_index(drop=True)

    def patches(self, volume_id: str) -> pd.DataFrame:
        """The patch table of one volume (centres in the flattened B-scan)."""
        return read_table(self._file(volume_id, "patches/{safe}.csv"), PATCH_COLUMNS)

    def anomaly_map(self, volume_id: str) -> np.ndarray:
        """The per-voxel anomaly map ``[B, D, W]``."""
        path = self._file(volume_id, "maps/{safe}_anomaly.nii.gz")
        data = read_volume(path).data
        if data.size and data.min() < 0:
            raise InputError(path, "anomaly map holds negative values; expected residuals >= 0")
        return data

    def retina_mask(self, volume_id: str, shape: tuple[int, ...]) -> np.ndarray:
        """The boolean retina mask, checked against the anomaly map's shape."""
        path = self._file(volume_id, "maps/{safe}_retina.nii.gz")
        mask = read_volume(path).data > 0
        if mask.shape != tuple(shape):
            raise InputError(path, f"retina mask shape {mask.shape} differs from the anomaly "
                                   f"map's {tuple(shape)}")
        return mask

    def shifts(self, volume_id: str, shape: tuple[int, ...]) -> np.ndarray:
        """Flattening shifts ``int [B, W]`` of one volume."""
        path = self._file(volume_id, "maps/{safe}_geometry.npz")
        try:
            with np.load(path) as geometry:
                shifts = np.asarray(geometry["shifts"])
        except KeyError as exc:
            raise InputError(path, "holds no 'shifts' array") from exc
        except (OSError, ValueError) as exc:
            raise InputError(path, f"not a readable .npz file ({exc})") from exc
        expected = (shape[0], shape[2])
        if shifts.shape != expected or not np.issubdtype(shifts.dtype, np.integer):
            raise InputError(path, f"shifts must be integers of shape {expected}, "
                                   f"got {shifts.dtype} {shifts.shape}")
        return shifts
