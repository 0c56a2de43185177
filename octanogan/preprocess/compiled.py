"""numba, as preprocessing's compiled modules use it (``kernels``, ``percentiles``, ``invalid``).

Kernels run on ``NUMBA_NUM_THREADS`` threads or, where only ``OMP_NUM_THREADS`` is set, on that
many: jobs that share a machine (and torchrun, which sets it to 1 per rank) limit torch that way.
Compiled kernels are cached beside their module, or in the user's cache folder where the package
is read-only; where neither can be written (a read-only container), they are compiled in every
process instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numba
from numba import prange

__all__ = ["njit", "prange"]


def njit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``; with ``cache=True`` but nowhere to cache, without the cache."""

    def compile_lazily(function: Callable) -> Callable:
        try:
            return numba.njit(**options)(function)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            if not options.get("cache") or "locator" not in str(exc):
                raise
            return numba.njit(**{**options, "cache": False})(function)

    return compile_lazily


def _follow_omp_num_threads() -> None:
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if "NUMBA_NUM_THREADS" not in os.environ and wanted.isdigit() and int(wanted) > 0:
        numba.set_num_threads(min(int(wanted), numba.config.NUMBA_NUM_THREADS))


_follow_omp_num_threads()
