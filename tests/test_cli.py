"""The command line itself: help is fast (no torch/MONAI import), errors are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["phantom", "convert", "extract", "train", "score", "evaluate", "calibrate", "predict",
            "info", "report", "run"]


def test_the_list_above_is_every_command():
    """A new command must be added to COMMANDS, so its help and import cost are tested."""
    import typer.main

    from octanogan.cli import app

    assert set(typer.main.get_command(app).commands) == set(COMMANDS)


def test_help_lists_every_command_without_importing_torch():
    code = ("import sys; from typer.testing import CliRunner; from octanogan.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "print(r.output); heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'monai', 'scipy', 'pandas', 'nibabel', 'skimage', 'sklearn')); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_console_script_reports_errors_in_one_line_and_debug_shows_traceback(tmp_path):
    exe = [sys.executable, "-m", "octanogan"]
    result = subprocess.run([*exe, "extract", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "s")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.csv: manifest not found" in result.stderr
    debug = subprocess.run([*exe, "--debug", "extract", str(tmp_path / "missing.csv"), "--out",
                            str(tmp_path / "s")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
