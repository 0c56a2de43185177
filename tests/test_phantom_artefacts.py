"""Real-world artefacts of the phantom: each one present when on, exact truth, sizes, seeds, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from octanogan.cli import app
from octanogan.errors import OctanoganError
from octanogan.io import read_volume
from octanogan.io.manifest import load_manifest
from octanogan.phantom import ArtefactConfig, PhantomVolume, generate_volume, make_cohort
from octanogan.phantom.anatomy import retina_rows

SHAPE = (2, 128, 160)
REALISTIC = ArtefactConfig.realistic()


def rows_of(volume: PhantomVolume) -> np.ndarray:
    return np.arange(volume.image.shape[1])[None, :, None]


def same_volume(a: PhantomVolume, b: PhantomVolume) -> bool:
    return (a.image.tobytes() == b.image.tobytes() and a.labels.tobytes() == b.labels.tobytes()
            and a.layer_boundaries.tobytes() == b.layer_boundaries.tobytes()
            and np.array_equal(a.invalid, b.invalid, equal_nan=False) and a.artefacts == b.artefacts)


@pytest.mark.parametrize("shape, seed, diseased, eye", [
    ((2, 96, 96), 5, True, "OD"), ((3, 128, 160), 1, False, "OS"), ((1, 496, 512), 2, True, "OD"),
])
def test_none_is_byte_identical_to_no_artefacts(shape, seed, diseased, eye):
    plain = generate_volume(shape, seed, diseased, eye=eye)
    for config in (ArtefactConfig.none(), ArtefactConfig(tilt_rows=(1.0, 2.0)), None):
        other = generate_volume(shape, seed, diseased, eye=eye, artefacts=config)
        assert same_volume(plain, other)
        assert other.invalid.shape == shape and not other.invalid.any() and other.artefacts == {}
        assert other.spacing_mm == plain.spacing_mm


def test_fill_wedges_are_exact_0_or_255_in_corners_and_invalid():
    values = set()
    for seed in range(12):
        clean = generate_volume(SHAPE, seed)
        volume = generate_volume(SHAPE, seed, artefacts=ArtefactConfig(fill_wedges=1.0))
        wedges = volume.artefacts["fill_wedges"]
        assert len(wedges) >= SHAPE[0]  # every B-scan, one or two corners
        invalid = volume.invalid
        assert invalid.any() and not np.isnan(volume.bm).any()
        for wedge in wedges:
            b, value = wedge["bscan"], wedge["value"]
            assert value in (0, 255)
            values.add(value)
            corner_row = 0 if wedge["corner"].startswith("top") else SHAPE[1] - 1
            corner_col = 0 if wedge["corner"].endswith("left") else SHAPE[2] - 1
            assert invalid[b, corner_row, corner_col] and volume.image[b, corner_row, corner_col] == value
        assert set(np.unique(volume.image[invalid])) <= {0.0, 255.0}
        assert np.array_equal(volume.image[~invalid], clean.image[~invalid])  # the rest: the same eye
        assert np.array_equal(volume.ilm, clean.ilm) and np.array_equal(volume.bm, clean.bm)
    assert values == {0, 255}


def test_letterbox_padding_is_constant_invalid_and_shifts_the_truth():
    seen_columns = False
    for seed in range(8):
        volume = generate_volume(SHAPE, seed, artefacts=ArtefactConfig(letterbox=1.0))
        pad = volume.artefacts["padding"]
        top, bottom, left, right = pad["top"], pad["bottom"], pad["left"], pad["right"]
        assert volume.image.shape == SHAPE and top + bottom + left + right > 0
        box = np.ones(SHAPE, bool)
        box[:, top:SHAPE[1] - bottom, left:SHAPE[2] - right] = False
        assert np.array_equal(volume.invalid, box)
        assert np.all(volume.image[box] == 0) and not volume.labels[box].any()
        # the eye is rendered into the box: its truth lies inside it, NaN in all-padding columns
        content = volume.ilm[:, left:SHAPE[2] - right], volume.bm[:, left:SHAPE[2] - right]
        assert all(np.isfinite(c).all() for c in content)
        assert content[0].min() > top and content[1].max() < SHAPE[1] - bottom
        padded_columns = np.r_[0:left, SHAPE[2] - right:SHAPE[2]]
        assert np.isnan(volume.ilm[:, padded_columns]).all() and np.isnan(volume.bm[:, padded_columns]).all()
        seen_columns |= left + right > 0
        spacing = generate_volume(SHAPE, seed).spacing_mm
        assert volume.spacing_mm[1] * (SHAPE[1] - top - bottom) == pytest.approx(spacing[1] * SHAPE[1])
    assert seen_columns


def linear_rise(difference: np.ndarray) -> tuple[np.ndarray, float]:
    """Per B-scan rise across the width of a ``[B, W]`` difference, and the largest misfit."""
    x = np.arange(difference.shape[1])
    fits = [np.polyfit(x, d, 1) for d in difference]
    misfit = max(np.abs(d - np.polyval(p, x)).max() for d, p in zip(difference, fits))
    return np.array([p[0] * (difference.shape[1] - 1) for p in fits]), float(misfit)


@pytest.mark.parametrize("shape", [(2, 496, 512), (2, 248, 256)])
def test_tilt_moves_the_true_boundaries_linearly(shape):
    for seed in (0, 3):
        clean = generate_volume(shape, seed)
        tilted = generate_volume(shape, seed, artefacts=ArtefactConfig(tilt=1.0))
        applied = np.array(tilted.artefacts["tilt_rows"])
        rise, misfit = linear_rise(tilted.bm - clean.bm)
        assert misfit < 0.01 and np.allclose(rise, applied, atol=0.01)
        assert np.allclose(tilted.ilm - clean.ilm, tilted.bm - clean.bm, atol=1e-3)  # the retina rides along
        assert np.all(np.abs(applied) >= 20 * 0.9 * shape[1] / 496)
        assert np.all(np.abs(applied) <= 60 * 1.2 * shape[1] / 496)
    strong = generate_volume((2, 496, 512), 0, artefacts=ArtefactConfig(tilt=1.0, tilt_rows=(60.0, 60.0)))
    rise, _ = linear_rise(strong.bm - generate_volume((2, 496, 512), 0).bm)
    assert np.all(np.abs(rise) > 50)


def test_curvature_deepens_the_bowl():
    clean = generate_volume((2, 496, 512), 4)
    bowl = generate_volume((2, 496, 512), 4, artefacts=ArtefactConfig(curvature=1.0))
    difference = bowl.bm - clean.bm
    centre_below_edges = difference[:, 256] - (difference[:, 0] + difference[:, -1]) / 2
    assert np.allclose(centre_below_edges, bowl.artefacts["curvature_rows"], atol=0.5)
    assert bowl.artefacts["curvature_rows"] >= 30


@pytest.mark.parametrize("shape", [(2, 128, 128), (1, 248, 256), (2, 496, 512)])
def test_optic_disc_cup_has_no_bm_and_a_dipping_thinning_retina(shape):
    for seed in (0, 1):
        volume = generate_volume(shape, seed, diseased=True, artefacts=ArtefactConfig(optic_disc=1.0))
        clean = generate_volume(shape, seed, diseased=True)
        b = volume.artefacts["optic_disc"]["bscan"]
        disc = np.isnan(volume.bm[b])
        columns = np.nonzero(disc)[0]
        assert columns.size >= 0.05 * shape[2] and columns.max() - columns.min() + 1 == columns.size
        assert columns.max() >= 0.8 * shape[2]  # nasal: right in an OD volume
        assert np.isfinite(volume.ilm).all()  # the cup surface is the ILM there
        assert np.isnan(volume.layer_boundaries[1:, b][:, disc]).all()
        margin = columns.min() - 1
        assert volume.ilm[b][disc].max() - volume.ilm[b, margin] > 0.3 * retina_rows(shape[1])  # the cup
        near = slice(max(0, margin - int(0.05 * shape[2])), margin + 1)
        assert np.median((volume.bm - volume.ilm)[b, near]) < 0.9 * np.median(clean.bm - clean.ilm)
        assert not volume.labels[b][:, disc].any()  # lesions keep clear of the disc
        both = np.isfinite(volume.bm)
        assert np.all(volume.ilm[both] < volume.bm[both]) and not volume.invalid.any()


def contrast(image: np.ndarray, volume: PhantomVolume, b: int) -> float:
    """Mean RPE minus mean vitreous over the noise in the ONL, for B-scan ``b``."""
    rows = rows_of(volume)[0]
    rpe = image[volume.layer_mask("RPE")[b]]
    onl = image[volume.layer_mask("ONL")[b]]
    vitreous = image[rows < volume.ilm[b][None, :] - 4]
    return float((rpe.mean() - vitreous.mean()) / onl.std())


def test_low_snr_bscans_have_less_contrast_and_more_noise():
    shape = (3, 248, 256)
    for seed in (2, 7):
        clean = generate_volume(shape, seed)
        volume = generate_volume(shape, seed, artefacts=ArtefactConfig(low_snr=1.0, low_snr_bscans=0.0))
        (low,) = volume.artefacts["low_snr_bscans"]  # at least one, here exactly one
        assert contrast(volume.image[low], volume, low) < 0.6 * contrast(clean.image[low], clean, low)
        vitreous = rows_of(volume)[0] < volume.ilm[low][None, :] - 4
        assert volume.image[low][vitreous].std() > 2 * clean.image[low][vitreous].std()  # grey, noisy
        others = [b for b in range(shape[0]) if b != low]
        assert np.array_equal(volume.image[others], clean.image[others])
        assert np.array_equal(volume.bm, clean.bm)


def test_vignetting_darkens_the_left_and_right_edges():
    clean = generate_volume((2, 248, 256), 6)
    volume = generate_volume((2, 248, 256), 6, artefacts=ArtefactConfig(vignetting=1.0))
    retina = (rows_of(clean) >= clean.ilm[:, None, :]) & (rows_of(clean) <= clean.bm[:, None, :])
    lost = np.where(retina, clean.image - volume.image, 0).sum(axis=(0, 1)) / retina.sum(axis=(0, 1))
    edge = max(lost[:16].mean(), lost[-16:].mean())  # grey levels lost in the retina, per column
    assert edge > 0.5 * volume.artefacts["vignetting"]["gray"] and edge > 12
    assert lost[112:144].mean() < 0.3 * edge
    assert np.array_equal(volume.bm, clean.bm)


def test_vessel_shadows_are_dark_stripes_below_the_ilm():
    clean = generate_volume((2, 248, 256), 6)
    volume = generate_volume((2, 248, 256), 6, artefacts=ArtefactConfig(vessel_shadows=1.0))
    assert volume.artefacts["vessel_shadows"] >= 2
    above = rows_of(volume) < np.floor(clean.ilm)[:, None, :] - 1
    assert np.array_equal(volume.image[above], clean.image[above])  # nothing above the retina
    below = (rows_of(volume) > clean.bm[:, None, :] - 5) & (rows_of(volume) < clean.bm[:, None, :] + 5)
    darker = np.where(below, clean.image - volume.image, 0).sum(axis=1) / below.sum(axis=1)  # [B, W]
    stripes = darker > 20
    assert stripes.any() and stripes.mean() < 0.3  # narrow stripes, not the whole B-scan


@pytest.mark.parametrize("shape", [(2, 248, 256), (2, 1024, 1536)])
def test_sizes_scale_the_anatomy(shape):
    config = replace(REALISTIC, size=0.0, letterbox=0.0)  # keep the shape and the content depth
    for seed in (0, 1):
        volume = generate_volume(shape, seed, diseased=bool(seed), artefacts=config)
        assert volume.image.shape == shape
        both = np.isfinite(volume.ilm) & np.isfinite(volume.bm)
        thickness = (volume.bm - volume.ilm)[both]
        assert 0.11 * shape[1] < np.median(thickness) < 0.22 * shape[1]  # about 16 % of the depth
        assert thickness.min() > 0
        assert volume.ilm.min() > 0.02 * shape[1] and np.nanmax(volume.bm) < shape[1]


def test_artefact_size_changes_depth_and_width_and_keeps_the_field():
    base = (2, 128, 128)
    shapes = set()
    for seed in range(10):
        volume = generate_volume(base, seed, artefacts=ArtefactConfig(size=1.0))
        _, depth, width = volume.image.shape
        shapes.add((depth, width))
        assert depth in (64, 128, 256) and width in (64, 128, 192, 256, 384)
        assert volume.spacing_mm[2] * width == pytest.approx(generate_volume(base, seed).spacing_mm[2] * 128)
        assert 0.11 * depth < np.median(volume.bm - volume.ilm) < 0.45 * depth  # 36 rows at least
    assert len(shapes) >= 3
    big = generate_volume((1, 1024, 1536), 3, artefacts=ArtefactConfig(size=1.0))
    assert big.image.shape[1] <= 1024 and big.image.shape[2] <= 1536  # never beyond max_size


def test_realistic_is_a_seeded_mix_with_consistent_truth():
    kinds = {}
    for seed in range(16):
        volume = generate_volume((2, 96, 128), seed, diseased=seed % 2 == 1, artefacts=REALISTIC,
                                 eye="OS" if seed % 3 else "OD")
        summary = volume.artefacts
        applied = {k for k, v in summary.items() if v and k not in ("shape", "content_shape")}
        applied |= {"size"} if summary["shape"] != [2, 96, 128] else set()
        for kind in applied:
            kinds[kind] = kinds.get(kind, 0) + 1
        assert len(applied) < 9  # a mix, not everything at once
        both = np.isfinite(volume.ilm) & np.isfinite(volume.bm)
        assert np.all(volume.ilm[both] < volume.bm[both])
        inside = (rows_of(volume) >= volume.ilm[:, None, :]) & (rows_of(volume) <= volume.bm[:, None, :])
        assert not ((volume.labels > 0) & ~inside).any()
        assert volume.invalid.any() == bool(summary["padding"] or summary["fill_wedges"])
        json.dumps(summary)
    assert len(kinds) >= 7, kinds


def test_same_seed_same_artefacts_and_other_seeds_differ():
    a = generate_volume((2, 96, 128), 9, diseased=True, artefacts=REALISTIC)
    b = generate_volume((2, 96, 128), 9, diseased=True, artefacts=REALISTIC)
    assert same_volume(a, b) and np.array_equal(a.ilm, b.ilm, equal_nan=True)
    summaries = {json.dumps(generate_volume((2, 96, 128), s, artefacts=REALISTIC).artefacts)
                 for s in range(4)}
    assert len(summaries) == 4


def test_switching_one_kind_off_leaves_the_others():
    for seed in range(6):
        mix = generate_volume((2, 96, 128), seed, artefacts=REALISTIC).artefacts
        without_tilt = generate_volume((2, 96, 128), seed, artefacts=replace(REALISTIC, tilt=0.0)).artefacts
        assert without_tilt["tilt_rows"] is None
        assert {k: v for k, v in mix.items() if k != "tilt_rows"} == \
            {k: v for k, v in without_tilt.items() if k != "tilt_rows"}


def test_os_eye_mirrors_the_artefacts_too():
    config = ArtefactConfig(fill_wedges=1.0, tilt=1.0)
    od = generate_volume((2, 96, 128), 3, artefacts=config)
    os_ = generate_volume((2, 96, 128), 3, artefacts=config, eye="OS")
    assert np.array_equal(od.image[..., ::-1], os_.image)
    assert np.array_equal(od.invalid[..., ::-1], os_.invalid)
    assert np.allclose(od.artefacts["tilt_rows"], [-t for t in os_.artefacts["tilt_rows"]])
    assert [w["corner"].split("-")[1] for w in od.artefacts["fill_wedges"]] == \
        [{"left": "right", "right": "left"}[w["corner"].split("-")[1]] for w in os_.artefacts["fill_wedges"]]


@pytest.mark.parametrize("kwargs", [{"tilt": 1.5}, {"low_snr": -0.1}, {"tilt_rows": (60.0, 20.0)},
                                    {"depth_factors": ()}, {"fill_wedges": True}])
def test_bad_configs_are_clear_errors(kwargs):
    with pytest.raises(OctanoganError):
        ArtefactConfig(**kwargs)


def test_presets_by_name_and_bad_argument():
    assert ArtefactConfig.named("none") == ArtefactConfig.none() and not ArtefactConfig.none().enabled
    assert ArtefactConfig.named("realistic") == REALISTIC and REALISTIC.enabled
    with pytest.raises(OctanoganError, match="preset"):
        ArtefactConfig.named("heavy")
    with pytest.raises(OctanoganError, match="ArtefactConfig"):
        generate_volume((2, 96, 96), artefacts="realistic")  # type: ignore[arg-type]


def test_cohort_writes_invalid_and_artefacts_with_the_truth(tmp_path):
    out = make_cohort(tmp_path / "c", n_healthy=2, n_diseased=2, shape=(2, 96, 128), seed=3,
                      artefacts=ArtefactConfig(letterbox=1.0, fill_wedges=1.0, optic_disc=1.0)).parent
    for row in load_manifest(out / "manifest.csv").itertuples():
        image = read_volume(row.path)
        truth = np.load(out / "boundaries" / f"{row.volume_id}.npz")
        assert truth["invalid"].dtype == bool and truth["invalid"].shape == image.shape
        assert truth["ilm"].shape == truth["bm"].shape == (image.shape[0], image.shape[2])
        assert np.array_equal(image.data[truth["invalid"]] % 255, np.zeros(truth["invalid"].sum()))
        assert np.isnan(truth["bm"]).any()  # disc and padding columns
        summary = json.loads(str(truth["artefacts"]))
        assert summary["padding"] and summary["fill_wedges"] and summary["optic_disc"]
    clean = make_cohort(tmp_path / "n", n_healthy=1, n_diseased=0, shape=(2, 96, 96), seed=3).parent
    truth = np.load(clean / "boundaries" / "healthy_000.npz")
    assert not truth["invalid"].any() and json.loads(str(truth["artefacts"])) == {}


def test_cli_artefacts_flag(tmp_path):
    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "c"), "--healthy", "1", "--diseased", "1",
                                      "--shape", "2,96,96", "--seed", "2", "--artefacts", "realistic"])
    assert result.exit_code == 0, result.output
    assert "realistic artefacts" in result.output
    truth = np.load(tmp_path / "c" / "boundaries" / "diseased_000.npz")
    assert "invalid" in truth.files and json.loads(str(truth["artefacts"]))["content_shape"]
    bad = CliRunner().invoke(app, ["phantom", str(tmp_path / "d"), "--artefacts", "heavy"])
    assert bad.exit_code != 0 and not (tmp_path / "d").exists()
