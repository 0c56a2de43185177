"""Preprocessing: normalisation, ILM/BM detection, flattening and its inverse, retina mask."""

from __future__ import annotations

import numpy as np
import pytest
from shared_data import SHARED_DATA

from octanogan.errors import OctanoganError
from octanogan.preprocess import (
    PreprocessConfig,
    detect_boundaries,
    normalize_intensity,
    preprocess_volume,
    unflatten,
)
from octanogan.preprocess.flatten import flatten

DATA = SHARED_DATA


def synthetic_volume(shape: tuple[int, int, int] = (3, 160, 128), seed: int = 0):
    """Layered 8-bit B-scans with speckle; returns (image, true ILM edge, true BM edge) rows.

    Edges lie between pixel rows (x.5): retina rows are ilm < y < bm.
    """
    rng = np.random.default_rng(seed)
    n_bscans, depth, width = shape
    columns = np.arange(width)
    ilm = np.stack([np.floor(40 + b + 6 * np.sin(columns / width * 2 * np.pi + b)) + 0.5
                    for b in range(n_bscans)])
    bm = np.floor(ilm.min() + 60 + 0.003 * (columns - width / 2) ** 2 + 0.04 * columns
                  + np.arange(n_bscans)[:, None]) + 0.5  # smooth bowl, tilted, like a real BM
    rows = np.arange(depth)[None, :, None]
    top, bottom = ilm[:, None, :], bm[:, None, :]
    image = np.full(shape, 25.0)
    image[(rows > top) & (rows < top + 10)] = 150.0                        # RNFL
    image[(rows >= top + 10) & (rows < bottom - 25)] = 90.0                # inner retina
    image[(rows >= bottom - 25) & (rows < bottom - 8)] = 55.0              # ONL
    image[(rows >= bottom - 8) & (rows < bottom)] = 225.0                  # EZ + RPE
    image[(rows > bottom) & (rows < bottom + 30)] = 110.0                  # choroid
    image *= rng.gamma(4.0, 0.25, size=shape)                              # speckle
    return np.clip(image, 0, 255).astype(np.float32), ilm, bm


def errors(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    error = np.abs(found - truth)
    return float(error.mean()), float(np.percentile(error, 95))


def test_normalize_range_and_outliers():
    rng = np.random.default_rng(1)
    data = rng.uniform(10, 200, size=(2, 40, 30)).astype(np.float32)
    out = normalize_intensity(data)
    assert out.dtype == np.float32 and out.shape == data.shape
    assert out.min() == -1.0 and out.max() == 1.0
    spiked = data.copy()
    spiked[0, 0, :5] = 1e6   # a few saturated voxels must not set the scale
    spiked[1, 0, :5] = -1e6
    again = normalize_intensity(spiked)
    assert np.abs(again - out)[:, 1:].max() < 0.02
    assert np.all(normalize_intensity(np.full((1, 8, 8), 7.0)) == -1.0)


def test_flatten_unflatten_exact_inverse_with_random_shifts():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4, 50, 30)).astype(np.float32)
    shifts = rng.integers(-20, 21, size=(4, 30)).astype(np.int32)
    flat = flatten(data, shifts, fill=-1.0)
    assert flat.shape == data.shape and flat.dtype == data.dtype
    b, y, w = 1, 25, 7
    assert flat[b, y + shifts[b, w], w] == data[b, y, w]
    back = unflatten(flat, shifts, fill=np.nan)
    rows = np.arange(50)[None, :, None]
    kept = (rows + shifts[:, None, :] >= 0) & (rows + shifts[:, None, :] < 50)
    assert np.array_equal(back[kept], data[kept])
    assert np.all(np.isnan(back[~kept]))
    assert np.all(flat[rows.repeat(4, 0).repeat(30, 2) < shifts[:, None, :]] == -1.0)


