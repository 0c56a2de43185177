"""What every CLI command shares: one-line errors, --debug, progress bars, how a rank ends."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from octanogan.errors import EchoedError, OctanoganError

F = TypeVar("F", bound=Callable[..., Any])

#: Set by the ``--debug`` option of the main app: show tracebacks.
STATE = {"debug": False}


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def end_rank(code: int | str | None) -> NoReturn:
    """End a torchrun rank now with ``code``, without Python's teardown (see
    :func:`octanogan.distributed.joined_process_group`)."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def os_error_message(exc: OSError) -> str:
    """One line for a failed file operation: the file, then what the system said."""
    problem = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        problem += "; free some space and run the command again (finished outputs are kept)"
    where = exc.filename or "file system"
    if exc.filename2:
        where = f"{where} -> {exc.filename2}"
    return f"{where}: {problem}"


def handle_errors(func: F) -> F:
    """Turn user-facing errors into one line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from octanogan.io.limits import current_limits
        from octanogan.outputs.lock import release_all

        try:
            current_limits()  # a bad OCTANOGAN_MAX_* is one error before any work, not one per file
            return func(*args, **kwargs)
        except EchoedError:  # rank 0 printed it
            raise typer.Exit(2) from None
        except OctanoganError as exc:
            if STATE["debug"]:
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            typer.secho("interrupted; finished outputs are kept", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            if STATE["debug"]:
                raise
            fail("out of memory; try a smaller --batch-size", code=3)
        except OSError as exc:  # read-only folder, full disk, permissions: name the file
            if STATE["debug"]:
                raise
            fail(os_error_message(exc))
        finally:
            release_all()

    return wrapper  # type: ignore[return-value]


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar on stderr, quiet when stderr is not a terminal and CI is set."""
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)


class PhaseBars:
    """Training progress: one bar per phase (GAN, encoder) showing the current losses.

    Use as a context manager and pass it as ``on_iteration`` to ``octanogan.training.train``.
    """

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, step: Any) -> None:
        bar = self.bars.get(step.phase)
        if bar is None:
            self.close()
            label = "GAN" if step.phase == "gan" else "encoder"
            bar = self.bars[step.phase] = progress(total=step.total, initial=step.iteration - 1,
                                                   desc=label, unit="it")
        if bar.update(1):
            bar.set_postfix({k: f"{v:.3f}" for k, v in step.losses().items()}, refresh=False)
        if step.iteration >= step.total:  # phase done: free the line for what comes next
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()

    def __enter__(self) -> PhaseBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def given_options(ctx: typer.Context, names: dict[str, str]) -> dict[str, Any]:
    """The options typed on the command line (not left at their defaults), as ``{setting: value}``;
    ``names`` maps the command's parameter names to setting names."""
    def typed(param: str) -> bool:  # by name: typer's click may be its own copy
        source = ctx.get_parameter_source(param)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return {setting: ctx.params[param] for param, setting in names.items() if typed(param)}


def config_section(path: Path | None, section: str) -> dict[str, Any]:
    """The ``section`` of a pipeline YAML given with ``--config`` (``{}`` without one, or when the
    file has no such section), so that one file sets a whole study. A dotted name
    (``data.phantom``) reaches into a section."""
    from octanogan.config import load_sections
    from octanogan.errors import ConfigError

    if path is None:
        return {}
    found: Any = load_sections(path)
    for part in section.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise ConfigError(section, "must be a mapping of settings", path)
    return dict(found)


def with_config(ctx: typer.Context, path: Path | None, section: str, names: dict[str, str]) -> dict[str, Any]:
    """Settings for one command: the defaults, then the YAML's ``section``, then typed options."""
    return {**config_section(path, section), **given_options(ctx, names)}


CONFIG = typer.Option(None, "--config", "-c", help="Pipeline YAML: this command takes its section "
                                                    "(options typed here win).")
