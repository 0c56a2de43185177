"""Patch grid over the retina band and the memory-mapped patch store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from octanogan.errors import InputError
from octanogan.patches import PatchStore, PatchStoreWriter, cut_patches, retina_grid
from octanogan.patches.grid import column_centres


def test_column_centres_cover_width_with_patches_inside():
    xs = column_centres(100, 32, 24)
    assert xs[0] == 16 and xs[-1] == 100 - 16
    assert np.all(np.diff(xs) <= 24)


def test_grid_covers_every_retina_voxel():
    depth, width, patch = 128, 96, 32
    ilm_flat = np.full((2, width), 50.0)
    ilm_flat[1, 40:60] = 70.0  # foveal pit: thinner retina
    bm_row = 100
    centres = retina_grid(ilm_flat, bm_row, depth, patch, stride=16)
    covered = np.zeros((2, depth, width), bool)
    for b, y, x in centres:
        covered[b, y - 16 : y + 16, x - 16 : x + 16] = True
    for b in range(2):
        for x in range(width):
            assert covered[b, int(ilm_flat[b, x]) : bm_row + 1, x].all()
    # centres stay inside the band
    assert centres[:, 1].min() >= 50 and centres[:, 1].max() <= bm_row


def test_cut_patches_matches_slicing():
    image = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
    centres = np.array([[0, 10, 10], [1, 20, 30]])
    patches = cut_patches(image, centres, 8)
    np.testing.assert_array_equal(patches[1], image[1, 16:24, 26:34])
    assert patches.shape == (2, 8, 8)


def _write_store(folder, n=10, patch=8, shard_size=4):
    writer = PatchStoreWriter(folder, patch, shard_size=shard_size)
    data = np.linspace(-1, 1, n * patch * patch, dtype=np.float32).reshape(n, patch, patch)
    writer.add(data, "vol<1>", 0, np.arange(n), np.arange(n) + 100)
    writer.close({"stride": 4})
    return data


def test_store_round_trip_across_shards(tmp_path):
    data = _write_store(tmp_path)
    store = PatchStore(tmp_path)
    assert len(store) == 10 and store.settings["n_shards"] == 3
    np.testing.assert_allclose(store.batch(np.arange(10)), data, atol=1e-3)  # float16
    order = np.array([7, 0, 9, 3, 3])
    np.testing.assert_allclose(store.batch(order), data[order], atol=1e-3)
    np.testing.assert_array_equal(store[9], store.batch(np.array([9]))[0])
    assert store.index.loc[7, "x"] == 107 and store.index.loc[7, "volume_id"] == "vol<1>"
    assert isinstance(store._shards[0], np.memmap)
    assert len(store.content_hash()) == 64


def test_store_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        PatchStore(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="settings.json"):
        PatchStore(tmp_path / "empty")
    _write_store(tmp_path / "s")
    (tmp_path / "s" / "shards" / "00001.npy").write_bytes(b"broken")
    with pytest.raises(InputError, match="00001.npy"):
        PatchStore(tmp_path / "s")
    _write_store(tmp_path / "t")
    settings = json.loads((tmp_path / "t" / "settings.json").read_text())
    settings["n_shards"] = 2
    (tmp_path / "t" / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(InputError, match="disagree"):
        PatchStore(tmp_path / "t")
