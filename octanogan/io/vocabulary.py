"""The manifest's fixed vocabulary (pandas-free, so the CLI can offer it as choices)."""

from __future__ import annotations

from typing import Literal, get_args

Label = Literal["healthy", "diseased"]
Split = Literal["train", "val", "test"]
LABELS: tuple[str, ...] = get_args(Label)
#: Manifest labels: an empty label reads as "unknown" (scans to score or predict, not evaluate).
UNKNOWN = "unknown"
MANIFEST_LABELS: tuple[str, ...] = (*LABELS, UNKNOWN)
SPLITS: tuple[str, ...] = get_args(Split)
