"""Scoring under torchrun (gloo on CPU): two processes give what one gives, byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from octanogan.distributed import Ranks, joined_process_group, ranks_from_env
from octanogan.errors import OctanoganError

TORCHRUN = Path(sys.executable).parent / "torchrun"


def test_ranks_come_from_the_torchrun_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert ranks_from_env() == Ranks(0, 1, 0) and not ranks_from_env().active
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = ranks_from_env()
    assert ranks.active and not ranks.is_main and ranks.local_rank == 1
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(OctanoganError, match="outside WORLD_SIZE"):
        ranks_from_env()


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_two_process_score_equals_one_process(tiny_run, tiny_cohort, tmp_path, cli):
    import nibabel as nib
    import torch

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    common = ["score", str(tiny_run), str(tiny_cohort), "--mode", "hybrid", "--hybrid-steps", "2",
              "--stride", "32", "--device", "cpu"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun worker below: the same floating-point order
    try:
        one = cli(*common, "--out", tmp_path / "one")
    finally:
        torch.set_num_threads(threads)
    assert one.exit_code == 0, one.output
    two = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "-m", "octanogan",
                          *common, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("scored ") == 1  # rank 0 alone reports

    first, second = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert first.keys() == second.keys()
    for name, path in first.items():
        if name.endswith(".nii.gz"):  # gzip headers carry a time: compare the voxels
            a, b = nib.load(path), nib.load(second[name])
            assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)), name
            assert np.array_equal(a.affine, b.affine), name
        elif name.endswith(".npz"):
            with np.load(path) as a, np.load(second[name]) as b:
                for key in a.files:  # QC's CNR is NaN where it cannot be measured
                    nan_too = np.issubdtype(a[key].dtype, np.floating)
                    assert np.array_equal(a[key], b[key], equal_nan=nan_too), f"{name}: {key}"
        else:
            assert path.read_bytes() == second[name].read_bytes(), name


def _torchrun(*args: Any, ranks: int = 2) -> list[str]:
    """The torchrun command line for ``args`` with ``ranks`` CPU processes."""
    return [str(TORCHRUN), "--standalone", "--nproc-per-node", str(ranks), *map(str, args)]


def _one_thread_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    return env


WORKER = Path(__file__).parent / "ddp_train_worker.py"


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_train_refuses_a_batch_the_ranks_do_not_divide_in_one_line(tiny_run, tmp_path):
    result = subprocess.run(_torchrun("-m", "octanogan", "train", tiny_run.parent / "store", "--out",
                                      tmp_path / "run", "--batch-size", "9", "--device", "cpu"),
                            capture_output=True, text=True, env=_one_thread_env())
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr[-2000:]
    assert "--batch-size 9" in errors[0] and "divisible by the 2 ranks" in errors[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_two_ranks_train_one_run_with_identical_weights_and_scores_close_to_one_process(
        tiny_run, tiny_cohort, tmp_path, cli):
    """Two gloo ranks hold the same weights after every step (checked by the worker through
    all_gather), write one run folder, and score the phantom like one process does.

    Tolerance: at this budget (300 + 100 iterations) one process gives voxel AUROC 0.68-0.79 over
    seeds 3-6; the two-rank run has the same seed, batches and noise and differs only in BatchNorm
    statistics over 8 instead of 16 patches (gloo), so it must come within 0.05 of the same-seed
    one-process run (measured: 0.791 against 0.783), with samples as varied as one process's.
    """
    import torch
    from ddp_train_worker import CONFIG

    from octanogan.training import TrainConfig, train

    store = tiny_run.parent / "store"
    two = subprocess.run(_torchrun(WORKER, store, tmp_path / "two", 300, 100, 100),
                         capture_output=True, text=True, env=_one_thread_env())
    assert two.returncode == 0, two.stderr[-3000:]
    assert sorted(line for line in two.stdout.splitlines() if "identical weights" in line) == \
        [f"rank {r}: identical weights after 400 steps" for r in (0, 1)]
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert record["finished"] and record["sessions"][-1] == {
        "started": record["sessions"][-1]["started"], "world_size": 2, "batch_norm": "per-rank",
        "backend": "gloo"}
    losses = (tmp_path / "two" / "losses.csv").read_text().splitlines()
    assert len(losses) == 1 + 300 + 100  # one log, rank 0's, with the ranks' mean losses

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(store, tmp_path / "one", TrainConfig(iterations=300, encoder_iterations=100,
                                                   checkpoint_every=100, **CONFIG))
    finally:
        torch.set_num_threads(threads)
    auroc = {}
    for name in ("one", "two"):
        result = cli("evaluate", tmp_path / name, tiny_cohort, "--annotations",
                     tiny_cohort.parent / "annotations.csv", "--out", tmp_path / f"eval_{name}",
                     "--mode", "encoder", "--stride", "16", "--n-bootstrap", "0", "--device", "cpu")
        assert result.exit_code == 0, result.output
        metrics = pd.read_csv(tmp_path / f"eval_{name}" / "metrics.csv")
        pick = metrics[(metrics.level == "voxel") & (metrics.marker == "pooled")
                       & (metrics.metric == "auroc")]
        auroc[name] = float(pick.value.iloc[0])
        diversity = json.loads((tmp_path / name / "run.json").read_text())["health"]["sample_diversity"]
        assert diversity > 0.5, (name, diversity)
    assert abs(auroc["two"] - auroc["one"]) <= 0.05, auroc


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not TORCHRUN.is_file() or sys.platform != "linux",
                    reason="torchrun not installed beside this Python, or not Linux")
def test_a_two_rank_run_killed_with_its_launcher_resumes_in_one_process(tiny_run, tmp_path, cli):
    run = tmp_path / "run"
    launcher = subprocess.Popen(_torchrun(WORKER, tiny_run.parent / "store", run, 400, 20, 5),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=_one_thread_env())
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").is_file() and launcher.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.05)
        assert launcher.poll() is None, "the run ended before it could be killed"
        ranks = _children(launcher.pid)
        assert len(ranks) == 2
    finally:
        os.kill(launcher.pid, signal.SIGKILL)  # the launcher alone: its ranks must not live on
        launcher.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in ranks):
        assert time.monotonic() < deadline, "the ranks outlived their launcher"
        time.sleep(0.05)
    result = cli("train", tiny_run.parent / "store", "--out", run, "--resume", "--device", "cpu")
    assert result.exit_code == 0, result.output
    record = json.loads((run / "run.json").read_text())
    assert record["finished"] and [s["world_size"] for s in record["sessions"]] == [2, 1]
    rows = pd.read_csv(run / "losses.csv")
    assert rows[rows.phase == "gan"].iteration.tolist() == list(range(1, 401))
    assert rows[rows.phase == "encoder"].iteration.tolist() == list(range(1, 21))


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_a_one_process_run_continues_under_torchrun(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # 6 GAN + 6 encoder iterations, one process
    result = subprocess.run(_torchrun("-m", "octanogan", "train", tiny_run.parent / "store", "--out", run,
                                      "--resume", "--encoder-iterations", "10", "--device", "cpu"),
                            capture_output=True, text=True, env=_one_thread_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 0 GAN + 4 encoder iterations") == 1  # rank 0 alone reports
    record = json.loads((run / "run.json").read_text())
    assert record["finished"] and record["encoder_iterations"] == 10
    assert [s["world_size"] for s in record.get("sessions", [])][-1:] == [2]
    rows = pd.read_csv(run / "losses.csv")
    assert rows[rows.phase == "encoder"].iteration.tolist() == list(range(1, 11))


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_a_rank_ends_without_the_interpreter_teardown_that_can_abort_it(tmp_path):
    """DDP leaves gloo's threads running; a rank that finalises with them can abort after its work."""
    script = tmp_path / "rank.py"
    script.write_text("import atexit, sys, torch\n"
                      "from octanogan.cli.common import end_rank\n"
                      "from octanogan.distributed import joined_process_group, process_group\n"
                      "atexit.register(print, 'teardown ran')\n"
                      "with process_group(torch.device('cpu')):\n"
                      "    print('work done')\n"
                      "if joined_process_group():\n"
                      "    end_rank(int(sys.argv[1]))\n")
    for code, launcher_code in ((0, 0), (3, 1)):
        result = subprocess.run(_torchrun(script, code), capture_output=True, text=True,
                                env=_one_thread_env())
        assert result.returncode == launcher_code, result.stderr[-2000:]
        assert result.stdout.count("work done") == 2 and "teardown ran" not in result.stdout
        if code:
            assert "exitcode  : 3" in result.stderr
    assert not joined_process_group()  # this process joined none: it ends normally


