"""Scoring under torchrun (gloo on CPU): two processes give what one gives, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from octanogan.distributed import Ranks, ranks_from_env
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


def test_train_under_torchrun_is_refused_in_one_line(tiny_run, tmp_path, cli, monkeypatch):
    """Until training is distributed (issue 20), N ranks must not race for one run folder."""
    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    result = cli("train", tiny_run.parent / "store", "--out", tmp_path / "run", "--iterations", "2",
                 "--device", "cpu")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "without torchrun" in errors[0]
    assert not (tmp_path / "run").exists()
