"""The run folder: its file names, the loss log, run.json, and loading a finished run."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from octanogan.config import to_dict
from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import atomic_write_text
from octanogan.models import Discriminator, Encoder, Generator, NetworkSpec
from octanogan.outputs.folder import MARKER, foreign_entries
from octanogan.outputs.run import (  # noqa: F401  (re-exported: the run folder's names)
    CHECKPOINT,
    CONFIG,
    DISCRIMINATOR,
    ENCODER,
    GENERATOR,
    LOSS_CURVE,
    LOSSES,
    RECORD,
    RUN_FILES,
    SAMPLES,
    read_record,
    write_record,
)
from octanogan.training.checkpoint import load_weights
from octanogan.training.config import TrainConfig, load_train_config

LOSS_COLUMNS = ("iteration", "phase", "d_loss", "g_loss", "e_loss", "d_real", "d_fake",
                "gradient_penalty", "e_image", "e_feature")


class LossLog:
    """``losses.csv``: one row per iteration, buffered in memory and appended at checkpoints."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[tuple[int, str, dict[str, torch.Tensor]]] = []

    def add(self, iteration: int, phase: str, stats: dict[str, torch.Tensor]) -> None:
        self._pending.append((iteration, phase, stats))

    def flush(self) -> None:
        """Append the buffered rows (one device sync for all of them)."""
        if not self._pending:
            return
        values = iter(torch.stack([v for *_, s in self._pending for v in s.values()]).tolist())
        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOSS_COLUMNS, lineterminator="\n")
            if new:
                writer.writeheader()
            for iteration, phase, stats in self._pending:
                writer.writerow({"iteration": iteration, "phase": phase,
                                 **{name: next(values) for name in stats}})
        self._pending.clear()

    def truncate(self, gan_iterations: int, encoder_iterations: int) -> None:
        """Drop rows logged after the checkpoint being resumed (and any half-written last line)."""
        if not self.path.exists():
            return
        limits = {"gan": gan_iterations, "encoder": encoder_iterations}
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = lines[:1]
        for line in lines[1:]:
            fields = line.rstrip("\n").split(",")
            if (line.endswith("\n") and len(fields) == len(LOSS_COLUMNS)
                    and fields[1] in limits and int(fields[0]) <= limits[fields[1]]):
                kept.append(line)
        atomic_write_text(self.path, "".join(kept))


def write_config(run_dir: Path, config: TrainConfig) -> None:
    import yaml

    atomic_write_text(run_dir / CONFIG, yaml.safe_dump(to_dict(config), sort_keys=False))


def read_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The run's resolved ``config.yaml``, with optional overrides (``None`` values ignored)."""
    if not (run_dir / CONFIG).is_file():
        raise InputError(run_dir / CONFIG, "config.yaml not found; is this an octanogan run folder?")
    return load_train_config(run_dir / CONFIG, overrides)


def resume_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The settings ``--resume`` continues with: the run's ``config.yaml``, or defaults and
    overrides when a kill came before it was written (``train`` then starts the run afresh)."""
    if run_dir.is_dir() and not (run_dir / CONFIG).exists():
        return load_train_config(None, overrides)
    return read_config(run_dir, overrides)


def _replaced(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.replaced")


def recover(run_dir: Path) -> None:
    """Undo what a kill during a replacement left: if the new run never reached its first
    checkpoint, the old run comes back; otherwise the old run is deleted."""
    old = _replaced(run_dir)
    if not old.exists():
        return
    if (run_dir / CHECKPOINT).is_file():
        shutil.rmtree(old)
        return
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.replace(old, run_dir)


def set_aside(run_dir: Path, overwrite: bool) -> None:
    """Make way for a new run in ``run_dir`` (already claimed as a run folder by the caller).

    A run with a checkpoint is replaced only with ``overwrite``; one without (killed before its
    first checkpoint) holds nothing to lose. The old run is moved beside ``run_dir`` and deleted
    only once the new run has written its first checkpoint (:func:`drop_replaced`).
    """
    if not run_dir.exists():
        return
    foreign = sorted(p.name for p in foreign_entries(run_dir) if p.name not in (*RUN_FILES, MARKER))
    if foreign:
        raise InputError(run_dir, "holds files that are not from an octanogan run "
                                  f"({', '.join(foreign[:5])}); move them or choose another folder")
    if (run_dir / CHECKPOINT).is_file() and not overwrite:
        state = "a finished" if _finished(run_dir) else "an unfinished"
        raise InputError(run_dir, f"holds {state} run; use --resume to continue it or "
                                  "--overwrite to replace it")
    os.replace(run_dir, _replaced(run_dir))


def drop_replaced(run_dir: Path) -> None:
    """Delete the run that a new one replaced (the new run has started successfully)."""
    shutil.rmtree(_replaced(run_dir), ignore_errors=True)


def restore_replaced(run_dir: Path) -> None:
    """Bring back the replaced run after the new one failed before its first checkpoint."""
    if _replaced(run_dir).exists() and not (run_dir / CHECKPOINT).is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        os.replace(_replaced(run_dir), run_dir)


def _finished(run_dir: Path) -> bool:
    try:
        return bool(read_record(run_dir).get("finished"))
    except InputError:
        return False


@dataclasses.dataclass
class LoadedRun:
    """A trained run: networks in eval mode on ``device``, its config and architecture."""

    generator: Generator
    discriminator: Discriminator
    encoder: Encoder | None
    config: TrainConfig
    spec: NetworkSpec
    run_dir: Path
    record: dict[str, Any]

    @property
    def patch_size(self) -> int:
        return self.spec.patch_size

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Load a run folder's G, D and (if trained) E, in eval mode, with ``weights_only`` loading."""
    from octanogan.device import resolve_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder not found")
    config = read_config(run_dir)
    record = read_record(run_dir)
    try:
        spec = NetworkSpec.from_dict(record["networks"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(run_dir / RECORD, f"corrupt run record ({type(exc).__name__}: {exc})") from exc
    if not (run_dir / GENERATOR).is_file():
        raise InputError(run_dir, "the GAN phase has not finished (no generator.pt); "
                                  "continue it with 'octanogan train --resume'")
    target = resolve_device(device) if device == "auto" else torch.device(device)
    generator, discriminator = spec.generator(), spec.discriminator()
    load_weights(run_dir / GENERATOR, generator, "generator weights")
    load_weights(run_dir / DISCRIMINATOR, discriminator, "discriminator weights")
    encoder = None
    if (run_dir / ENCODER).is_file():
        encoder = spec.encoder()
        load_weights(run_dir / ENCODER, encoder, "encoder weights")
    for net in (generator, discriminator, encoder):
        if net is not None:
            net.to(target).eval()
    return LoadedRun(generator, discriminator, encoder, config, spec, run_dir, record)


def check_same_training(saved: TrainConfig, new: TrainConfig, run_dir: Path) -> None:
    """On resume, only settings in ``RESUMABLE_CHANGES`` may differ from the saved config."""
    from octanogan.training.config import RESUMABLE_CHANGES

    changed = [f.name for f in dataclasses.fields(TrainConfig)
               if f.name not in RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(new, f.name)]
    if changed:
        raise OctanoganError(f"{run_dir}: cannot resume with changed settings {changed}; only "
                             f"{list(RESUMABLE_CHANGES)} may change (or start a new run)")
