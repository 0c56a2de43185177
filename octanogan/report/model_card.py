"""The model card of a run: what it learned from, how, its calibration and its last evaluation.

Shown on a page of every report (when the run folder is at hand) and by ``octanogan info RUN``.
Only counts, settings, devices (allow-listed) and dates: no volume ids, no file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octanogan.config import load_yaml
from octanogan.errors import InputError
from octanogan.fsutil import read_json
from octanogan.outputs.calibration import read_calibration, read_last_evaluation
from octanogan.outputs.run import CONFIG, read_record

NOTICE = ("Research software, not a medical device. Anomaly scores show where an image differs "
          "from the healthy scans the model learned from; they are not a diagnosis and must not "
          "guide treatment on their own.")
MISSING = "–"


@dataclass(frozen=True)
class ModelCard:
    """Titled sections of (label, value) rows, in reading order."""

    run_dir: str
    sections: list[tuple[str, list[tuple[str, str]]]]
    notice: str = NOTICE

    def text(self) -> str:
        """The card as plain text for the console."""
        lines = [f"Model card of {self.run_dir}"]
        for title, rows in self.sections:
            lines += ["", title]
            width = max((len(label) for label, _ in rows), default=0)
            lines += [f"  {label:<{width}}  {value}" for label, value in rows]
        return "\n".join([*lines, "", self.notice])


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _store_facts(run_dir: Path, store: dict[str, Any]) -> tuple[int | None, str]:
    """Volumes in the training store and the devices the manifest names for them, where the
    store and its manifest can still be read (they are not part of the run folder)."""
    from octanogan.io.devices import canonical_device
    from octanogan.patches.store import SETTINGS

    folder = run_dir / str(store.get("path", ""))
    try:
        settings = read_json(folder / SETTINGS)
    except InputError:
        return None, MISSING
    ids = {i.get("volume_id") for i in settings.get("inputs", []) if isinstance(i, dict)}
    devices: set[str] = set()
    manifest = folder / str(settings.get("manifest", ""))
    try:
        import pandas as pd

        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        if "device" in table.columns:
            devices = {canonical_device(d) for d, v in zip(table["device"], table["volume_id"])
                       if v in ids and d}
    except (OSError, ValueError):
        pass
    return len(ids), ", ".join(sorted(d for d in devices if d)) or MISSING


def _training(run_dir: Path, record: dict[str, Any]) -> list[tuple[str, str]]:
    store = record.get("store") or {}
    n_volumes, devices = _store_facts(run_dir, store)
    config = load_yaml(run_dir / CONFIG) if (run_dir / CONFIG).is_file() else {}
    config = config if isinstance(config, dict) else {}
    preprocess = store.get("preprocess") or {}
    qc = ", ".join(f"{k} {preprocess[k]}" for k in ("qc_max_invalid", "qc_min_measured", "qc_min_cnr")
                   if k in preprocess)
    return [
        ("Trained on", f"{_fmt(n_volumes)} {store.get('label', 'healthy')} volume(s) of split "
                       f"'{store.get('split', 'train')}', {_fmt(store.get('n_patches'))} patches of "
                       f"{_fmt(store.get('patch_size'))} px (stride {_fmt(store.get('stride'))})"),
        ("Devices", devices),
        ("Preprocessing", "ILM/BM as minimal-cost paths, BM flattened, export fill masked"
                          + (f"; quality control: {qc}" if qc else "")),
        ("Budget", f"{_fmt(record.get('gan_iterations'))} GAN + "
                   f"{_fmt(record.get('encoder_iterations'))} encoder iterations, batch "
                   f"{_fmt(config.get('batch_size'))}, objective {_fmt(config.get('objective'))}, "
                   f"z {_fmt(config.get('latent_dim'))}, seed {_fmt(record.get('seed'))}"),
        ("Trained", f"{_fmt(record.get('started'))} to {_fmt(record.get('ended'))} on "
                    f"{_fmt(record.get('device'))}" + ("" if record.get("finished")
                                                       else " (not finished)")),
        ("Store hash", _fmt(store.get("content_hash"))),
        ("Training health", _health(record.get("health"))),
    ]


def _health(health: Any) -> str:
    """The checks of training/health.py: their warnings, or that none fired."""
    if not isinstance(health, dict):
        return MISSING  # a run trained before the checks existed
    warnings = [str(w) for w in health.get("warnings") or []]
    diversity = health.get("sample_diversity")
    shown = f"sample diversity {diversity:.2f}" if isinstance(diversity, (int, float)) else ""
    if warnings:
        return "WARNING: " + " | ".join(warnings)
    return "no warning (losses finite, discriminator not winning" + (f", {shown})" if shown else ")")


def _calibration(calibration: dict[str, Any] | None) -> list[tuple[str, str]]:
    if calibration is None:
        return [("Calibration", "none: reports show scores only (run `octanogan calibrate`)")]
    healthy = calibration.get("healthy") or {}
    thresholds = calibration.get("thresholds") or {}
    return [
        ("Calibrated", f"{_fmt(calibration.get('date'))} by {_fmt(healthy.get('made_by'))}"),
        ("Calibration set", f"{_fmt(healthy.get('n_volumes'))} healthy "
                            f"{_fmt(healthy.get('split'))} volume(s)"),
        ("Operating point", f"healthy {_fmt(calibration.get('percentile'))}th percentile"),
        ("Thresholds", ", ".join(f"{level} {_fmt(value)}" for level, value in thresholds.items())
         or MISSING),
    ]


def _evaluation(last: dict[str, Any] | None) -> list[tuple[str, str]]:
    if last is None:
        return [("Last evaluation", "none")]
    rows = [("Last evaluation", f"{_fmt(last.get('date'))}: {_fmt(last.get('healthy'))} healthy, "
                                f"{_fmt(last.get('diseased'))} diseased test volume(s)")]
    for metric in last.get("metrics") or []:
        rows.append((f"{metric.get('metric', '').upper()} ({metric.get('level')})",
                     f"{_fmt(metric.get('value'))} [{_fmt(metric.get('ci_low'))}–"
                     f"{_fmt(metric.get('ci_high'))}]"))
    return rows


def model_card(run_dir: str | Path) -> ModelCard:
    """The model card of ``run_dir``; a missing or corrupt run.json names the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder not found")
    record = read_record(run_dir)
    versions = record.get("versions") or {}
    return ModelCard(str(run_dir.absolute()), [
        ("Training", _training(run_dir, record)),
        ("Calibration", _calibration(read_calibration(run_dir))),
        ("Evaluation", _evaluation(read_last_evaluation(run_dir))),
        ("Software", [(str(k), _fmt(v)) for k, v in sorted(versions.items())]
         + [("git commit", _fmt(record.get("git_commit")))]),
    ])
