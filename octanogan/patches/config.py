"""Extraction settings (light: importable without SciPy, pandas or torch)."""

from __future__ import annotations

from dataclasses import dataclass, field

from octanogan import checks
from octanogan.config import from_dict
from octanogan.errors import ConfigError
from octanogan.io.vocabulary import LABELS, SPLITS
from octanogan.preprocess.config import PreprocessConfig

#: Upper bounds: a patch must fit a B-scan (at most 4096 px per side, see io.limits), and a shard
#: is held in memory while it fills (4096 patches of 64 x 64 float16 are 32 MB).
MAX_PATCH_SIZE = 1024
#: The smallest patch the networks take (one block per doubling from their 4 x 4 bottom, at least 3).
MIN_PATCH_SIZE = 32
MAX_SHARD_SIZE = 1 << 20
MAX_SHARD_BYTES = 1 << 30


@dataclass
class ExtractConfig:
    """Settings of one extraction; recorded in the store's settings.json."""

    patch_size: int = 64
    stride: int = 32
    label: str = "healthy"
    split: str = "train"
    shard_size: int = 4096
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def __post_init__(self) -> None:
        if isinstance(self.preprocess, dict):
            self.preprocess = from_dict(PreprocessConfig, self.preprocess, "preprocess")
        checks.integer("patch_size", self.patch_size, MIN_PATCH_SIZE, MAX_PATCH_SIZE)
        size = self.patch_size
        if size & (size - 1):
            raise ConfigError("patch_size", f"must be a power of two in [{MIN_PATCH_SIZE}, "
                                            f"{MAX_PATCH_SIZE}], got {size}")
        checks.integer("stride", self.stride, 1)
        if self.stride > size:
            raise ConfigError("stride", f"must lie in [1, patch size {size}], got {self.stride}")
        checks.choice("label", self.label, LABELS)
        checks.choice("split", self.split, SPLITS)
        checks.integer("shard_size", self.shard_size, 1, MAX_SHARD_SIZE)
        if self.shard_size * size * size * 2 > MAX_SHARD_BYTES:
            raise ConfigError("shard_size", f"of {self.shard_size:,} patches of {size} x {size} would "
                                            f"hold more than {MAX_SHARD_BYTES >> 20} MB in memory")
