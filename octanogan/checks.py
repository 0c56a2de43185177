"""Validation helpers shared by the config dataclasses: each raises one ConfigError naming the setting."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from octanogan.errors import ConfigError


def is_number(value: Any) -> bool:
    """A real int or float (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The largest seed numpy and torch both accept.
MAX_SEED = 2**32 - 1


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> None:
    """``value`` is an int (not bool), at least ``minimum`` and at most ``maximum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(name, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be <= {maximum:,}, got {value:,}")


def number(name: str, value: Any, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> None:
    """``value`` is a finite number within the given bounds."""
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lower = "-inf" if low is None else f"{low:g}"
        upper = "inf" if high is None else f"{high:g}"
        bounds = f"{left}{lower}, {upper}{right}"
        raise ConfigError(name, f"must lie in {bounds}, got {value:g}")


def choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}; got {value!r}")
