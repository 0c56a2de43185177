"""The manifest's fixed vocabulary (pandas-free, so the CLI can offer it as choices)."""

from __future__ import annotations

from typing import Literal, get_args

Label = Literal["healthy", "diseased"]
Split = Literal["train", "val", "test"]
LABELS: tuple[str, ...] = get_args(Label)
SPLITS: tuple[str, ...] = get_args(Split)
