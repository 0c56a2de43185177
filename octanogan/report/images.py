"""Image files of a volume page: B-scan, heat-map and contour sprites, and the en-face view.

Files are written plainly: they land in the staging folder that ``render_report`` swaps in
whole. Each layer is one sprite per volume (all B-scans tiled in a grid), so a page needs four image
files whatever its B-scan count. B-scans are grey JPEG; the overlays are palette PNGs with
transparency, which stay small because most of each overlay is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

#: Tiles start on JPEG block boundaries, so compression never bleeds between B-scans.
TILE_ALIGN = 8
#: Longest sprite side; browsers and JPEG (65,500) handle this comfortably.
MAX_SPRITE_SIDE = 16384
JPEG_QUALITY = 85
HEAT_LEVELS = 64
#: The heat-map colour ramp (dark red, orange, yellow) from faint to strong anomaly.
HEAT_STOPS = ((0.55, 0.05, 0.05), (0.95, 0.35, 0.05), (1.0, 0.85, 0.2), (1.0, 1.0, 0.75))
#: Darker-than-expected (hypo-reflective) maps: deep blue to cyan to white, never confused with heat.
COLD_STOPS = ((0.05, 0.1, 0.45), (0.1, 0.4, 0.95), (0.3, 0.85, 1.0), (0.85, 1.0, 1.0))
RAMPS = {"hot": HEAT_STOPS, "cold": COLD_STOPS}
#: One colour per marker, readable on white charts and on grey B-scans alike.
MARKER_COLOURS = ("#2196F3", "#00C853", "#D500F9", "#00BCD4", "#AEEA00", "#FF4081", "#8D6E63")
OTHER_LABEL_COLOUR = "#B0BEC5"


@dataclass(frozen=True)
class SpriteLayout:
    """Where B-scan ``k`` lies in a sprite: row ``k // cols``, column ``k % cols``."""

    n_bscans: int
    depth: int
    width: int
    tile_h: int
    tile_w: int
    cols: int
    rows: int

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int]) -> SpriteLayout:
        n, depth, width = shape
        tile_h = math.ceil(depth / TILE_ALIGN) * TILE_ALIGN
        tile_w = math.ceil(width / TILE_ALIGN) * TILE_ALIGN
        cols = math.ceil(n / max(1, MAX_SPRITE_SIDE // tile_h))
        return cls(n, depth, width, tile_h, tile_w, cols, math.ceil(n / cols))

    def tile(self, stack: np.ndarray, edge: bool) -> np.ndarray:
        """Arrange ``stack[n, depth, width, ...]`` as one sprite; pads by edge values or zeros."""
        pad = [(0, 0), (0, self.tile_h - self.depth), (0, self.tile_w - self.width)]
        pad += [(0, 0)] * (stack.ndim - 3)
        tiles = np.pad(stack, pad, mode="edge" if edge else "constant")
        missing = self.cols * self.rows - self.n_bscans
        if missing:
            tiles = np.concatenate([tiles, np.zeros((missing, *tiles.shape[1:]), tiles.dtype)])
        grid = tiles.reshape(self.rows, self.cols, self.tile_h, self.tile_w, *stack.shape[3:])
        grid = np.swapaxes(grid, 1, 2)
        return grid.reshape(self.rows * self.tile_h, self.cols * self.tile_w, *stack.shape[3:])

    def to_json(self) -> dict[str, int]:
        return {"n": self.n_bscans, "cols": self.cols, "rows": self.rows,
                "depth": self.depth, "width": self.width,
                "tile_h": self.tile_h, "tile_w": self.tile_w}


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def marker_colour(index: int) -> str:
    return MARKER_COLOURS[index % len(MARKER_COLOURS)]


def to_uint8(data: np.ndarray) -> np.ndarray:
    """Grey display values: the volume's 0.5-99.8 percentile range stretched to 0-255."""
    sample = data[:, ::4, ::4]
    lo, hi = np.percentile(sample, [0.5, 99.8])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((data - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def heat_ramp(t: np.ndarray, ramp: str = "hot") -> np.ndarray:
    """RGB in [0, 1] along the ramp's stops (``RAMPS``) for ``t`` in [0, 1]."""
    stops = np.asarray(RAMPS[ramp])
    at = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(t, at, stops[:, c]) for c in range(3)], axis=-1)


def heat_palette(ramp: str = "hot") -> tuple[list[int], bytes]:
    """Palette (RGB) and per-entry alpha for heat indices; index 0 is fully transparent."""
    t = np.linspace(0.0, 1.0, HEAT_LEVELS - 1)
    rgb = np.vstack([[0, 0, 0], np.round(heat_ramp(t, ramp) * 255)]).astype(int)
    alpha = np.concatenate([[0], np.round(110 + 145 * t)]).astype(np.uint8)
    return rgb.ravel().tolist(), alpha.tobytes()


def heat_indices(anomaly: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Palette index per voxel: 0 at or below ``lo``, then HEAT_LEVELS-1 steps up to ``hi``."""
    t = (anomaly - lo) / max(hi - lo, 1e-12)
    steps = np.clip(np.floor(t * (HEAT_LEVELS - 1)), 0, HEAT_LEVELS - 2) + 1
    return np.where(t > 0, steps, 0).astype(np.uint8)


def contour_indices(labels: np.ndarray, values: list[int]) -> np.ndarray:
    """Palette index ``i + 1`` on the in-plane outline (2 px wide) of label ``values[i]``."""
    cross = ndimage.generate_binary_structure(2, 1)[None]  # within each B-scan only
    out = np.zeros(labels.shape, np.uint8)
    boxes = ndimage.find_objects(labels)
    for i, value in enumerate(values):
        if value > len(boxes) or boxes[value - 1] is None:
            continue
        b, y, x = boxes[value - 1]
        box = (b, slice(max(y.start - 1, 0), y.stop + 1), slice(max(x.start - 1, 0), x.stop + 1))
        region = labels[box] == value
        edge = ndimage.binary_dilation(region, cross) & ~ndimage.binary_erosion(region, cross)
        out[box][edge] = i + 1
    return out


def save_png(pixels: np.ndarray, path: Path, palette: list[int] | None = None,
             alpha: bytes | None = None) -> None:
    """Write a PNG (palette mode when ``palette`` is given) into the report's staging folder."""
    image = Image.fromarray(pixels, mode="P" if palette is not None else None)
    options: dict[str, object] = {"compress_level": 6}
    if palette is not None:
        image.putpalette(palette)
        if alpha is not None:
            options["transparency"] = alpha
    image.save(path, format="PNG", **options)


def save_jpeg(grey: np.ndarray, path: Path) -> None:
    Image.fromarray(grey, mode="L").save(path, format="JPEG", quality=JPEG_QUALITY,
                                         optimize=True, progressive=True)


def enface_rgb(grey: np.ndarray, heat_top: np.ndarray, row_repeat: int, ramp: str = "hot") -> np.ndarray:
    """Mean-intensity projection in grey with heat indices ``heat_top[n, width]`` blended over."""
    base = grey.astype(np.float32).mean(axis=1)
    lo, hi = np.percentile(base, [1, 99.5])
    base = np.clip((base - lo) / max(hi - lo, 1e-6), 0, 1)[..., None].repeat(3, axis=-1)
    palette, alpha = heat_palette(ramp)
    colours = np.asarray(palette, np.float32).reshape(-1, 3) / 255
    weight = (np.frombuffer(alpha, np.uint8).astype(np.float32) / 255)[heat_top][..., None]
    blended = base * (1 - weight) + colours[heat_top] * weight
    return np.repeat((blended * 255).round().astype(np.uint8), row_repeat, axis=0)


def enface_row_repeat(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]) -> int:
    """How often to repeat each B-scan row so the en-face image has its physical aspect ratio."""
    n, _, width = shape
    rows_wanted = width * (n * spacing_mm[0]) / max(width * spacing_mm[2], 1e-9)
    return int(np.clip(round(rows_wanted / n), 1, 32))
