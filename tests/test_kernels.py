"""The compiled preprocessing kernels equal, to the last bit, the NumPy/SciPy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from octanogan.preprocess import kernels

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("shape", [(2, 8, 40), (3, 5, 7), (2, 60, 3)])
@pytest.mark.parametrize("sigmas", [(2.0, 3.0), (0.7, 6.0), (5.0, 0.0), (0.0, 12.0)])
def test_gaussian_filter_is_scipys(shape, sigmas):
    # radii beyond the image (reflected more than once) included
    volume = RNG.random(shape).astype(np.float32)
    expected = ndimage.gaussian_filter(volume, (0.0, *sigmas))
    got = kernels.gaussian_filter(volume, *sigmas)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_percentiles_are_numpys_with_ties_masks_and_constant_values():
    for trial in range(60):
        n = int(RNG.integers(1, 20000))
        values = (RNG.random(n) * [1.0, 255.0, 1e-3][trial % 3]).astype(np.float32)
        if trial % 2:
            values = np.round(values * 4).astype(np.float32)  # many ties, long runs of one value
        if trial % 7 == 0:
            values[:] = 3.0
        mask = RNG.random(n) > RNG.random()
        mask[0] = True
        for q in (0.0, 1.0, 20.0, 50.0, 99.5, 100.0):
            got = kernels.percentile(values[None], q, mask[None])
            expected = np.percentile(values[mask], q)
            assert got == expected and got.dtype == expected.dtype, (trial, q)
        got = kernels.percentiles(values[None], (1.0, 99.5), mask[None])
        expected = np.percentile(values[mask], [1.0, 99.5])
        assert np.array_equal(got, expected) and got.dtype == expected.dtype


def test_percentiles_per_row_are_numpys_and_nan_for_an_empty_row():
    values = RNG.random((4, 30, 20)).astype(np.float32)
    mask = values > 0.2
    mask[2] = False
    got = kernels.percentiles_per_row(values, 99.5, mask)
    expected = [np.percentile(values[b][mask[b]], 99.5) for b in (0, 1, 3)]
    np.testing.assert_array_equal(got[[0, 1, 3]], np.array(expected, dtype=np.float32))
    assert np.isnan(got[2])
    np.testing.assert_array_equal(kernels.percentiles_per_row(values, 20.0),
                                  np.percentile(values.reshape(4, -1), 20.0, axis=1))


def test_square_counts_give_scipys_erosion_and_dilation():
    mask = RNG.random((2, 30, 40)) > 0.2
    counts = kernels.square_counts(mask, 2)
    footprint = np.ones((1, 5, 5), dtype=np.uint8)
    eroded = ndimage.minimum_filter(mask.view(np.uint8), footprint=footprint, mode="nearest")
    dilated = ndimage.maximum_filter(mask.view(np.uint8), footprint=footprint, mode="nearest")
    np.testing.assert_array_equal(counts == 25, eroded.astype(bool))
    np.testing.assert_array_equal(counts > 0, dilated.astype(bool))


def test_scale_intensity_is_numpys_with_nan_and_infinities():
    values = (RNG.random((2, 6, 9)) * 300 - 20).astype(np.float32)
    values[0, 0, :3] = [np.nan, np.inf, -np.inf]
    low, scale = np.float32(3.5), np.float32(2.0 / 250.0)
    expected = np.clip(np.nan_to_num((values - low) * scale - np.float32(1.0), nan=-1.0,
                                     posinf=1.0, neginf=-1.0), -1.0, 1.0)
    np.testing.assert_array_equal(kernels.scale_intensity(values, low, scale), expected)


def test_shift_columns_moves_every_column_and_fills_what_comes_in():
    data = RNG.random((2, 9, 5)).astype(np.float32)
    shifts = RNG.integers(-12, 12, size=(2, 5)).astype(np.int32)
    got = kernels.shift_columns(data, shifts, np.float32(-1.0))
    for b in range(2):
        for w in range(5):
            for y in range(9):
                source = y - shifts[b, w]
                assert got[b, y, w] == (data[b, source, w] if 0 <= source < 9 else -1.0)


def test_ilm_cost_and_band_cost_are_their_numpy_expressions():
    smooth = RNG.random((2, 20, 7)).astype(np.float32)
    edges = RNG.random((2, 19, 7)).astype(np.float32)
    level = RNG.random((2, 7)).astype(np.float32)
    tissue_above = np.cumsum(smooth > level[:, None, :], axis=1, dtype=np.int32)[:, :-1]
    expected = np.where(tissue_above <= 3, 1.0 - edges, 1.0)
    expected[:, :2] = 1.0
    np.testing.assert_array_equal(kernels.ilm_cost(edges, smooth, level, 3, 2), expected)

    first = RNG.integers(-3, 15, size=(2, 7)).astype(np.float32)
    last = first + RNG.integers(-2, 10, size=(2, 7)).astype(np.float32)
    rows = np.arange(20)[None, :, None]
    allowed = (rows >= first[:, None, :]) & (rows <= last[:, None, :])
    np.testing.assert_array_equal(kernels.band_cost(smooth, first, last),
                                  np.where(allowed, 1.0 - smooth, 2.0))
    top = np.array([0.5, 0.0], dtype=np.float32)
    expected = np.zeros_like(smooth)
    expected[0] = np.clip(smooth[0] / top[0], 0.0, 1.0)
    np.testing.assert_array_equal(kernels.divide_rows(smooth, top), expected)
