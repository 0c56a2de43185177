"""Training: config loading, data order, the run folder, resume equivalence and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_training import make_store

from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import sha256_file
from octanogan.patches.store import PatchStore
from octanogan.training import TrainConfig, load_run, load_train_config, read_config, train
from octanogan.training.data import BatchSchedule, StoreBatches, batch_stream

TINY = {"batch_size": 16, "latent_dim": 8, "base_channels": 8, "device": "cpu"}
LOSS_COLUMNS = ["d_loss", "g_loss", "e_loss", "d_real", "d_fake", "gradient_penalty", "e_image",
                "e_feature"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "patches", n_patches=96, patch_size=32,
                      shard_size=40)


def tiny(**changes) -> TrainConfig:
    return TrainConfig(**{"iterations": 8, "encoder_iterations": 4, "checkpoint_every": 3,
                          **TINY, **changes})


class Crash(Exception):
    """Stands in for a killed process."""


def crash_at(phase: str, iteration: int):
    def on_iteration(progress) -> None:
        if (progress.phase, progress.iteration) == (phase, iteration):
            raise Crash
    return on_iteration


def losses(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "losses.csv")


def assert_same_losses(a: Path, b: Path) -> None:
    left, right = losses(a), losses(b)
    assert left[["iteration", "phase"]].equals(right[["iteration", "phase"]])
    np.testing.assert_allclose(left[LOSS_COLUMNS].to_numpy(float), right[LOSS_COLUMNS].to_numpy(float),
                               rtol=0, atol=1e-6)


# --- config -----------------------------------------------------------------------------------

def test_config_from_flat_yaml_pipeline_section_and_overrides(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("iterations: 50\nobjective: wgan-gp\nlr: 1e-4\n")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("extract: {stride: 16}\ntrain:\n  iterations: 70\n  batch_size: 8\n")
    config = load_train_config(flat, {"batch_size": 4, "seed": None})
    assert (config.iterations, config.objective, config.batch_size, config.seed) == (50, "wgan-gp", 4, 0)
    assert config.lr == 1e-4
    assert config.resolved().critic_steps == 5 and config.discriminator_norm == "layer"
    assert load_train_config(pipeline).iterations == 70
    assert load_train_config(None, {"lr": 1e-3}).lr == 1e-3


@pytest.mark.parametrize("text, message", [("iterationz: 5\n", "'iterationz' is unknown"),
                                           ("batch_size: many\n", "batch_size"),
                                           ("lr: fast\n", "lr"),
                                           ("objective: lsgan\n", "objective"),
                                           ("batch_size: 0\n", "batch_size")])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(OctanoganError, match=message):
        load_train_config(path)


# --- data -------------------------------------------------------------------------------------

def test_schedule_visits_every_patch_once_per_epoch_and_is_deterministic():
    schedule = BatchSchedule(n_patches=50, batch_size=8, seed=3)
    assert schedule.batches_per_epoch == 6
    epoch0 = np.concatenate([schedule.indices(k) for k in range(6)])
    epoch1 = np.concatenate([schedule.indices(k) for k in range(6, 12)])
    assert len(set(epoch0)) == 48 and len(set(epoch1)) == 48
    assert not np.array_equal(epoch0, epoch1)
    again = BatchSchedule(50, 8, seed=3)
    assert np.array_equal(again.indices(7), schedule.indices(7))  # no hidden state: resumable
    assert not np.array_equal(BatchSchedule(50, 8, seed=4).indices(0), schedule.indices(0))


def test_batches_stream_from_store_with_flips_and_workers(store):
    patches = PatchStore(store)
    schedule = BatchSchedule(len(patches), 16, seed=0)
    plain = StoreBatches(patches, schedule)[2]
    flipped = StoreBatches(patches, schedule, flip=True)[2]
    mask = schedule.flips(2)
    assert plain.shape == (16, 1, 32, 32) and plain.dtype == torch.float32
    assert 0 < mask.sum() < 16
    torch.testing.assert_close(flipped[mask], plain[mask].flip(-1))
    torch.testing.assert_close(flipped[~mask], plain[~mask])
    in_process = list(batch_stream(patches, schedule, 3, 6, flip=True))
    in_worker = list(batch_stream(patches, schedule, 3, 6, flip=True, workers=1))
    for a, b in zip(in_process, in_worker, strict=True):
        torch.testing.assert_close(a, b)


# --- the command and the run folder -----------------------------------------------------------

def test_cli_trains_and_writes_a_loadable_run_folder(cli, store, tmp_path):
    run = tmp_path / "run"
    result = cli("train", store, "--out", run, "--iterations", 6, "--encoder-iterations", 3,
                 "--batch-size", 16, "--latent-dim", 8, "--base-channels", 8,
                 "--checkpoint-every", 4, "--device", "cpu", "--flip")
    assert result.exit_code == 0, result.output
    assert "trained 6 GAN + 3 encoder iterations" in result.output and str(run) in result.output
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "run.json", "generator.pt", "discriminator.pt", "encoder.pt",
            "checkpoint.pt", "losses.csv", "loss_curve.png", "samples"} <= names
    assert {p.name for p in (run / "samples").iterdir()} == {
        "iter_000004.png", "iter_000006.png", "encoder_iter_000003.png"}
    for weights in run.glob("*.pt"):
        assert isinstance(torch.load(weights, weights_only=True), dict)
    table = losses(run)
    assert list(table["phase"]) == ["gan"] * 6 + ["encoder"] * 3
    assert table.loc[table.phase == "gan", ["d_loss", "g_loss"]].notna().all().all()
    assert table.loc[table.phase == "encoder", "e_loss"].notna().all()
    record = json.loads((run / "run.json").read_text())
    assert record["finished"] and record["store"]["content_hash"] == PatchStore(store).content_hash()
    assert {"python", "torch", "monai", "numpy", "octanogan"} <= set(record["versions"])
    assert read_config(run).flip is True

    loaded = load_run(run, device="cpu")
    assert loaded.patch_size == 32 and loaded.latent_dim == 8 and loaded.encoder is not None
    assert not loaded.generator.training and not loaded.discriminator.training
    with torch.no_grad():
        x = loaded.generator(torch.zeros(2, 8))
        assert loaded.discriminator.features(x).shape == (2, 32, 4, 4)
        assert loaded.encoder(x).shape == (2, 8)


def test_run_without_encoder_loads_with_encoder_none(store, tmp_path):
    train(store, tmp_path / "run", tiny(iterations=2, encoder_iterations=0))
    assert load_run(tmp_path / "run").encoder is None


@pytest.mark.parametrize("objective, phase, at", [("dcgan", "gan", 5), ("dcgan", "encoder", 3),
                                                  ("wgan-gp", "gan", 7)])
def test_resume_after_a_crash_reproduces_an_uninterrupted_run(store, tmp_path, objective, phase, at):
    config = tiny(objective=objective, flip=True)
    train(store, tmp_path / "straight", config)
    with pytest.raises(Crash):
        train(store, tmp_path / "resumed", config, on_iteration=crash_at(phase, at))
    assert not json.loads((tmp_path / "resumed" / "run.json").read_text())["finished"]
    with open(tmp_path / "resumed" / "losses.csv", "a") as log:  # died between log and checkpoint
        log.write(f"{at},{phase},9,9,9,9,9,9,9,9\n{at + 1},{phase},9,")
    train(store, tmp_path / "resumed", config, resume=True)
    assert_same_losses(tmp_path / "straight", tmp_path / "resumed")
    a, b = load_run(tmp_path / "straight"), load_run(tmp_path / "resumed")
    for name in ("generator", "discriminator", "encoder"):
        for (key, x), y in zip(getattr(a, name).state_dict().items(),
                               getattr(b, name).state_dict().values()):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=f"{name}.{key}")


def test_resume_can_extend_a_finished_run(cli, store, tmp_path):
    train(store, tmp_path / "straight", tiny())
    train(store, tmp_path / "short", tiny(iterations=4, encoder_iterations=0))
    result = cli("train", store, "--out", tmp_path / "short", "--resume", "--iterations", 8,
                 "--encoder-iterations", 4)
    assert result.exit_code == 0, result.output
    assert_same_losses(tmp_path / "straight", tmp_path / "short")


# --- errors leave the run folder as it was ----------------------------------------------------

@pytest.fixture
def finished_run(store, tmp_path) -> Path:
    train(store, tmp_path / "run", tiny(iterations=3, encoder_iterations=2))
    return tmp_path / "run"


def corrupt_store(folder: Path) -> Path:
    (folder / "shards" / "00001.npy").write_bytes(b"not a numpy file")
    return folder


def test_missing_or_corrupt_store_is_a_clear_error(cli, store, tmp_path, finished_run):
    broken = tmp_path / "broken"
    make_store(broken, n_patches=96, patch_size=32, shard_size=40)
    corrupt_store(broken)
    before = sha256_file(finished_run)
    for store_dir, message in [(tmp_path / "missing", "patch store folder not found"),
                               (broken, "unreadable patch shard")]:
        for extra in ([], ["--resume"]):
            result = cli("train", store_dir, "--out", finished_run, *extra)
            assert result.exit_code != 0
            assert message in result.output and "Traceback" not in result.output
    assert sha256_file(finished_run) == before


def test_corrupt_checkpoint_on_resume_is_a_clear_error(cli, store, finished_run):
    checkpoint = finished_run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    before = sha256_file(finished_run)
    result = cli("train", store, "--out", finished_run, "--resume", "--iterations", 5)
    assert result.exit_code != 0
    assert "corrupt or unreadable checkpoint" in result.output
    assert sha256_file(finished_run) == before


def test_existing_run_is_never_silently_replaced(cli, store, finished_run):
    before = sha256_file(finished_run)
    result = cli("train", store, "--out", finished_run, "--iterations", 2)
    assert result.exit_code != 0 and "holds a finished run" in result.output
    result = cli("train", store, "--out", finished_run, "--resume", "--batch-size", 8)
    assert result.exit_code != 0 and "changed settings ['batch_size']" in result.output
    (finished_run / "notes.txt").write_text("mine")
    result = cli("train", store, "--out", finished_run, "--overwrite")
    assert result.exit_code != 0 and "notes.txt" in result.output
    (finished_run / "notes.txt").unlink()
    assert sha256_file(finished_run) == before
    result = cli("train", store, "--out", finished_run, "--overwrite", "--iterations", 2,
                 "--encoder-iterations", 0, "--batch-size", 16, "--latent-dim", 8,
                 "--base-channels", 8)
    assert result.exit_code == 0, result.output
    assert not (finished_run / "encoder.pt").exists()


def test_load_run_errors_name_the_problem(finished_run, tmp_path):
    with pytest.raises(InputError, match="run folder not found"):
        load_run(tmp_path / "nowhere")
    (finished_run / "generator.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt or unreadable generator weights"):
        load_run(finished_run)
