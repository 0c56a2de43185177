"""What a run folder carries beyond training: its calibration and its last evaluation (torch-free).

    RUN/calibration.json         operating thresholds from healthy val volumes (octanogan calibrate,
                                 or evaluate when it has healthy val volumes), the scoring settings
                                 they hold for, and the healthy score distributions
    RUN/last_evaluation.json     headline metrics of the last evaluate with this run (model card)

docs/formats.md gives the fields.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from octanogan.errors import InputError
from octanogan.fsutil import atomic_write_json, read_json

CALIBRATION, LAST_EVALUATION = "calibration.json", "last_evaluation.json"
FORMAT_VERSION = 1
LEVELS = ("voxel", "patch", "bscan", "volume")


def _read(path: Path) -> dict[str, Any] | None:
    return read_json(path, hint="run `octanogan calibrate` again") if path.exists() else None


def write_calibration(run_dir: str | Path, record: dict[str, Any]) -> bool:
    """Write ``RUN/calibration.json`` (one owner for both writers); False when it was kept.

    ``octanogan calibrate`` always writes. ``evaluate`` writes only over nothing or over another
    evaluation's calibration: a calibration someone made on purpose (``calibrate --percentile
    95``) is never replaced as a side effect of an evaluation.
    """
    path = Path(run_dir) / CALIBRATION
    if _made_by(record) == "evaluate":
        try:
            earlier = _read(path)
        except InputError:
            earlier = None  # a broken calibration is replaced
        if earlier is not None and _made_by(earlier) == "calibrate":
            return False
    atomic_write_json(path, record)
    return True


def _made_by(record: dict[str, Any]) -> str | None:
    """Which command made a calibration record (``calibrate`` or ``evaluate``)."""
    healthy = record.get("healthy")
    return healthy.get("made_by") if isinstance(healthy, dict) else None


def read_calibration(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's calibration, or None when it has none; a corrupt one names the file."""
    path = Path(run_dir) / CALIBRATION
    record = _read(path)
    if record is None:
        return None
    thresholds = record.get("thresholds")
    if record.get("format_version") != FORMAT_VERSION or not isinstance(thresholds, dict):
        raise InputError(path, "not a calibration this octanogan can read; run `octanogan "
                               "calibrate` again")
    for level, value in thresholds.items():
        if level not in LEVELS or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(path, f"threshold '{level}' is {value!r}, not a number of a level "
                                   f"{LEVELS}")
    return record


def read_last_evaluation(run_dir: str | Path) -> dict[str, Any] | None:
    """The headline metrics of the last evaluate with this run, or None."""
    return _read(Path(run_dir) / LAST_EVALUATION)
