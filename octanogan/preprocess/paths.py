"""Minimal-cost paths across B-scans: one row per column, at most ``max_step`` rows per column.

The standard retinal-layer search (Chiu et al., Opt. Express 2010): a boundary is the left-to-right
path of least summed cost through a cost image that is low on the boundary's edge. It is the same
optimum as ``skimage.graph.MCP(cost, offsets=[(d, 1) for d in range(-k, k + 1)])`` with every
pixel of the first column a start (tests check the two agree), computed here by compiled dynamic
programming (``kernels.min_cost_path_rows``), B-scans in parallel: MCP is far slower, and every
``extract`` and ``score`` pays this search (docs/preprocessing.md).
"""

from __future__ import annotations

import numpy as np

from octanogan.preprocess.kernels import min_cost_path_rows


def min_cost_paths(cost: np.ndarray, max_step: int, step_cost: float = 0.0) -> np.ndarray:
    """Rows ``int64 [B, W]`` of the minimal-cost path through each ``cost[b]`` (``[B, H, W]``).

    A path visits every column once and moves at most ``max_step`` rows between neighbouring
    columns; a move of ``d`` rows adds ``step_cost * (|d| - 1)`` (a step of one row is free), so
    a path follows a steep wall when it must but does not wander. Ties keep the path straight.
    Costs must be finite and non-negative.
    """
    cost = np.asarray(cost)
    if cost.dtype not in (np.float32, np.float64):
        cost = cost.astype(np.float64)
    if cost.ndim != 3:
        raise ValueError(f"cost must be [B, H, W], got {cost.shape}")
    if not 0 <= max_step < 128:
        raise ValueError(f"max_step must lie in [0, 127], got {max_step}")
    if not cost.size:
        return np.zeros((len(cost), cost.shape[2]), dtype=np.int64)
    return min_cost_path_rows(np.ascontiguousarray(cost), int(max_step), float(step_cost))


def path_values(image: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``image[b, rows[b, w], w]`` for every B-scan and column (``[B, W]``)."""
    rows = np.clip(np.asarray(rows, dtype=np.int64), 0, image.shape[1] - 1)
    return np.take_along_axis(image, rows[:, None, :], axis=1)[:, 0]
