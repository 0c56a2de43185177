"""User-facing errors: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class OctanoganError(Exception):
    """An error caused by the user's input, reported without a traceback."""


class EchoedError(OctanoganError):
    """Under torchrun, an error that rank 0 met and reported: the other ranks stop with it too,
    without printing it again."""


class InputError(OctanoganError):
    """A file or folder that cannot be used: names the path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ManifestError(OctanoganError):
    """A manifest row that fails validation: names the file, row, column and problem."""

    def __init__(self, manifest: str | Path, row: int | None, column: str | None, problem: str):
        where = str(manifest)
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")


class ConfigError(OctanoganError, ValueError):
    """A setting out of range or of the wrong type: names the setting (and its source, if any)."""

    def __init__(self, setting: str, problem: str, source: str | Path | None = None) -> None:
        self.setting = setting
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}setting '{setting}' {problem}")


@contextlib.contextmanager
def about(path: str | Path) -> Iterator[None]:
    """Name ``path`` in any OctanoganError raised inside (e.g. preprocessing of that file)."""
    try:
        yield
    except (InputError, ManifestError):
        raise
    except OctanoganError as exc:
        raise InputError(path, str(exc)) from None


@dataclass(frozen=True)
class Refusal:
    """One input a command skipped and went on without (``convert``, ``extract --keep-going``,
    ``score --keep-going``, ``predict``): every command reports refusals with this one type."""

    #: The input as the user named it ("" when only the volume id is known).
    file: str
    #: Why, in words (the one-line error it would otherwise have stopped with).
    reason: str
    volume_id: str = ""

    def __str__(self) -> str:
        return f"{self.volume_id or self.file}: {self.reason}"
