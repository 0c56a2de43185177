"""The patch store: memory-mapped float16 shards, an index table and a settings JSON.

Layout of a store folder::

    settings.json        extraction settings, inputs with SHA-256, counts, format version
    index.csv            one row per patch: patch_id, shard, row, volume_id, bscan, y, x
    quality.csv          one row per B-scan of every input: QC figures, qc_passed, qc_reasons
                         (B-scans that fail give no patches)
    shards/00000.npy     float16 [n, P, P], intensities in [-1, 1]

Shards are written one at a time, so RAM stays bounded by one shard whatever the cohort size;
reading maps shards from disk without loading them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError
from octanogan.fsutil import atomic_write_text, naming_failures, read_json, sha256_file

SETTINGS = "settings.json"
FORMAT_VERSION = 1
INDEX_COLUMNS = ("patch_id", "shard", "row", "volume_id", "bscan", "y", "x")
KIND = "patch_store"
QUALITY = "quality.csv"


class PatchStoreWriter:
    """Append patches in order; flushes a shard every ``shard_size`` patches."""

    def __init__(self, folder: Path, patch_size: int, shard_size: int = 4096) -> None:
        self.folder = Path(folder)
        (self.folder / "shards").mkdir(parents=True, exist_ok=True)
        self.patch_size = patch_size
        self.shard_size = shard_size
        self._buffer = np.empty((shard_size, patch_size, patch_size), dtype=np.float16)
        self._filled = 0
        self._shard = 0
        self._rows: list[tuple[Any, ...]] = []

    def add(self, patches: np.ndarray, volume_id: str, bscan: int, ys: np.ndarray,
            xs: np.ndarray) -> None:
        """Add ``patches[n, P, P]`` cut from one B-scan at centres ``(ys, xs)``."""
        for patch, y, x in zip(patches, ys, xs):
            self._buffer[self._filled] = patch
            self._rows.append((len(self._rows), self._shard, self._filled, volume_id, int(bscan),
                               int(y), int(x)))
            self._filled += 1
            if self._filled == self.shard_size:
                self._flush()

    def _flush(self) -> None:
        if self._filled:
            target = self.folder / "shards" / f"{self._shard:05d}.npy"
            with naming_failures(target):
                np.save(target, self._buffer[: self._filled])
            self._shard += 1
            self._filled = 0

    def close(self, settings: dict[str, Any]) -> int:
        """Write the last shard, the index and ``settings.json``; returns the patch count."""
        self._flush()
        index = pd.DataFrame(self._rows, columns=list(INDEX_COLUMNS))
        with naming_failures(self.folder / "index.csv"):
            index.to_csv(self.folder / "index.csv", index=False)
        record = {"format_version": FORMAT_VERSION, "patch_size": self.patch_size,
                  "n_patches": len(index), "n_shards": self._shard, "dtype": "float16",
                  **settings}
        atomic_write_text(self.folder / SETTINGS, json.dumps(record, indent=2))
        return len(index)


def is_complete_store(folder: str | Path) -> bool:
    """A patch store that ``extract`` finished (stores appear whole, with their settings)."""
    from octanogan.outputs.folder import marker_kind

    return marker_kind(folder) == KIND and (Path(folder) / SETTINGS).is_file()


class PatchStore:
    """Read access to a patch store; ``store[i]`` is a float32 ``[P, P]`` patch in [-1, 1]."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        settings_path = self.folder / SETTINGS
        if not self.folder.is_dir():
            raise InputError(self.folder, "patch store folder not found")
        if not settings_path.is_file():
            raise InputError(self.folder, f"no {SETTINGS}: not a patch store")
        self.settings: dict[str, Any] = read_json(settings_path, hint="extract the store again")
        try:
            self.index = pd.read_csv(self.folder / "index.csv")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(self.folder, f"corrupt patch store ({exc})") from exc
        if self.settings.get("format_version") != FORMAT_VERSION:
            raise InputError(settings_path, f"unsupported store format {self.settings.get('format_version')}")
        if len(self.index) == 0:
            raise InputError(self.folder, "patch store holds no patches")
        self.patch_size = int(self.settings["patch_size"])
        self._shards: list[np.ndarray] = []
        for k in range(int(self.settings["n_shards"])):
            path = self.folder / "shards" / f"{k:05d}.npy"
            try:
                shard = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise InputError(path, f"unreadable patch shard ({exc})") from exc
            if shard.ndim != 3 or shard.shape[1:] != (self.patch_size, self.patch_size):
                raise InputError(path, f"shard shape {shard.shape} does not fit patch size {self.patch_size}")
            self._shards.append(shard)
        if sum(len(s) for s in self._shards) != len(self.index):
            raise InputError(self.folder, "shards and index.csv disagree on the number of patches")
        self._shard_of = self.index["shard"].to_numpy()
        self._row_of = self.index["row"].to_numpy()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self._shards[self._shard_of[i]][self._row_of[i]], dtype=np.float32)

    def batch(self, indices: np.ndarray) -> np.ndarray:
        """Patches at ``indices`` as float32 ``[n, P, P]``, one gather per shard touched."""
        indices = np.asarray(indices, dtype=np.int64)
        shards, rows = self._shard_of[indices], self._row_of[indices]
        out = np.empty((len(indices), self.patch_size, self.patch_size), dtype=np.float32)
        for shard in np.unique(shards):
            chosen = shards == shard
            out[chosen] = self._shards[shard][rows[chosen]]
        return out

    def content_hash(self) -> str:
        """SHA-256 of the shards and index (what training saw)."""
        digest = hashlib.sha256()
        for part in (self.folder / "shards", self.folder / "index.csv"):
            digest.update(sha256_file(part).encode())
        return digest.hexdigest()
