"""``octanogan run``: every stage from one YAML, through the real CLI; a rerun reuses finished stages."""

from __future__ import annotations

import pandas as pd
from tiny import TINY_PIPELINE


def test_run_executes_every_stage_and_resumes(tmp_path, cli):
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(TINY_PIPELINE)
    out = tmp_path / "out"
    result = cli("run", pipeline, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    for stage in ("[phantom]", "[extract]", "[train]", "[score]", "patch auroc"):
        assert stage in result.output
    report = out / "eval" / "report" / "index.html"
    assert report.is_file() and str(report.resolve()) in result.output.replace("\n", "")
    metrics = pd.read_csv(out / "eval" / "metrics.csv")
    assert {"voxel", "patch", "bscan", "volume"} <= set(metrics["level"])

    again = cli("run", pipeline, "--out", out, "--device", "cpu")
    assert again.exit_code == 0, again.output
    assert "[train] reusing" in again.output and "0 volumes" in again.output


def test_run_refuses_unknown_sections_and_settings(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {phantom: {}}\ntrian: {iterations: 3}\n")
    result = cli("run", bad, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "unknown section(s) ['trian']" in result.output
    bad.write_text("data: {phantom: {healthy: 3, diseased: 1, shape: [2, 496, 96]}}\n"
                   "extract: {patchsize: 32}\n")
    result = cli("run", bad, "--out", tmp_path / "o2")
    assert result.exit_code == 2 and "patchsize" in result.output
    assert not (tmp_path / "o2" / "patches").exists()
