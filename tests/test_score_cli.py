"""``octanogan score`` through the real CLI: maps on the input grid, tables, resume, bad input."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from octanogan.fsutil import safe_name, sha256_file
from octanogan.io.manifest import load_manifest

FAST = ("--mode", "hybrid", "--hybrid-steps", 2, "--stride", 32, "--device", "cpu")


@pytest.fixture(scope="module")
def scored(tiny_run, tiny_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores") / "scores"
    from typer.testing import CliRunner

    from octanogan.cli import app

    result = CliRunner().invoke(app, ["score", str(tiny_run), str(tiny_cohort), "--out", str(out),
                                      *map(str, FAST)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_maps_lie_on_the_input_grid(scored, tiny_cohort):
    manifest = load_manifest(tiny_cohort)
    scored_ids = set(pd.read_csv(scored / "volumes.csv")["volume_id"])
    assert scored_ids == set(manifest.query("split != 'train'")["volume_id"])
    for row in manifest.query("split != 'train'").itertuples():
        image = nib.load(row.path)
        anomaly = nib.load(scored / "maps" / f"{safe_name(row.volume_id)}_anomaly.nii.gz")
        retina = nib.load(scored / "maps" / f"{safe_name(row.volume_id)}_retina.nii.gz")
        assert anomaly.shape == image.shape == retina.shape
        np.testing.assert_allclose(anomaly.affine, image.affine)
        values = np.asarray(anomaly.dataobj)
        mask = np.asarray(retina.dataobj).astype(bool)
        assert values.dtype == np.float32 and mask.any()
        assert (values >= 0).all() and (values[mask] > 0).any()  # darker than G(z): 0 where brighter
        assert (values[~mask] == 0).mean() > 0.5


def test_every_retinal_voxel_is_covered_by_a_patch(tiny_run, tiny_cohort, tmp_path, cli):
    """The absolute residual is > 0 wherever a patch reached: the grid covers the whole retina."""
    out = tmp_path / "absolute"
    result = cli("score", tiny_run, tiny_cohort, "--out", out, *FAST, "--map", "absolute", "--smooth", 0)
    assert result.exit_code == 0, result.output
    for row in load_manifest(tiny_cohort).query("split != 'train'").itertuples():
        anomaly = np.asarray(nib.load(out / "maps" / f"{safe_name(row.volume_id)}_anomaly.nii.gz").dataobj)
        retina = np.asarray(nib.load(out / "maps" / f"{safe_name(row.volume_id)}_retina.nii.gz").dataobj)
        assert (anomaly[retina.astype(bool)] > 0).mean() > 0.99


def test_tables_are_consistent(scored):
    volumes = pd.read_csv(scored / "volumes.csv")
    bscans = pd.read_csv(scored / "bscans.csv")
    for row in volumes.itertuples():
        patches = pd.read_csv(scored / "patches" / f"{row.safe_id}.csv")
        assert len(patches) == row.n_patches
        assert patches["score"].max() >= row.score >= patches["score"].min()
        np.testing.assert_allclose(patches["score"], 0.9 * patches["residual"] + 0.1 * patches["feature"],
                                   rtol=1e-5)
        assert set(bscans.query("volume_id == @row.volume_id")["bscan"]) == set(patches["bscan"])


def test_rerun_skips_finished_volumes_and_resumes_after_a_kill(scored, tiny_run, tiny_cohort, tmp_path, cli):
    partial = tmp_path / "partial"
    shutil.copytree(scored, partial)
    victim = pd.read_csv(partial / "volumes.csv")["safe_id"].iloc[0]
    (partial / "patches" / f"{victim}.csv").unlink()  # as if killed before this volume finished
    kept = {p.name: sha256_file(p) for p in (partial / "patches").iterdir()}
    result = cli("score", tiny_run, tiny_cohort, "--out", partial, *FAST)
    assert result.exit_code == 0, result.output
    assert "scored 1 volume(s)" in result.output
    assert all(sha256_file(partial / "patches" / name) == digest for name, digest in kept.items())
    a = pd.read_csv(scored / "patches" / f"{victim}.csv")
    b = pd.read_csv(partial / "patches" / f"{victim}.csv")
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5)  # encoder start: deterministic


def test_other_settings_into_the_same_folder_are_refused(scored, tiny_run, tiny_cohort, tmp_path, cli):
    copy = tmp_path / "copy"
    shutil.copytree(scored, copy)
    result = cli("score", tiny_run, tiny_cohort, "--out", copy, "--mode", "encoder", "--device", "cpu")
    assert result.exit_code == 2 and "other settings" in result.output


def test_bad_volume_stops_or_is_skipped_with_keep_going(tiny_run, tiny_cohort, tmp_path, cli):
    cohort = tmp_path / "cohort"
    shutil.copytree(tiny_cohort.parent, cohort)
    manifest = pd.read_csv(cohort / "manifest.csv")
    victim = manifest.query("split == 'test'").iloc[0]
    (cohort / victim["path"]).write_bytes(b"not a nifti")
    result = cli("score", tiny_run, cohort / "manifest.csv", "--out", tmp_path / "s", *FAST)
    assert result.exit_code == 2 and victim["path"].split("/")[-1] in result.output
    result = cli("score", tiny_run, cohort / "manifest.csv", "--out", tmp_path / "k", *FAST, "--keep-going")
    assert result.exit_code == 0 and f"skipped {victim['volume_id']}" in result.output
    assert victim["volume_id"] not in set(pd.read_csv(tmp_path / "k" / "volumes.csv")["volume_id"])


def test_unknown_mode_and_missing_run(tiny_cohort, tmp_path, cli):
    result = cli("score", tmp_path, tiny_cohort, "--out", tmp_path / "s", "--mode", "magic")
    assert result.exit_code == 2 and "'magic' is not one of" in result.output
    result = cli("score", tmp_path / "none", tiny_cohort, "--out", tmp_path / "s")
    assert result.exit_code == 2 and "run folder not found" in result.output


def test_shards_split_the_cohort_and_a_final_run_completes_the_tables(scored, tiny_run, tiny_cohort,
                                                                       tmp_path, cli):
    out = tmp_path / "sharded"
    first = cli("score", tiny_run, tiny_cohort, "--out", out, *FAST, "--shard", "0/2")
    second = cli("score", tiny_run, tiny_cohort, "--out", out, *FAST, "--shard", "1/2")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    final = cli("score", tiny_run, tiny_cohort, "--out", out, *FAST)
    assert "scored 0 volume(s)" in final.output
    expected = pd.read_csv(scored / "volumes.csv").sort_values("volume_id").reset_index(drop=True)
    merged = pd.read_csv(out / "volumes.csv").sort_values("volume_id").reset_index(drop=True)
    pd.testing.assert_series_equal(merged["volume_id"], expected["volume_id"])
    np.testing.assert_allclose(merged["score"], expected["score"], rtol=1e-5)
    assert "--shard must" in cli("score", tiny_run, tiny_cohort, "--out", out, "--shard", "2/2").output
