"""The run folder written by ``octanogan train``: its file names and ``run.json`` (torch-free).

Layout (docs/formats.md)::

    octanogan.json    marker (kind "run")
    config.yaml       the resolved TrainConfig
    run.json          provenance and progress; ``finished`` is true once both phases are done
    generator.pt, discriminator.pt, encoder.pt    plain state dicts (weights_only)
    checkpoint.pt     everything needed to resume
    losses.csv, loss_curve.png, samples/
    tensorboard/      TensorBoard event files (optional)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from octanogan.errors import InputError
from octanogan.fsutil import atomic_write_text, read_json, relative_path

KIND = "run"
CONFIG, RECORD, LOSSES = "config.yaml", "run.json", "losses.csv"
GENERATOR, DISCRIMINATOR, ENCODER = "generator.pt", "discriminator.pt", "encoder.pt"
CHECKPOINT, LOSS_CURVE, SAMPLES = "checkpoint.pt", "loss_curve.png", "samples"
#: TensorBoard event files (training/monitor.py), when the optional package is installed.
TENSORBOARD = "tensorboard"
RUN_FILES = {CONFIG, RECORD, LOSSES, GENERATOR, DISCRIMINATOR, ENCODER, CHECKPOINT, LOSS_CURVE, SAMPLES,
             TENSORBOARD}


def weights_hash(run_dir: Path) -> str:
    """SHA-256 over the run's network weights: which model made a set of scores."""
    import hashlib

    from octanogan.fsutil import sha256_file

    digest = hashlib.sha256()
    for name in (GENERATOR, DISCRIMINATOR, ENCODER):
        if (Path(run_dir) / name).is_file():
            digest.update(sha256_file(Path(run_dir) / name).encode())
    return digest.hexdigest()


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / RECORD, json.dumps(record, indent=2) + "\n")


def read_record(run_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict; an InputError names the file when it is missing or corrupt."""
    path = Path(run_dir) / RECORD
    record = read_json(path, "run.json not found; is this an octanogan run folder?")
    if not isinstance(record.get("networks"), dict):
        raise InputError(path, "corrupt run record (no 'networks' section)")
    return record


def is_finished(run_dir: Path) -> bool:
    """Both phases done and the final weights written."""
    run_dir = Path(run_dir)
    try:
        finished = bool(read_record(run_dir).get("finished"))
    except InputError:
        return False
    return finished and (run_dir / GENERATOR).is_file() and (run_dir / DISCRIMINATOR).is_file()


def is_resumable(run_dir: Path) -> bool:
    """A run folder that ``train --resume`` can continue (it has its config and record)."""
    run_dir = Path(run_dir)
    return (run_dir / CONFIG).is_file() and (run_dir / RECORD).is_file()


def run_provenance(run_dir: Path, folder: Path) -> dict[str, Any]:
    """The run's record for an evaluation.json in ``folder``: the run folder's path relative to
    ``folder``, and its run.json."""
    info: dict[str, Any] = {"run_dir": relative_path(run_dir, folder)}
    try:
        info.update(read_record(run_dir))
    except InputError:
        pass
    return info