def test_run_under_torchrun_is_refused_in_one_line(tmp_path, cli, monkeypatch):
    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    result = cli("run", Path(__file__).parents[1] / "pipelines" / "demo.yaml", "--out", tmp_path / "out")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "without torchrun" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun not installed beside this Python")
def test_two_gpus_with_syncbatchnorm_train_what_one_gpu_trains(tiny_run, tmp_path):
    """With SyncBatchNorm, 2 ranks of batch 8 are one process of batch 16 up to float rounding."""
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    from ddp_train_worker import CONFIG

    from octanogan.training import TrainConfig, train
    from octanogan.training.checkpoint import load_tensors

    store = tiny_run.parent / "store"
    two = subprocess.run(_torchrun(WORKER, store, tmp_path / "two", 20, 10, 10, 16, "cuda"),
                         capture_output=True, text=True, env=_one_thread_env())
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["sessions"][-1]["batch_norm"] == \
        "synchronised"
    train(store, tmp_path / "one", TrainConfig(iterations=20, encoder_iterations=10, checkpoint_every=10,
                                               **{**CONFIG, "device": "cuda"}))
    for name in ("generator.pt", "discriminator.pt", "encoder.pt"):
        one, other = load_tensors(tmp_path / "one" / name, name), load_tensors(tmp_path / "two" / name, name)
        for key, value in one.items():
            if value.is_floating_point():
                torch.testing.assert_close(other[key], value, rtol=1e-3, atol=1e-4, msg=f"{name}: {key}")
