"""numba, as preprocessing's compiled modules use it (``kernels``, ``percentiles``, ``invalid``).

Kernels run on ``NUMBA_NUM_THREADS`` threads or, where only ``OMP_NUM_THREADS`` is set, on that
many: jobs that share a machine (and torchrun, which sets it to 1 per rank) limit torch that way.
"""

from __future__ import annotations

import os

import numba
from numba import njit, prange

__all__ = ["njit", "prange"]


def _follow_omp_num_threads() -> None:
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if "NUMBA_NUM_THREADS" not in os.environ and wanted.isdigit() and int(wanted) > 0:
        numba.set_num_threads(min(int(wanted), numba.config.NUMBA_NUM_THREADS))


_follow_omp_num_threads()
