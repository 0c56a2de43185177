"""``octanogan extract`` through the real CLI on a tiny phantom cohort."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from octanogan.fsutil import sha256_file
from octanogan.io.manifest import load_manifest
from octanogan.patches import PatchStore


def _store_digest(store):
    return sha256_file(store / "shards") + sha256_file(store / "index.csv")


def test_extract_writes_a_reproducible_store(tiny_cohort, tmp_path, cli):
    result = cli("extract", tiny_cohort, "--out", tmp_path / "store", "--patch-size", 32, "--stride", 16)
    assert result.exit_code == 0, result.output
    assert "patches/s" in result.output
    store = PatchStore(tmp_path / "store")
    train = load_manifest(tiny_cohort).query("label == 'healthy' and split == 'train'")
    assert set(store.index["volume_id"]) == set(train["volume_id"])
    assert [i["volume_id"] for i in store.settings["inputs"]] == list(train["volume_id"])
    assert all(len(i["sha256"]) == 64 for i in store.settings["inputs"])
    patches = store.batch(np.arange(len(store)))
    assert patches.shape[1:] == (32, 32) and patches.min() >= -1 and patches.max() <= 1
    # Patches show retina, not empty vitreous: most of each patch is above the background level.
    assert np.median((patches > -0.8).mean(axis=(1, 2))) > 0.5
    # A second run on the same inputs reproduces the same store, byte for byte.
    cli("extract", tiny_cohort, "--out", tmp_path / "again", "--patch-size", 32, "--stride", 16)
    assert _store_digest(tmp_path / "store") == _store_digest(tmp_path / "again")


def test_extract_bad_volume_fails_cleanly_and_keeps_old_store(tiny_cohort, tmp_path, cli):
    cohort = tmp_path / "cohort"
    shutil.copytree(tiny_cohort.parent, cohort)
    store = tmp_path / "store"
    assert cli("extract", cohort / "manifest.csv", "--out", store, "--patch-size", 32).exit_code == 0
    before = _store_digest(store)
    manifest = pd.read_csv(cohort / "manifest.csv")
    victim = cohort / manifest.query("split == 'train'")["path"].iloc[-1]
    victim.write_bytes(victim.read_bytes()[:300])  # truncated NIfTI
    result = cli("extract", cohort / "manifest.csv", "--out", store, "--patch-size", 32)
    assert result.exit_code == 2
    assert victim.name in result.output and "Traceback" not in result.output
    assert _store_digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort", "store"]


def test_extract_refuses_manifest_without_matching_volumes(tiny_cohort, tmp_path, cli):
    result = cli("extract", tiny_cohort, "--out", tmp_path / "s", "--split", "val", "--label", "diseased")
    assert result.exit_code == 2 and "no diseased volumes" in result.output
    assert not (tmp_path / "s").exists()
