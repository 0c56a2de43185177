"""Issue 17's fault run, case by case: hidden files are content, settings have upper bounds checked
before any work, one writer per folder, a full disk names the file, no table cell runs as a
spreadsheet formula, records hold relative paths, and the smaller leaks (tracebacks, line ends,
complex voxels, unknown YAML keys)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from fault_tools import tree_hash

REPO = Path(__file__).resolve().parents[2]
TINY_TRAIN = ("--iterations", "2", "--encoder-iterations", "2", "--checkpoint-every", "2",
              "--batch-size", "8", "--latent-dim", "8", "--base-channels", "8", "--device", "cpu")


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def one_error(result, *words: str) -> str:  # noqa: ANN001
    """The single ``error:`` line of a refused command (exit 2, no traceback) holding ``words``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = error_lines(result.output)
    assert all(word in line for word in words), line
    return line


def hidden_only(folder: Path, entry: str) -> Path:
    """A folder holding one hidden entry: a git repository's ``.git`` or a ``.keep`` file."""
    folder.mkdir()
    if entry == ".git":
        (folder / ".git").mkdir()
        (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    else:
        (folder / entry).write_text("")
    return folder


# --- 1. a folder of hidden files is not empty ----------------------------------------------------


@pytest.mark.parametrize("entry", [".git", ".keep"])
@pytest.mark.parametrize("command", ["extract", "train", "evaluate", "predict"])
def test_a_folder_holding_only_hidden_entries_is_never_replaced(command, entry, earlier, tmp_path, cli):
    out = hidden_only(tmp_path / "g", entry)
    before = tree_hash(out)
    cohort = earlier["cohort"]
    args = {"extract": ["extract", cohort / "manifest.csv", "--patch-size", "32"],
            "train": ["train", earlier["store"], *TINY_TRAIN],
            "evaluate": ["evaluate", earlier["run"], cohort / "manifest.csv", "--device", "cpu"],
            "predict": ["predict", earlier["run"], cohort / "images" / "healthy_000.nii.gz",
                        "--device", "cpu"]}[command]
    one_error(cli(*args, "--out", out), str(out), entry, "not written by octanogan")
    assert tree_hash(out) == before and sorted(p.name for p in out.iterdir()) == [entry]


def test_a_run_folder_with_a_foreign_hidden_entry_is_not_set_aside(earlier, tmp_path, cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(earlier["run"], run)
    (run / ".thesis").write_text("months of work")
    one_error(cli("train", earlier["store"], "--out", run, "--overwrite", *TINY_TRAIN), ".thesis")
    assert (run / ".thesis").read_text() == "months of work"


# --- 2, 5. settings bounded before any work ------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["train", "STORE", "--out", "OUT/r", "--latent-dim", "100000000"], ("'latent_dim'", "<= 4,096")),
    (["train", "STORE", "--out", "OUT/r", "--batch-size", "10000000"], ("'batch_size'",)),
    (["extract", "MANIFEST", "--out", "OUT/s", "--patch-size", "4096"], ("'patch_size'", "<= 1,024")),
    (["evaluate", "RUN", "MANIFEST", "--out", "OUT/e", "--n-bootstrap", "100000000000"],
     ("'n_bootstrap'", "<= 100,000")),
    (["score", "RUN", "MANIFEST", "--out", "OUT/s", "--steps", "1000000000"], ("'steps'",)),
    (["phantom", "OUT/p", "--shape", "100000,100000,100000"], ("too large", "voxels per volume")),
], ids=["latent-dim", "batch-size", "patch-size", "n-bootstrap", "steps", "phantom-shape"])
def test_a_huge_setting_is_refused_before_any_work_naming_it(args, words, earlier, tmp_path, cli):
    names = {"STORE": earlier["store"], "RUN": earlier["run"],
             "MANIFEST": earlier["cohort"] / "manifest.csv"}
    args = [names.get(a, str(a).replace("OUT", str(tmp_path))) for a in args]
    before = {name: tree_hash(path) for name, path in earlier.items()}
    one_error(cli(*args), *words)
    assert list(tmp_path.iterdir()) == []  # no folder, no marker, no lock left behind
    assert {name: tree_hash(path) for name, path in earlier.items()} == before


@pytest.mark.parametrize("value", ["-5", "lots"])
def test_a_bad_voxel_limit_is_one_error_not_one_refusal_per_file(value, earlier, tmp_path, cli,
                                                                 monkeypatch):
    monkeypatch.setenv("OCTANOGAN_MAX_VOXELS", value)
    result = cli("extract", earlier["cohort"] / "manifest.csv", "--out", tmp_path / "s",
                 "--keep-going", "--patch-size", "32")
    one_error(result, "OCTANOGAN_MAX_VOXELS")
    assert "refused" not in result.output and not (tmp_path / "s").exists()


# --- 3. resume after a kill just after the run's marker -------------------------------------------


def test_resume_of_a_run_killed_right_after_its_marker_starts_it(earlier, tmp_path, cli):
    from octanogan.outputs.folder import write_marker

    run = tmp_path / "run"
    run.mkdir()
    write_marker(run, "run")
    result = cli("train", earlier["store"], "--out", run, "--resume", *TINY_TRAIN)
    assert result.exit_code == 0, result.output
    assert (run / "encoder.pt").is_file() and json.loads((run / "run.json").read_text())["finished"]


# --- 4. symbolic link loops ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["convert", "predict"])
def test_a_symlink_loop_is_one_line(command, earlier, tmp_path, cli):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    args = ["convert"] if command == "convert" else ["predict", earlier["run"]]
    one_error(cli(*args, tmp_path / "a", "--out", tmp_path / "out"), "symbolic link loop")
    assert not (tmp_path / "out").exists()


