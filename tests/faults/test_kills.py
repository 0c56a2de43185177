"""kill -9 at each boundary of every command that writes, then a rerun that completes with the
same results as an uninterrupted run, while the earlier outputs stay byte-identical."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fault_tools import tree_hash

REPO = Path(__file__).resolve().parents[2]
KILL_AT = Path(__file__).with_name("kill_at.py")
TRAIN = ("--iterations", "4", "--encoder-iterations", "4", "--checkpoint-every", "2", "--batch-size", "8",
         "--latent-dim", "8", "--base-channels", "8", "--seed", "1", "--device", "cpu")


def killed(target: str, nth: int, *args: object) -> subprocess.CompletedProcess:
    """Run ``octanogan ARGS`` and kill it at the ``nth`` call of ``target``; assert it was killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(KILL_AT), target, str(nth), *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == -signal.SIGKILL, f"not killed at {target} #{nth}:\n{result.stderr[-2000:]}"
    return result


def weights(run: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for name in ("generator", "discriminator", "encoder"):
        for key, value in torch.load(run / f"{name}.pt", weights_only=True).items():
            tensors[f"{name}.{key}"] = value
    return tensors


@pytest.fixture(scope="module")
def straight_run(earlier, tmp_path_factory, cli_module) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    assert cli_module("train", earlier["store"], "--out", run, *TRAIN).exit_code == 0
    return run


@pytest.fixture(scope="module")
def cli_module():
    from typer.testing import CliRunner

    from octanogan.cli import app

    return lambda *args: CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


# (where, which call): save_tensors writes checkpoints (GAN at 2 and 4, encoder at 2 and 4),
# save_weights writes generator.pt, discriminator.pt, encoder.pt; plot_losses comes just before
# run.json is marked finished. Three points that exercise the same recovery as a default one
# (weights rewritten after a finished phase) run with `make test-all` only, to keep the default
# suite under five minutes.
SLOW = pytest.mark.slow
TRAIN_KILLS = [
    ("octanogan.training.run:save_tensors", 1, "before the first checkpoint"),
    ("octanogan.training.run:save_tensors", 2, "inside the GAN phase"),
    pytest.param("octanogan.training.run:save_weights", 1,
                 "between the last GAN checkpoint and generator.pt", marks=SLOW),
    ("octanogan.training.run:save_weights", 2, "between generator.pt and discriminator.pt"),
    ("octanogan.training.run:save_tensors", 4, "inside the encoder phase"),
    pytest.param("octanogan.training.run:save_weights", 3,
                 "between the last encoder checkpoint and encoder.pt", marks=SLOW),
    pytest.param("octanogan.training.run:plot_losses", 1, "before run.json says finished", marks=SLOW),
]


def _kill_id(kill: object) -> str:
    return str(kill.values[2] if hasattr(kill, "values") else kill[2])  # type: ignore[index]


@pytest.mark.parametrize("target, nth, when", TRAIN_KILLS, ids=[_kill_id(k) for k in TRAIN_KILLS])
def test_train_killed_then_resumed_matches_an_uninterrupted_run(target, nth, when, earlier, straight_run,
                                                                tmp_path, cli_module):
    run = tmp_path / "run"
    before = tree_hash(earlier["store"])
    killed(target, nth, "train", earlier["store"], "--out", run, *TRAIN)
    result = cli_module("train", earlier["store"], "--out", run, "--resume")
    assert result.exit_code == 0, result.output
    expected, got = weights(straight_run), weights(run)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)
    assert tree_hash(earlier["store"]) == before


def test_overwrite_killed_before_its_first_checkpoint_keeps_the_old_run(earlier, straight_run, tmp_path,
                                                                        cli_module):
    run = tmp_path / "run"
    shutil.copytree(straight_run, run)
    before = tree_hash(run)
    killed("octanogan.training.run:save_tensors", 1, "train", earlier["store"], "--out", run, "--overwrite",
           *TRAIN[:-2], "--seed", "5", "--device", "cpu")
    # the next command finds the old run back in place
    result = cli_module("train", earlier["store"], "--out", run, "--resume")
    assert result.exit_code == 0 and "nothing to train" in result.output, result.output
    assert tree_hash(run) == before