def test_flatten_rejects_float_shifts():
    with pytest.raises(OctanoganError):
        flatten(np.zeros((1, 5, 4)), np.zeros((1, 4)))


def test_boundaries_on_synthetic_volume():
    image, ilm_true, bm_true = synthetic_volume()
    ilm, bm = detect_boundaries(image)
    assert ilm.dtype == np.float32 and ilm.shape == ilm_true.shape
    ilm_mean, ilm_p95 = errors(ilm, ilm_true)
    bm_mean, bm_p95 = errors(bm, bm_true)
    assert ilm_mean < 1.0 and ilm_p95 < 2.0, (ilm_mean, ilm_p95)
    assert bm_mean < 1.0 and bm_p95 < 2.0, (bm_mean, bm_p95)


def test_preprocess_flattens_bm_to_one_row_and_inverts_exactly():
    image, _, _ = synthetic_volume()
    result = preprocess_volume(image)
    depth = image.shape[1]
    assert result.bm_row == round(0.75 * depth)
    assert result.shifts.dtype == np.int32
    assert np.all(np.abs(result.bm + result.shifts - result.bm_row) <= 0.5)
    np.testing.assert_allclose(result.ilm_flat, result.ilm + result.shifts)
    mask_flat = result.retina_mask_flat()
    assert mask_flat.sum() == result.retina_mask.sum()  # nothing of the retina shifted out
    back = unflatten(result.flat, result.shifts)
    assert np.array_equal(back[result.retina_mask], result.image[result.retina_mask])
    rows = np.arange(depth)[None, :, None]
    assert not mask_flat[rows.repeat(3, 0).repeat(128, 2) > result.bm_row].any()


def test_retina_mask_lies_between_ilm_and_bm():
    image, _, _ = synthetic_volume(seed=3)
    result = preprocess_volume(image)
    rows = np.arange(image.shape[1])[None, :, None]
    inside = (rows >= result.ilm[:, None, :]) & (rows <= result.bm[:, None, :])
    assert result.retina_mask.dtype == bool
    assert np.array_equal(result.retina_mask, inside)
    thickness = result.retina_mask.sum(axis=1)
    assert np.all(np.abs(thickness - (result.bm - result.ilm)) <= 1)


def test_blank_columns_and_vessel_shadows_are_bridged():
    image, ilm_true, bm_true = synthetic_volume(seed=4)
    image[:, :, 40:46] = 0.0                      # blank A-scans
    image[:, :, 80:84] *= 0.3                     # vessel shadow (whole column darkened)
    ilm, bm = detect_boundaries(image)
    for found, truth in ((ilm, ilm_true), (bm, bm_true)):
        assert np.abs(found - truth)[:, 38:48].max() < 3.0
        assert np.abs(found - truth)[:, 78:86].max() < 3.0


def test_single_bscan_volume():
    image, ilm_true, bm_true = synthetic_volume(shape=(1, 160, 128), seed=5)
    result = preprocess_volume(image)
    assert errors(result.ilm, ilm_true)[0] < 1.0
    assert errors(result.bm, bm_true)[0] < 1.0


def test_bm_row_moves_down_when_the_ilm_would_leave_the_image():
    image, _, _ = synthetic_volume()
    result = preprocess_volume(image, PreprocessConfig(target_bm_fraction=0.2))
    assert result.bm_row > round(0.2 * image.shape[1])
    assert result.ilm_flat.min() >= PreprocessConfig().flat_margin_rows - 1


def test_rejects_non_volume_and_blank_volume():
    with pytest.raises(OctanoganError):
        detect_boundaries(np.zeros((10, 10)))
    with pytest.raises(OctanoganError):
        detect_boundaries(np.zeros((2, 30, 20)))


