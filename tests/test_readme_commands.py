"""The README's commands as a new user types them: relative paths, from the repository root.

``make demo`` runs ``octanogan run pipelines/demo.yaml --out demo_output``; here the same command
line runs on a tiny pipeline (seconds, not minutes) with a relative ``--out``, and the report it
ends with must open in a real browser with every image decoded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from browser_check import page_problems
from tiny import TINY_PIPELINE

REPO = Path(__file__).resolve().parents[1]


def octanogan(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "octanogan", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def demo_recipe() -> list[str]:
    """The command of the Makefile's ``demo`` target, as words."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo:.*\n\t(.+)$", text, re.MULTILINE)
    assert recipe, "the Makefile has no demo recipe"
    return recipe.group(1).split()


def test_the_demo_recipe_is_the_run_command_with_a_relative_out():
    words = demo_recipe()
    assert words[0].endswith("/octanogan") and words[1:3] == ["run", "pipelines/demo.yaml"]
    assert words[3] == "--out" and not words[4].startswith("/")


def test_readme_demo_command_with_relative_out_from_the_repository_root(tmp_path):
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(TINY_PIPELINE)
    relative_out = Path(os.path.relpath(tmp_path / "demo_output", REPO))
    result = octanogan("run", os.path.relpath(pipeline, REPO), "--out", relative_out, "--device", "cpu",
                       cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "demo_output" / "eval" / "report").resolve()
    assert f"report: {report / 'index.html'}" in result.stdout
    volumes = pd.read_csv(tmp_path / "demo_output" / "eval" / "scores" / "volumes.csv")
    assert len(volumes) == 4 and (report / "volumes").is_dir()
    assert len(list((report / "volumes").glob("*.html"))) == len(volumes)
    if shutil.which("/usr/bin/chromium"):
        assert page_problems(report) == {}


def test_evaluate_with_a_relative_manifest_from_another_folder(tiny_run, tiny_cohort, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = os.path.relpath(tiny_cohort, elsewhere)
    annotations = os.path.relpath(tiny_cohort.parent / "annotations.csv", elsewhere)
    result = octanogan("evaluate", os.path.relpath(tiny_run, elsewhere), manifest, "--annotations",
                       annotations, "--out", "eval", "--device", "cpu", "--hybrid-steps", "2",
                       "--n-bootstrap", "10", cwd=elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (elsewhere / "eval" / "report" / "index.html").is_file()
    again = octanogan("report", os.path.relpath(elsewhere / "eval", tmp_path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
