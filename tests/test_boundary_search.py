"""Boundary search on what real exports look like: minimal-cost paths, export fill, artefacts."""

from __future__ import annotations

import numpy as np
import pytest

from octanogan.phantom import generate_volume
from octanogan.phantom.artefacts import ArtefactConfig
from octanogan.preprocess import PreprocessConfig, preprocess_volume
from octanogan.preprocess.invalid import bright_fill, fill_mask
from octanogan.preprocess.paths import min_cost_paths


@pytest.mark.parametrize("max_step", [1, 2, 3])
def test_paths_are_the_minimal_cost_paths_of_skimage_mcp(max_step):
    from skimage.graph import MCP

    cost = np.random.default_rng(max_step).random((3, 30, 40)) + 0.01
    rows = min_cost_paths(cost, max_step)
    assert np.abs(np.diff(rows, axis=1)).max() <= max_step
    for b in range(3):
        mcp = MCP(cost[b], offsets=[(d, 1) for d in range(-max_step, max_step + 1)])
        totals, _ = mcp.find_costs([(r, 0) for r in range(30)])
        np.testing.assert_allclose(cost[b][rows[b], np.arange(40)].sum(), totals[:, -1].min())


def test_step_cost_keeps_a_path_straight_unless_the_edge_pays_for_the_climb():
    cost = np.ones((2, 40, 60))
    cost[0, 10, :30], cost[0, 30, 30:] = 0.0, 0.0  # a wall of 20 rows: worth climbing
    cost[1, 10, :], cost[1, 30, 29:31] = 0.0, 0.0  # a two-column blip: not worth it
    rows = min_cost_paths(cost, max_step=8, step_cost=0.1)
    assert rows[0, 0] == 10 and rows[0, -1] == 30
    assert (rows[1] == 10).all()


def bscan_with_fill() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy B-scan with a white fill wedge and letterbox rows; the same without the wedge;
    the true fill."""
    rng = np.random.default_rng(0)
    image = rng.integers(1, 200, size=(1, 120, 160)).astype(np.float32)
    image[0, rng.integers(0, 120, 40), rng.integers(0, 160, 40)] = 0.0  # speckle at exact 0
    image[0, -12:] = 0.0
    clean = image.copy()
    truth = np.zeros(image.shape, dtype=bool)
    rows, columns = np.mgrid[:120, :160]
    wedge = columns > 160 - 40 + rows  # a white triangle in the top-right corner
    truth[0] |= wedge
    truth[0, -12:] = True  # letterbox rows at the bottom
    image[0][wedge] = 255.0
    return image, clean, truth


def test_export_fill_is_found_and_speckle_is_not():
    image, _, truth = bscan_with_fill()
    found = fill_mask(image)
    assert found[truth].mean() > 0.99 and not found[~truth].any()  # zero speckle is no fill
    assert (bright_fill(image, found) == (found & (image == 255))).all()


def test_the_blurred_rim_of_bright_fill_is_fill_but_a_bright_blob_is_not():
    image, _, _ = bscan_with_fill()
    image[0, :10] = 255.0
    image[0, 10:13] = 251.0  # the frame line that resampling leaves under a white border
    image[0, 60:64, 40:44] = 251.0  # just as bright but not connected to fill
    found = fill_mask(image)
    assert found[0, :13].all() and not found[0, 60:64, 40:44].any()
    assert bright_fill(image, found)[0, 10:13].all()


def test_bright_fill_neither_sets_the_scale_nor_makes_edges():
    image, clean, truth = bscan_with_fill()
    with_fill = preprocess_volume(np.repeat(image, 2, axis=0))
    without = preprocess_volume(np.repeat(clean, 2, axis=0))
    outside = ~truth[0]
    np.testing.assert_allclose(with_fill.image[0][outside], without.image[0][outside], atol=0.05)
    assert (with_fill.image[0][with_fill.invalid[0] & (image[0] == 255)] == -1).all()
    assert not with_fill.retina_mask[with_fill.invalid].any()


def surface_error(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    keep = np.isfinite(truth)
    return np.abs(found - truth)[keep]


@pytest.mark.parametrize("seed", [1, 4])
def test_boundaries_hold_on_tilted_phantoms_with_fill_wedges_and_letterboxing(seed):
    artefacts = ArtefactConfig(fill_wedges=1.0, tilt=1.0, letterbox=float(seed % 2 == 0))
    volume = generate_volume((3, 496, 384), seed, diseased=False, artefacts=artefacts)
    result = preprocess_volume(volume.image, PreprocessConfig())
    valid = ~volume.invalid.all(axis=1)  # columns holding some image
    ilm = surface_error(np.where(valid, volume.ilm, np.nan), result.ilm)
    bm = surface_error(np.where(valid, volume.bm, np.nan), result.bm)
    assert np.percentile(ilm, 95) < 2.0 and np.percentile(bm, 95) < 3.0, (np.percentile(ilm, 95),
                                                                          np.percentile(bm, 95))
    assert result.invalid[volume.invalid].mean() > 0.9