def test_boundaries_on_phantom():
    """Measured at this shape: healthy ILM 0.18/0.43, BM 0.34/0.77 rows (mean/p95); diseased
    ILM 0.31/0.91, BM 1.14/7.67 (PED domes are wide relative to a 256-column B-scan)."""
    from octanogan import phantom as phantom_module

    bounds = {False: (1.0, 2.0, 1.0, 2.0), True: (1.0, 2.0, 2.0, 10.0)}
    for diseased, (ilm_mean_max, ilm_p95_max, bm_mean_max, bm_p95_max) in bounds.items():
        phantom = phantom_module.generate_volume(shape=(6, 496, 256), seed=0, diseased=diseased)
        ilm, bm = detect_boundaries(phantom.image)
        ilm_mean, ilm_p95 = errors(ilm, phantom.ilm)
        bm_mean, bm_p95 = errors(bm, phantom.bm)
        assert ilm_mean < ilm_mean_max and ilm_p95 < ilm_p95_max, (diseased, ilm_mean, ilm_p95)
        assert bm_mean < bm_mean_max and bm_p95 < bm_p95_max, (diseased, bm_mean, bm_p95)


@pytest.mark.realdata
def test_real_topcon_bscans():
    folder = DATA / "topcon_healthy_bscans"
    from octanogan.io import read_volume

    volume = read_volume(folder).data[::10]  # 10 of the 100 B-scans keeps the test fast
    result = preprocess_volume(volume)
    thickness = result.bm - result.ilm
    assert np.all(thickness > 5)
    assert 40 < np.median(thickness) < 110  # macular retina at this crop's scale
    assert np.percentile(np.abs(np.diff(result.bm, axis=1)), 99) < 3  # BM is smooth


def test_retina_reference_sets_the_scale_from_the_retina_and_keeps_the_boundaries():
    from octanogan.phantom import generate_volume
    from octanogan.preprocess import PreprocessConfig, preprocess_volume

    volume = generate_volume((2, 256, 128), seed=3)
    image = preprocess_volume(volume.image, PreprocessConfig(intensity_reference="image"), volume.spacing_mm)
    retina = preprocess_volume(volume.image, PreprocessConfig(intensity_reference="retina"),
                               volume.spacing_mm)
    np.testing.assert_array_equal(image.ilm, retina.ilm)
    np.testing.assert_array_equal(image.bm, retina.bm)
    band = retina.retina_mask
    assert np.percentile(retina.image[band], 99.5) == pytest.approx(1.0, abs=0.02)
    # a crop with less vitreous and choroid: the retina keeps its grey levels with "retina" only
    crop = volume.image[:, 40:200]
    cropped = {ref: preprocess_volume(crop, PreprocessConfig(intensity_reference=ref), volume.spacing_mm)
               for ref in ("image", "retina")}
    shift = {ref: abs(np.median(p.image[p.retina_mask]) - np.median(full.image[full.retina_mask]))
             for (ref, p), full in zip(cropped.items(), (image, retina))}
    assert shift["retina"] <= shift["image"] + 1e-6


def test_outside_retina_grey_leaves_only_the_retina_band_in_the_patches():
    from octanogan.phantom import generate_volume
    from octanogan.preprocess import PreprocessConfig, preprocess_volume

    volume = generate_volume((2, 256, 128), seed=4)
    kept = preprocess_volume(volume.image, PreprocessConfig(), volume.spacing_mm)
    grey = preprocess_volume(volume.image, PreprocessConfig(outside_retina="grey"), volume.spacing_mm)
    band = flatten(retina_band(kept), kept.shifts, fill=False)  # export fill included
    np.testing.assert_array_equal(grey.flat[band], kept.flat[band])
    assert (grey.flat[~band] == 0.0).all()
    np.testing.assert_array_equal(grey.image, kept.image)  # the original geometry is untouched
    with pytest.raises(OctanoganError, match="outside_retina"):
        PreprocessConfig(outside_retina="black")


def retina_band(prep) -> np.ndarray:
    from octanogan.preprocess.pipeline import retina_mask

    return retina_mask(prep.ilm, prep.bm, prep.image.shape[1])