def test_extract_killed_then_rerun_matches_an_uninterrupted_store(earlier, tmp_path, cli_module):
    manifest = earlier["cohort"] / "manifest.csv"
    args = ("extract", manifest, "--patch-size", "32", "--stride", "16")
    store = tmp_path / "store"
    assert cli_module(*args, "--out", tmp_path / "straight").exit_code == 0
    killed("octanogan.patches.extract:sha256_file", 2, *args, "--out", store)
    assert not store.exists()
    assert cli_module(*args, "--out", store).exit_code == 0
    straight = tmp_path / "straight"
    assert (store / "index.csv").read_bytes() == (straight / "index.csv").read_bytes()
    assert tree_hash(store / "shards") == tree_hash(straight / "shards")


SCORE = ("--device", "cpu", "--hybrid-steps", "2")


def _scores(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "volumes.csv")[["volume_id", "score", "n_patches"]]
    return table.sort_values("volume_id").reset_index(drop=True)


def test_score_killed_mid_volume_then_rerun_matches(earlier, tmp_path, cli_module):
    out = tmp_path / "scores"
    killed("octanogan.io:write_nifti", 3, "score", earlier["run"], earlier["cohort"] / "manifest.csv",
           "--out", out, *SCORE)
    result = cli_module("score", earlier["run"], earlier["cohort"] / "manifest.csv", "--out", out, *SCORE)
    assert result.exit_code == 0 and "1 already done" in result.output, result.output
    pd.testing.assert_frame_equal(_scores(out), _scores(earlier["eval"] / "scores"))


def test_concurrent_shards_into_one_folder_match_a_single_run(earlier, tmp_path, cli_module):
    out = tmp_path / "scores"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    jobs = [subprocess.Popen([sys.executable, "-m", "octanogan", "score", str(earlier["run"]),
                              str(earlier["cohort"] / "manifest.csv"), "--out", str(out), *SCORE,
                              "--shard", f"{i}/2"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for i in range(2)]
    for job in jobs:
        _, err = job.communicate(timeout=180)
        assert job.returncode == 0, err[-2000:]
    result = cli_module("score", earlier["run"], earlier["cohort"] / "manifest.csv", "--out", out, *SCORE)
    assert "scored 0 volume(s)" in result.output
    pd.testing.assert_frame_equal(_scores(out), _scores(earlier["eval"] / "scores"))


def test_evaluate_killed_while_rendering_keeps_the_old_evaluation(earlier, tmp_path, cli_module):
    evaluation = tmp_path / "eval"
    shutil.copytree(earlier["eval"], evaluation)
    before = tree_hash(evaluation)
    args = ("evaluate", earlier["run"], earlier["cohort"] / "manifest.csv", "--annotations",
            earlier["cohort"] / "annotations.csv", "--out", evaluation, *SCORE, "--n-bootstrap", "12")
    killed("octanogan.report.render:render_evaluation", 1, *args)
    assert tree_hash(evaluation) == before
    assert cli_module(*args).exit_code == 0
    info = (evaluation / "evaluation.json").read_text()
    assert '"n_bootstrap": 12' in info and (evaluation / "report" / "index.html").is_file()
    pd.testing.assert_frame_equal(_scores(evaluation / "scores"), _scores(earlier["eval"] / "scores"))


def test_a_swap_killed_between_its_two_renames_is_undone(tmp_path):
    from octanogan.outputs.folder import atomic_dir

    target = tmp_path / "report"
    with atomic_dir(target, "report") as tmp:
        (tmp / "index.html").write_text("old")
    os.replace(target, tmp_path / ".report.old")  # the first rename of a later swap, then kill -9
    with atomic_dir(target, "report") as tmp:
        (tmp / "index.html").write_text("new")
    assert (target / "index.html").read_text() == "new"
    assert not (tmp_path / ".report.old").exists()


def test_convert_killed_then_rerun_matches_an_uninterrupted_conversion(tmp_path, cli_module):
    inputs = tmp_path / "scans"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(inputs / f"scan{i}.npy", rng.random((2, 64, 64), dtype=np.float32))
    assert cli_module("convert", inputs, "--out", tmp_path / "straight").exit_code == 0
    out = tmp_path / "converted"
    killed("octanogan.io.convert:write_nifti", 2, "convert", inputs, "--out", out)
    assert cli_module("convert", inputs, "--out", out).exit_code == 0
    assert (out / "manifest.csv").read_bytes() == (tmp_path / "straight" / "manifest.csv").read_bytes()
    assert tree_hash(out / "volumes") == tree_hash(tmp_path / "straight" / "volumes")
