"""Typed configs: dataclasses filled from YAML files and command-line overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from octanogan.errors import ConfigError, InputError

T = TypeVar("T")


def from_dict(cls: type[T], values: Any, source: str = "config") -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys or bad values are a ConfigError
    naming ``source`` and the setting."""
    if not isinstance(values, dict):
        raise ConfigError(cls.__name__, f"must be a mapping of settings, got {values!r}", source)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, values)) - names)
    renamed = getattr(cls, "RENAMED", {})  # old setting name -> new, for a one-line migration hint
    hints = "".join(f"; '{old}' is now '{renamed[old]}'" for old in unknown if old in renamed)
    if unknown:
        raise ConfigError(", ".join(unknown), f"is unknown for {cls.__name__}{hints}; known: {sorted(names)}",
                          source)
    try:
        return cls(**_floats_from_text(cls, values))
    except ConfigError as exc:
        if exc.source is not None:
            raise
        raise ConfigError(exc.setting, exc.problem, source) from None


def _floats_from_text(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads ``2e-4`` (no dot) as text: accept it for every float setting, in every
    section, so a number means the same in ``train --config``, ``run`` and the other commands."""
    floats = {f.name for f in dataclasses.fields(cls) if "float" in str(f.type)}
    converted = dict(values)
    for name in floats & set(values):
        if isinstance(values[name], str):
            try:
                converted[name] = float(values[name])
            except ValueError:
                pass  # reported by the config's own check, naming the setting
    return converted


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict of a dataclass config (for YAML/JSON records)."""
    return dataclasses.asdict(config)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise InputError(path, "not a text file (expected YAML)") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise InputError(path, f"not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise InputError(path, "config must be a YAML mapping")
    return data


#: The sections of a pipeline YAML (pipelines/README.md); each command reads its own.
PIPELINE_SECTIONS = ("description", "data", "extract", "train", "score", "evaluate", "predict")


def load_sections(path: str | Path) -> dict[str, Any]:
    """A pipeline YAML's sections; a top-level key that is no section is refused by name."""
    data = load_yaml(path)
    unknown = sorted(set(map(str, data)) - set(PIPELINE_SECTIONS))
    if unknown:
        raise InputError(path, f"unknown section(s) {unknown}; known: {list(PIPELINE_SECTIONS)}")
    return data


def merge(config: T, overrides: dict[str, Any]) -> T:
    """Copy of ``config`` with the non-None ``overrides`` applied."""
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[type-var]
