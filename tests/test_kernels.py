"""The compiled preprocessing kernels equal, to the last bit, the NumPy/SciPy expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from octanogan.preprocess import kernels, percentiles
from octanogan.preprocess.invalid import fill_mask

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
            got = percentiles.percentile(values[None], q, mask[None])
            expected = np.percentile(values[mask], q)
            assert got == expected and got.dtype == expected.dtype, (trial, q)
        got = percentiles.percentiles(values[None], (1.0, 99.5), mask[None])
        expected = np.percentile(values[mask], [1.0, 99.5])
        assert np.array_equal(got, expected) and got.dtype == expected.dtype


def test_percentiles_per_row_are_numpys_and_nan_for_an_empty_row():
    values = RNG.random((4, 30, 20)).astype(np.float32)
    mask = values > 0.2
    mask[2] = False
    got = percentiles.per_row(values, 99.5, mask)
    expected = [np.percentile(values[b][mask[b]], 99.5) for b in (0, 1, 3)]
    np.testing.assert_array_equal(got[[0, 1, 3]], np.array(expected, dtype=np.float32))
    assert np.isnan(got[2])
    np.testing.assert_array_equal(percentiles.per_row(values, 20.0),
                                  np.percentile(values.reshape(4, -1), 20.0, axis=1))


def _fill_mask_oracle(raw: np.ndarray) -> np.ndarray:
    """The whole-volume SciPy formulation that ``invalid.fill_mask`` replaced."""
    flat = raw.reshape(len(raw), -1)
    out = np.zeros(raw.shape, dtype=bool)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    minimum_area = max(64, 0.002 * flat.shape[1])
    for extreme in (flat.min(axis=1), flat.max(axis=1)):
        exact = raw == extreme[:, None, None]
        cores = ndimage.minimum_filter(exact.view(np.uint8), (1, 5, 5), mode="nearest") > 0
        labels, count = ndimage.label(cores, structure=in_plane)
        border = np.unique(np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(),
                                           labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
        keep = np.zeros(count + 1, dtype=bool)
        keep[border] = True
        keep &= np.bincount(labels.ravel(), minlength=count + 1) >= minimum_area
        keep[0] = False
        grown = ndimage.maximum_filter(keep[labels].view(np.uint8), (1, 5, 5), mode="nearest") > 0
        out |= grown & exact
    low, high = flat.min(axis=1), flat.max(axis=1)
    near = raw >= (high - 0.02 * (high - low))[:, None, None]
    in_plane[1] = ndimage.generate_binary_structure(2, 2)
    labels, _ = ndimage.label(near, structure=in_plane)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[labels[out & near]] = True
    keep[0] = False
    return out | keep[labels]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fill_mask_is_its_scipy_formulation(dtype):
    image = (RNG.random((4, 60, 80)) * 200 + 20).astype(dtype)
    image[0, :20, :30] = 0          # a corner wedge: fill
    image[0, :3, 40:45] = 0         # too small
    image[1, -10:, :] = 255         # a bright band at the bottom: fill ...
    image[1, -12:-10, :] = 250      # ... and its blurred rim
    image[2, 25:35, 30:50] = 0      # inside, not touching the border: not fill
    image[3] = 7                    # constant
    expected = _fill_mask_oracle(image)
    assert expected[0].any() and expected[1].any() and not expected[2, 25:35, 30:50].any()
    np.testing.assert_array_equal(fill_mask(image), expected)


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


def test_kernels_compile_where_no_cache_can_be_written(monkeypatch):
    """A read-only install with no writable cache folder: compile in the process, do not fail."""
    from numba.core import caching

    from octanogan.preprocess.compiled import njit

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="locator"):  # what numba itself does there
        import numba

        numba.njit(cache=True)(lambda x: x)

    @njit(cache=True)
    def twice(x):
        return 2 * x

    assert twice(21) == 42
