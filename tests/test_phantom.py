"""The synthetic OCT phantom: determinism, anatomy, lesions, cohort files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from octanogan.cli import app
from octanogan.errors import InputError, OctanoganError
from octanogan.io import affine_from_spacing, read_label_map, read_volume
from octanogan.io.manifest import load_annotations, load_manifest, load_markers
from octanogan.outputs.folder import marker_kind, write_marker
from octanogan.phantom import MARKERS, PhantomVolume, generate_volume, make_cohort
from octanogan.phantom.cohort import healthy_splits, spacing_for_shape, volume_seed

SHAPE = (4, 128, 128)


@pytest.fixture(scope="module")
def healthy() -> PhantomVolume:
    return generate_volume(SHAPE, seed=11)


@pytest.fixture(scope="module")
def diseased() -> list[PhantomVolume]:
    return [generate_volume(SHAPE, seed=s, diseased=True) for s in range(6)]


def test_same_seed_same_bytes_and_different_seed_differs():
    a = generate_volume((3, 96, 96), seed=5, diseased=True)
    b = generate_volume((3, 96, 96), seed=5, diseased=True)
    assert a.image.tobytes() == b.image.tobytes() and a.labels.tobytes() == b.labels.tobytes()
    assert np.array_equal(a.ilm, b.ilm) and np.array_equal(a.bm, b.bm)
    assert not np.array_equal(a.image, generate_volume((3, 96, 96), seed=6, diseased=True).image)


def test_types_ranges_and_shapes(healthy):
    assert healthy.image.dtype == np.float32 and healthy.image.shape == SHAPE
    assert healthy.image.min() >= 0 and healthy.image.max() <= 255
    assert np.array_equal(healthy.image, np.round(healthy.image))
    assert healthy.labels.dtype == np.uint8 and not healthy.labels.any()
    assert healthy.ilm.shape == healthy.bm.shape == (SHAPE[0], SHAPE[2])
    assert healthy.ilm.dtype == np.float32


def test_retina_band_is_realistic_at_default_scale():
    volume = generate_volume((1, 496, 512), seed=2)
    thickness = volume.bm - volume.ilm
    assert 60 < np.median(thickness) < 100  # about 300 um at 3.9 um per row
    assert 0.25 * 496 < np.median(volume.ilm) < 0.6 * 496
    assert np.ptp(volume.bm) > 10  # curved and tilted: flattening matters
    centre = thickness[0, 200:312].min()
    assert centre < np.median(thickness) - 10  # foveal pit


def mean_in(volume: PhantomVolume, layer: str) -> float:
    return float(volume.image[volume.layer_mask(layer)].mean())


def test_layer_order_and_reflectivity(healthy):
    boundaries = healthy.layer_boundaries
    assert np.all(np.diff(boundaries, axis=0) >= 0)  # layers stacked top to bottom
    vitreous = healthy.image[np.arange(SHAPE[1])[None, :, None] < healthy.ilm[:, None, :] - 3].mean()
    assert mean_in(healthy, "RNFL") > vitreous + 100
    assert mean_in(healthy, "RPE") > mean_in(healthy, "ONL") + 80
    assert mean_in(healthy, "OPL") > mean_in(healthy, "ONL") + 40
    assert mean_in(healthy, "IPL") > mean_in(healthy, "INL") + 30


def test_speckle_makes_layers_noisy(healthy):
    onl = healthy.image[healthy.layer_mask("ONL")]
    assert onl.std() > 8  # not a cartoon


def test_os_eye_mirrors_the_width_axis():
    od, os_ = generate_volume((2, 96, 96), seed=4, eye="OD"), generate_volume((2, 96, 96), seed=4, eye="OS")
    assert np.array_equal(od.image[..., ::-1], os_.image)
    assert np.array_equal(od.ilm[:, ::-1], os_.ilm)


def test_diseased_volumes_have_three_marker_types_inside_the_retina(diseased):
    rows = np.arange(SHAPE[1])[None, :, None]
    for volume in diseased:
        present = set(np.unique(volume.labels)) - {0}
        assert present <= set(MARKERS) and len(present) >= 3
        lesion = volume.labels > 0
        inside = (rows >= volume.ilm[:, None, :]) & (rows <= volume.bm[:, None, :])
        assert not (lesion & ~inside).any()


def test_lesions_span_adjacent_bscans():
    volume = generate_volume((9, 128, 128), seed=3, diseased=True)
    per_bscan = (volume.labels > 0).any(axis=(1, 2))
    assert per_bscan.sum() >= 3


def test_lesions_change_the_image_like_their_marker(diseased):
    """Fluid is darker and foci brighter than the nuclear layers around them."""
    checks = {"IRF": -1, "SRF": -1, "HRF": +1}
    seen = set()
    for volume in diseased:
        nuclear = volume.image[(volume.layer_mask("ONL") | volume.layer_mask("INL")) & (volume.labels == 0)]
        for value, name in MARKERS.items():
            voxels = volume.image[volume.labels == value]
            if name in checks and voxels.size >= 3:
                assert checks[name] * (voxels.mean() - nuclear.mean()) > 15, name
                seen.add(name)
    assert seen == set(checks)


def test_healthy_and_diseased_of_one_seed_differ_only_near_lesions():
    healthy, diseased = generate_volume(SHAPE, seed=8), generate_volume(SHAPE, seed=8, diseased=True)
    changed = healthy.image != diseased.image
    touched = (diseased.labels > 0).any(axis=1, keepdims=True)  # A-scans through a lesion
    assert changed.any() and changed.mean() < 0.5
    assert changed[np.broadcast_to(touched, changed.shape)].mean() > changed.mean()


@pytest.mark.parametrize("shape", [(1, 20, 128), (1, 128, 8), (0, 128, 128), (2, 128)])
def test_too_small_or_malformed_shape_is_a_clear_error(shape):
    with pytest.raises(OctanoganError, match="shape"):
        generate_volume(shape)


def test_healthy_splits():
    assert healthy_splits(8).count("val") >= 1 and healthy_splits(8).count("test") >= 1
    assert healthy_splits(10) == ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    assert healthy_splits(3) == ["train", "val", "test"]
    assert healthy_splits(1) == ["train"]


def test_make_cohort_writes_a_loadable_cohort(tmp_path):
    manifest_path = make_cohort(tmp_path / "cohort", n_healthy=3, n_diseased=2, shape=(3, 96, 96), seed=1)
    out = manifest_path.parent
    manifest = load_manifest(manifest_path)
    assert list(manifest["volume_id"]) == ["healthy_000", "healthy_001", "healthy_002",
                                           "diseased_000", "diseased_001"]
    assert list(manifest["split"]) == ["train", "val", "test", "test", "test"]
    assert list(manifest["eye"]) == ["OD", "OS", "OD", "OS", "OD"]
    assert set(manifest["device"]) == {"phantom"}
    assert load_markers(out / "markers.json") == MARKERS
    assert json.loads((out / "markers.json").read_text())["1"] == "IRF"
    assert set(load_annotations(out / "annotations.csv")) == set(manifest["volume_id"])
    for row in manifest.itertuples():
        volume = read_volume(row.path)
        assert volume.shape == (3, 96, 96)
        labels = read_label_map(row.annotation_path, volume.shape)
        assert labels.any() == (row.label == "diseased")
        boundaries = np.load(out / "boundaries" / f"{row.volume_id}.npz")
        assert boundaries["ilm"].shape == boundaries["bm"].shape == (3, 96)
        assert np.all(boundaries["bm"] > boundaries["ilm"])
    first = read_volume(manifest["path"][0])
    assert np.allclose(first.affine, affine_from_spacing(spacing_for_shape((3, 96, 96))))
    assert np.allclose(first.affine, read_volume(manifest["annotation_path"][0]).affine)
    again = generate_volume((3, 96, 96), seed=volume_seed(1, False, 0))
    assert np.array_equal(first.data, again.image)  # round trip through NIfTI is lossless


def test_make_cohort_is_deterministic(tmp_path):
    a = make_cohort(tmp_path / "a", 1, 1, shape=(2, 96, 96), seed=4).parent
    b = make_cohort(tmp_path / "b", 1, 1, shape=(2, 96, 96), seed=4).parent
    for name in ("healthy_000", "diseased_000"):
        assert np.array_equal(read_volume(a / "images" / f"{name}.nii.gz").data,
                              read_volume(b / "images" / f"{name}.nii.gz").data)


def test_make_cohort_rejects_empty_cohort(tmp_path):
    with pytest.raises(OctanoganError):
        make_cohort(tmp_path / "x", 0, 0, shape=(2, 96, 96))


def test_cli_writes_cohort(tmp_path):
    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "c"), "--healthy", "2", "--diseased", "1",
                                      "--shape", "2,96,96", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 volumes" in result.output
    assert len(load_manifest(tmp_path / "c" / "manifest.csv")) == 3


@pytest.mark.parametrize("shape", ["2,96", "a,b,c", "2,20,20"])
def test_cli_bad_shape_is_one_line_error(tmp_path, shape):
    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "c"), "--shape", shape])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "shape" in lines[0]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args, words", [
    (["--healthy", "-1"], "'healthy' must be >= 0"),
    (["--healthy", "0", "--diseased", "0"], "cannot both be 0"),
    (["--seed", "-3"], "seed"),
])
def test_cli_bad_counts_or_seed_are_one_line_errors(tmp_path, args, words):
    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "c"), "--shape", "2,96,96", *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert not (tmp_path / "c").exists()


def test_make_cohort_marks_its_folder_and_refuses_a_finished_cohort(tmp_path):
    manifest = make_cohort(tmp_path / "c", 1, 0, shape=(2, 96, 96), seed=1)
    assert marker_kind(tmp_path / "c") == "cohort"
    before = manifest.read_bytes()
    with pytest.raises(InputError, match="holds a phantom cohort already"):
        make_cohort(tmp_path / "c", 2, 0, shape=(2, 96, 96), seed=2)
    assert manifest.read_bytes() == before


def test_make_cohort_completes_an_unfinished_cohort(tmp_path):
    """A killed run leaves the marker and some volumes but no manifest: a rerun (the pipeline's)
    writes the cohort."""
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    write_marker(folder, "cohort")
    (folder / "images" / "healthy_000.nii.gz").write_bytes(b"truncated")
    manifest = make_cohort(folder, n_healthy=1, n_diseased=1, shape=(2, 96, 96), seed=0)
    assert len(load_manifest(manifest)) == 2
    assert read_volume(folder / "images" / "healthy_000.nii.gz").shape == (2, 96, 96)


def test_cli_takes_the_pipelines_data_phantom_section(tmp_path):
    """`phantom --config` reads the same section as `run` (data.phantom); typed options win."""
    import pandas as pd

    study = tmp_path / "study.yaml"
    study.write_text("data:\n  phantom: {healthy: 3, diseased: 2, shape: [2, 96, 96], seed: 5}\n")
    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "c"), "--config", str(study),
                                      "--diseased", "1"])
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(tmp_path / "c" / "manifest.csv")
    assert manifest["label"].value_counts().to_dict() == {"healthy": 3, "diseased": 1}
    assert "shape (2, 96, 96)" in result.output