# --- concurrent writers ----------------------------------------------------------------------------

HOLDER = """
import sys, time
from octanogan.outputs.lock import hold
hold(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stuck_lock(earlier, tmp_path, cli):
    out = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        args = ("extract", earlier["cohort"] / "manifest.csv", "--out", out, "--patch-size", "32")
        one_error(cli(*args), str(out), "another octanogan process", f"pid {holder.pid}")
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / ".store.lock").exists()  # the killed holder's file stays, but not its lock
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / ".store.lock").exists()


# --- 6. a full disk names the file -----------------------------------------------------------------


def test_a_short_write_during_extract_names_the_file_and_says_why(earlier, tmp_path):
    def small_files() -> None:  # the kernel stops every write at 100 kB, as a full disk does
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "store"
    result = subprocess.run([sys.executable, "-m", "octanogan", "extract",
                             str(earlier["cohort"] / "manifest.csv"), "--out", str(out),
                             "--patch-size", "32", "--stride", "8"],
                            preexec_fn=small_files, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    [line] = error_lines(result.stderr)
    assert f"{out}/shards/" in line and "disk is full" in line and "free some space" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name != ".store.lock"]


# --- 7. spreadsheet formulas -----------------------------------------------------------------------

FORMULA = "=cmd|' /C calc'!A0"


def test_a_formula_volume_id_is_refused_at_the_manifest(earlier, tmp_path, cli):
    image = earlier["cohort"] / "images" / "healthy_000.nii.gz"
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame([{"volume_id": FORMULA, "path": str(image), "label": "healthy", "split": "train"}]
                 ).to_csv(manifest, index=False)
    one_error(cli("extract", manifest, "--out", tmp_path / "s"), "row 1", "volume_id", "formula")
    markers = tmp_path / "markers.json"
    markers.write_text(json.dumps({"1": "@SUM(A1)"}))
    one_error(cli("evaluate", earlier["run"], earlier["cohort"] / "manifest.csv", "--out",
                  tmp_path / "e", "--markers", markers), "markers.json", "formula")


def test_convert_tables_hold_no_formula(tmp_path, cli, monkeypatch):
    np.save(tmp_path / "=cmd.npy", np.linspace(0, 1, 2 * 64 * 64, dtype=np.float32).reshape(2, 64, 64))
    (tmp_path / "+evil.txt").write_text("not a scan")
    monkeypatch.chdir(tmp_path)  # relative names: the refused file's cell starts with '+'
    result = cli("convert", "=cmd.npy", "+evil.txt", "--out", "out", "--keep-names")
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", dtype=str)
    assert manifest["volume_id"].tolist() == ["cmd"]
    cells = [c for name in ("manifest.csv", "refused.csv")
             for c in pd.read_csv(tmp_path / "out" / name, dtype=str, keep_default_na=False).values.ravel()]
    assert any(c.startswith("'") and "+evil.txt" in c for c in cells)
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


# --- 8. relative paths in records ------------------------------------------------------------------


def test_records_name_the_run_manifest_and_annotations_by_relative_paths(earlier):
    evaluation = earlier["eval"]
    record = json.loads((evaluation / "evaluation.json").read_text())
    metrics = json.loads((evaluation / "metrics.json").read_text())
    settings = json.loads((evaluation / "scores" / "settings.json").read_text())
    pointers = [record["run"]["run_dir"], record["manifest"], record["annotations"],
                metrics["run"]["run_dir"], settings["run_dir"]]
    assert not [p for p in pointers if Path(p).is_absolute()], pointers
    assert (evaluation / record["run"]["run_dir"]).resolve() == earlier["run"].resolve()
    assert (evaluation / "scores" / settings["run_dir"]).resolve() == earlier["run"].resolve()
    assert (evaluation / "report" / "model_card.html").is_file()  # the report found the run


# --- 9. the smaller ones ---------------------------------------------------------------------------


def test_losses_csv_keeps_one_line_end_across_a_resume(earlier, tmp_path, cli):
    run = tmp_path / "run"
    assert cli("train", earlier["store"], "--out", run, *TINY_TRAIN).exit_code == 0
    more = [*TINY_TRAIN[:3], "4", *TINY_TRAIN[4:]]
    assert cli("train", earlier["store"], "--out", run, "--resume", *more).exit_code == 0
    text = (run / "losses.csv").read_bytes()
    assert b"\r" not in text and text.endswith(b"\n")
    assert len(pd.read_csv(run / "losses.csv")) == len(text.split(b"\n")) - 2


def test_a_fifo_or_device_is_refused_as_not_a_file(tmp_path, cli):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "zero").symlink_to("/dev/zero")
    result = cli("convert", tmp_path / "pipe", tmp_path / "zero", "--out", tmp_path / "out")
    reasons = pd.read_csv(tmp_path / "out" / "refused.csv")["reason"].tolist()
    assert result.exit_code != 0 and len(reasons) == 2
    assert all("not a regular file or folder" in r for r in reasons)


def test_complex_nifti_is_refused_without_a_warning(tmp_path):
    from octanogan.errors import InputError
    from octanogan.io import read_volume

    path = tmp_path / "complex.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((2, 8, 8), np.complex64), np.eye(4)), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="complex.nii.gz: holds complex-valued voxels"):
            read_volume(path)


def test_train_config_with_a_train_section_refuses_unknown_top_level_keys(earlier, tmp_path, cli):
    config = tmp_path / "study.yaml"
    config.write_text("train: {iterations: 2}\ntrian: {latent_dim: 8}\n")
    one_error(cli("train", earlier["store"], "--out", tmp_path / "r", "--config", config),
              "study.yaml", "trian")
    assert not (tmp_path / "r").exists()

