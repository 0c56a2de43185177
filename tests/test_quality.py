"""Quality control per B-scan, the patch grid around export fill, and settings in micrometres."""

from __future__ import annotations

import numpy as np
import pytest
from damaged import SHAPE, damaged_phantom

from octanogan.patches.grid import cut_patches, patch_centres, patch_invalid_fraction
from octanogan.phantom import generate_volume
from octanogan.phantom.cohort import spacing_for_shape
from octanogan.preprocess import PreprocessConfig, preprocess_volume


def test_qc_flags_the_noisy_and_the_hidden_bscan_and_passes_the_others():
    data, spacing = damaged_phantom()
    qc = preprocess_volume(data, spacing_mm=spacing).qc
    assert qc.passed.tolist() == [True, False, False, True]
    assert "low_contrast" in qc.reasons[1] and "invalid" not in qc.reasons[1]  # also unmeasured
    assert qc.reasons[2] == ["invalid"] and qc.invalid_fraction[2] > 0.7
    assert np.all(qc.cnr[[0, 3]] > 3 * PreprocessConfig().qc_min_cnr)
    assert qc.describe_failures() == ("2 of 4 B-scans fail quality control "
                                      "(invalid 1, unmeasured 1, low_contrast 1)")


def test_qc_survives_an_npz_round_trip(tmp_path):
    data, spacing = damaged_phantom()
    qc = preprocess_volume(data, spacing_mm=spacing).qc
    np.savez(tmp_path / "qc.npz", **qc.to_arrays())
    with np.load(tmp_path / "qc.npz") as stored:  # no pickle
        back = type(qc).from_arrays(stored)
    assert back.reasons == qc.reasons
    np.testing.assert_allclose(back.cnr, qc.cnr, rtol=1e-6)


def test_patch_invalid_fraction_equals_counting_pixels():
    rng = np.random.default_rng(1)
    invalid = rng.random((3, 90, 110)) < 0.2
    centres = np.array([[0, 16, 16], [1, 74, 94], [2, 40, 57]])
    expected = cut_patches(invalid, centres, 32).mean(axis=(1, 2))
    np.testing.assert_allclose(patch_invalid_fraction(invalid, centres, 32), expected)


def test_patch_grid_leaves_out_patches_on_retina_hidden_by_fill():
    data, spacing = damaged_phantom()
    prep = preprocess_volume(data, spacing_mm=spacing)
    centres = patch_centres(prep, 32, 16, max_invalid=0.05)
    hidden = prep.hidden_retina_flat()
    assert patch_invalid_fraction(hidden, centres, 32).max() <= 0.05
    on_wedge = centres[centres[:, 0] == 2, 2]
    assert on_wedge.size and on_wedge.min() >= 3 * SHAPE[2] // 4 - 16  # only the image part
    clean = patch_centres(prep, 32, 16, max_invalid=1.0)
    assert (clean[:, 0] == 0).sum() == (centres[:, 0] == 0).sum()  # untouched B-scans keep all


@pytest.mark.parametrize("shape", [(2, 248, 256), (2, 1024, 512)])
def test_settings_in_micrometres_hold_at_other_depth_samplings(shape):
    """The same 6 mm field sampled with 248 or 1,024 rows: errors in micrometres stay as small
    as at 496 rows (rows-based settings gave BM errors of 60 rows at 1,024, docs/preprocessing.md)."""
    spacing = spacing_for_shape(shape)
    row_um = 1000 * spacing[1]
    for seed in (0, 1):
        phantom = generate_volume(shape, seed, diseased=bool(seed))
        prep = preprocess_volume(phantom.image, spacing_mm=spacing)
        assert np.mean(np.abs(prep.ilm - phantom.ilm)) * row_um < 5.0
        assert np.mean(np.abs(prep.bm - phantom.bm)) * row_um < 10.0
        assert prep.qc.passed.all()


def test_pixel_settings_follow_the_spacing():
    config = PreprocessConfig()
    fine = config.in_pixels((0.12, 0.0039, 0.0115))
    coarse = config.in_pixels((0.12, 0.0078, 0.0115))
    assert fine.max_thickness == 250 and coarse.max_thickness == 125
    assert fine.ilm_tissue_rows == 6 and coarse.ilm_tissue_rows == 3
    assert coarse.max_step < fine.max_step
    assert fine.median_columns % 2 == 1
