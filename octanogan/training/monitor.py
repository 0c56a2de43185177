"""A live view of training: TensorBoard event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN``).

Written when the optional ``tensorboard`` package is installed (``pip install 'octanogan[monitor]'``);
without it training runs as before and :func:`open_monitor` says so in one line. One global step
runs through both phases: GAN iterations are steps 1..N, encoder iterations N+1..N+M, so the
curves of a run read left to right. Scalars are buffered like ``losses.csv`` and written at each
checkpoint (one device sync); a resumed run reopens the event files with ``purge_step`` at the
checkpoint, so the steps a killed process logged after it are dropped, never drawn twice.

Tags: ``gan/d_loss``, ``gan/g_loss``, ``gan/d_real`` (mean D(x)), ``gan/d_fake`` (mean D(G(z))),
``gan/gradient_penalty``, ``gan/g_grad_norm``, ``gan/d_grad_norm``, ``gan/lr``,
``gan/patches_per_s``, ``gan/sample_diversity``, ``encoder/e_loss``, ``encoder/e_image``,
``encoder/e_feature``, ``encoder/e_grad_norm``, ``encoder/lr``, ``encoder/patches_per_s``; images
``samples`` (G of a fixed z) and ``reconstructions`` (x above G(E(x))); text ``config``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from octanogan.outputs.run import TENSORBOARD

NOTICE = ("live view off: install the optional 'tensorboard' package (pip install "
          "'octanogan[monitor]') to follow training in TensorBoard")


def gradient_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of the module's gradients from its last update (a tensor: no device sync)."""
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.cat(grads))


def sample_diversity(samples: torch.Tensor, reals: torch.Tensor) -> float:
    """Mean pairwise L1 distance between generated samples over that between real patches:
    about 1 when G covers the patches' variety, near 0 when its samples all look alike."""
    def spread(x: torch.Tensor) -> float:
        flat = x.detach().float().flatten(1).cpu()
        distances = torch.cdist(flat, flat, p=1) / flat.shape[1]
        n = len(flat)
        return float(distances.sum() / max(n * (n - 1), 1))

    real = spread(reals)
    return spread(samples) / real if real > 0 else float("nan")


class Monitor:
    """Buffers one session's numbers and writes them as TensorBoard events at checkpoints."""

    def __init__(self, run_dir: Path, first_step: int, batch_patches: dict[str, int]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = {"purge_step": first_step} if first_step > 1 else {}
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD), **purge)
        self.batch_patches = batch_patches  # patches read per iteration, per phase
        self._pending: list[tuple[int, str, dict[str, torch.Tensor]]] = []
        self._clock = time.perf_counter()

    def add(self, step: int, phase: str, values: dict[str, torch.Tensor]) -> None:
        self._pending.append((step, phase, values))

    def flush(self, learning_rates: dict[str, float]) -> None:
        """Write the buffered scalars, learning rates and throughput (at a checkpoint)."""
        if not self._pending:
            return
        numbers = iter(torch.stack([v.detach().float().reshape(()).cpu()
                                    for *_, values in self._pending for v in values.values()]).tolist())
        for step, phase, values in self._pending:
            for name in values:
                self.writer.add_scalar(f"{phase}/{name}", next(numbers), step)
        seconds = time.perf_counter() - self._clock
        step, phase, _ = self._pending[-1]
        if seconds > 0:
            patches = len(self._pending) * self.batch_patches.get(phase, 0)
            self.writer.add_scalar(f"{phase}/patches_per_s", patches / seconds, step)
        self.writer.add_scalar(f"{phase}/lr", learning_rates.get(phase, float("nan")), step)
        self._pending.clear()
        self._clock = time.perf_counter()
        self.writer.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, grid: np.ndarray, step: int) -> None:
        """A greyscale uint8 image (a sample grid)."""
        self.writer.add_image(tag, grid, step, dataformats="HW")

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, f"```\n{text}\n```", step)

    def close(self) -> None:
        self.writer.close()


def open_monitor(run_dir: Path, first_step: int, batch_patches: dict[str, int]
                 ) -> tuple[Monitor | None, str | None]:
    """The session's monitor, or None and the one-line notice when tensorboard is missing."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it)
    except ImportError:
        return None, NOTICE
    return Monitor(run_dir, first_step, batch_patches), None


def describe(value: Any) -> str:
    """A config as YAML text for the ``config`` tab."""
    import yaml

    return yaml.safe_dump(value, sort_keys=False)
