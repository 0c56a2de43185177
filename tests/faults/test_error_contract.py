"""The error contract, case by case: a user's mistake or a failing disk gives exit code 2 and
one ``error:`` line naming the file or setting, no traceback, and every earlier output stays
byte-identical (docs/reliability.md lists the cases)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_tools import tree_hash

from octanogan.io import write_nifti


@dataclass
class Case:
    """One hostile input or fault: the command and what its single error line must say."""

    name: str
    args: Callable[[dict[str, Path], Path], list[object]]
    says: tuple[str, ...]
    usage: bool = False  # an option outside its choices: reported by the CLI parser (exit 2)


def _volume(folder: Path, name: str, data: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, data)
    return folder / name


def _manifest(folder: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["volume_id,path,label,split"] + [",".join(row) for row in rows]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def narrow_manifest(e: dict[str, Path], tmp: Path) -> Path:
    _volume(tmp / "in", "narrow.npy", np.random.default_rng(0).random((2, 496, 40), np.float32))
    return _manifest(tmp / "in", [("narrow", "narrow.npy", "healthy", "train")])


def blank_manifest(e: dict[str, Path], tmp: Path) -> Path:
    _volume(tmp / "in", "blank.npy", np.zeros((2, 496, 128), np.float32))
    return _manifest(tmp / "in", [("blank", "blank.npy", "healthy", "train")])


def nan_manifest(e: dict[str, Path], tmp: Path) -> Path:
    data = np.ones((2, 64, 64), np.float32)
    data[0, 0, 0] = np.nan
    _volume(tmp / "in", "nan.npy", data)
    return _manifest(tmp / "in", [("nan", "nan.npy", "healthy", "train")])


def twin_ids_manifest(e: dict[str, Path], tmp: Path) -> Path:
    image = e["cohort"] / "images" / "healthy_000.nii.gz"
    return _manifest(tmp / "in", [("Scan", str(image), "healthy", "test"),
                                  ("scan", str(image), "healthy", "test")])


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def pipeline(tmp: Path, text: str) -> Path:
    return write(tmp, "pipeline.yaml", text)


PHANTOM = "data: {phantom: {healthy: 3, diseased: 1, shape: [2, 496, 96]}}\n"


def run_copy(e: dict[str, Path], tmp: Path, weights: object) -> Path:
    import shutil

    run = tmp / "run"
    shutil.copytree(e["run"], run)
    if isinstance(weights, bytes):
        (run / "generator.pt").write_bytes(weights)
    else:
        torch.save(weights, run / "generator.pt")
    return run


def foreign(tmp: Path) -> Path:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "thesis.docx").write_text("months of work")
    return tmp / "mine"


def scores_args(e: dict[str, Path], tmp: Path, *extra: object) -> list[object]:
    return ["score", e["run"], e["cohort"] / "manifest.csv", "--out", tmp / "scores", "--device", "cpu",
            "--hybrid-steps", "1", *extra]


CASES = [
    # settings out of range, before any work
    Case("score --stride 0", lambda e, t: scores_args(e, t, "--stride", "0"), ("'stride'", ">= 1")),
    Case("score --batch-size 0", lambda e, t: scores_args(e, t, "--batch-size", "0"), ("'batch_size'",)),
    Case("score --lr -1", lambda e, t: scores_args(e, t, "--lr", "-1"), ("'lr'",)),
    Case("score --smooth nan", lambda e, t: scores_args(e, t, "--smooth", "nan"), ("'smooth_sigma'", "finite")),
    Case("score --lambda 2", lambda e, t: scores_args(e, t, "--lambda", "2"), ("'lam'",)),
    Case("score --weighting foo", lambda e, t: scores_args(e, t, "--weighting", "foo"), ("'foo'",), usage=True),
    Case("score --mode magic", lambda e, t: scores_args(e, t, "--mode", "magic"), ("'magic'",), usage=True),
    Case("score --shard 2/2", lambda e, t: scores_args(e, t, "--shard", "2/2"), ("--shard",)),
    Case("score --device cuda without a GPU", lambda e, t: scores_args(e, t, "--device", "cuda"), ("cuda",)),
    Case("extract --stride 0", lambda e, t: ["extract", e["cohort"] / "manifest.csv", "--out", t / "s",
                                             "--stride", "0"], ("'stride'",)),
    Case("extract --patch-size 48", lambda e, t: ["extract", e["cohort"] / "manifest.csv", "--out", t / "s",
                                                  "--patch-size", "48"], ("'patch_size'", "power of two")),
    Case("train --lr -1", lambda e, t: ["train", e["store"], "--out", t / "r", "--lr", "-1"], ("'lr'",)),
    Case("train --objective foo", lambda e, t: ["train", e["store"], "--out", t / "r", "--objective", "foo"],
         ("'foo'",), usage=True),
    Case("train binary --config", lambda e, t: ["train", e["store"], "--out", t / "r", "--config",
                                                write(t, "c.yaml", b"\x89PNG\r\n\x1a\n\xff\xfe\x00")],
         ("c.yaml", "not a text file")),
    Case("train --config lr: abc", lambda e, t: ["train", e["store"], "--out", t / "r", "--config",
                                                 write(t, "c.yaml", "lr: abc\n")], ("c.yaml", "'lr'")),
    Case("train --config typo", lambda e, t: ["train", e["store"], "--out", t / "r", "--config",
                                              write(t, "c.yaml", "iteratoins: 3\n")], ("'iteratoins' is unknown",)),
    # pipeline YAML: every section checked before the first stage runs
    Case("pipeline healthy: abc", lambda e, t: ["run", pipeline(t, "data: {phantom: {healthy: abc}}\n"),
                                                "--out", t / "o"], ("data.phantom", "'healthy'")),
    Case("pipeline shape: 5", lambda e, t: ["run", pipeline(t, "data: {phantom: {shape: 5}}\n"),
                                            "--out", t / "o"], ("'shape'",)),
    Case("pipeline typo in score:", lambda e, t: ["run", pipeline(t, PHANTOM + "score: {strid: 8}\n"),
                                                  "--out", t / "o"], ("[score]", "'strid' is unknown")),
    Case("pipeline unknown evaluate key", lambda e, t: ["run", pipeline(t, PHANTOM + "evaluate: {n_boot: 3}\n"),
                                                        "--out", t / "o"], ("[evaluate]", "'n_boot'")),
    Case("pipeline unknown phantom key", lambda e, t: ["run", pipeline(t, "data: {phantom: {heathy: 3}}\n"),
                                                       "--out", t / "o"], ("'heathy' is unknown",)),
    Case("pipeline unknown section", lambda e, t: ["run", pipeline(t, PHANTOM + "trian: {}\n"),
                                                   "--out", t / "o"], ("unknown section", "trian")),
    Case("pipeline bad score value", lambda e, t: ["run", pipeline(t, PHANTOM + "score: {lam: 7}\n"),
                                                   "--out", t / "o"], ("[score]", "'lam'")),
    # input files
    Case("manifest not found", lambda e, t: ["extract", t / "none.csv", "--out", t / "s"], ("none.csv",)),
    Case("empty manifest", lambda e, t: ["extract", write(t, "m.csv", ""), "--out", t / "s"], ("m.csv", "empty")),
    Case("B-scans narrower than the patch", lambda e, t: ["extract", narrow_manifest(e, t), "--out", t / "s"],
         ("narrow.npy", "smaller than the 64 x 64 patches")),
    Case("a volume with no retina", lambda e, t: ["extract", blank_manifest(e, t), "--out", t / "s"],
         ("blank.npy", "no retina")),
    Case("a NaN voxel", lambda e, t: ["extract", nan_manifest(e, t), "--out", t / "s"], ("nan.npy", "NaN")),
    Case("markers.json as a list", lambda e, t: ["evaluate", e["run"], e["cohort"] / "manifest.csv",
                                                 "--out", t / "ev", "--markers", write(t, "m.json", "[1, 2]")],
         ("m.json", "JSON object")),
    Case("markers.json key -1", lambda e, t: ["evaluate", e["run"], e["cohort"] / "manifest.csv", "--out",
                                              t / "ev", "--markers", write(t, "m.json", '{"-1": "x"}')],
         ("m.json", "positive")),
    Case("ids that share file names", lambda e, t: scores_args(e, t)[:2] + [twin_ids_manifest(e, t)]
         + scores_args(e, t)[3:], ("'Scan' and 'scan'",)),
    # checkpoints
    Case("unsafe checkpoint", lambda e, t: ["score", run_copy(e, t, {"x": np.array([1])}),
                                            e["cohort"] / "manifest.csv", "--out", t / "s"],
         ("generator.pt", "refused")),
    Case("corrupt checkpoint", lambda e, t: ["score", run_copy(e, t, b"garbage"), e["cohort"] / "manifest.csv",
                                             "--out", t / "s"], ("generator.pt", "corrupt")),
    Case("resume without a run", lambda e, t: ["train", e["store"], "--out", t / "r", "--resume"],
         ("config.yaml",)),
    # outputs that belong to the user or to another stage
    Case("extract --out the image folder", lambda e, t: ["extract", e["cohort"] / "manifest.csv", "--out",
                                                         e["cohort"] / "images"], ("contains the input",)),
    Case("extract --out the cohort folder", lambda e, t: ["extract", e["cohort"] / "manifest.csv", "--out",
                                                          e["cohort"]], ("contains the input",)),
    Case("extract --out a foreign folder", lambda e, t: ["extract", e["cohort"] / "manifest.csv", "--out",
                                                         foreign(t)], ("not written by octanogan",)),
    Case("train --out a foreign folder", lambda e, t: ["train", e["store"], "--out", foreign(t)],
         ("not written by octanogan",)),
    Case("train --out the patch store", lambda e, t: ["train", e["store"], "--out", e["store"]],
         ("contains the input",)),
    Case("score --out a foreign folder", lambda e, t: scores_args(e, t)[:4] + [foreign(t)],
         ("not written by octanogan",)),
    Case("score --out the run folder", lambda e, t: scores_args(e, t)[:4] + [e["run"]],
         ("contains the input",)),
    Case("score --out an evaluation", lambda e, t: scores_args(e, t)[:4] + [e["eval"]],
         ("holds an octanogan evaluation folder",)),
    Case("evaluate --out a foreign folder", lambda e, t: ["evaluate", e["run"], e["cohort"] / "manifest.csv",
                                                          "--out", foreign(t)], ("not written by octanogan",)),
    Case("run --out a foreign folder", lambda e, t: ["run", pipeline(t, PHANTOM), "--out", foreign(t)],
         ("not written by octanogan",)),
    Case("phantom into a cohort", lambda e, t: ["phantom", e["cohort"], "--healthy", "1", "--diseased", "0"],
         ("phantom cohort already",)),
]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_error_contract(case: Case, earlier, tmp_path, cli):
    before = {name: tree_hash(path) for name, path in earlier.items()}
    result = cli(*case.args(earlier, tmp_path))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    if case.usage:  # the parser's own message: names the option and the refused value
        assert all(text in " ".join(result.output.split()) for text in case.says), result.output
    else:
        lines = error_lines(result.output)
        assert len(lines) == 1, result.output
        assert all(text in lines[0] for text in case.says), lines[0]
    assert {name: tree_hash(path) for name, path in earlier.items()} == before


def test_a_rejected_setting_leaves_no_folder_that_blocks_the_corrected_rerun(earlier, tmp_path, cli):
    assert cli(*scores_args(earlier, tmp_path, "--stride", "0")).exit_code == 2
    assert not (tmp_path / "scores").exists()
    result = cli(*scores_args(earlier, tmp_path, "--stride", "64"))
    assert result.exit_code == 0, result.output


def test_score_on_a_run_without_encoder_names_the_run(earlier, tmp_path, cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(earlier["run"], run)
    (run / "encoder.pt").unlink()
    result = cli("score", run, earlier["cohort"] / "manifest.csv", "--out", tmp_path / "s")
    assert result.exit_code == 2 and error_lines(result.output) == [
        f"error: {run}: mode 'hybrid' needs an encoder, but this run was trained without one; "
        "use --mode iterative or train an encoder"]
    assert not (tmp_path / "s").exists()


def _failing_replace(errno_code: int, inside: Path) -> Callable[..., None]:
    real = os.replace

    def replace(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        if str(inside) in str(dst):
            raise OSError(errno_code, os.strerror(errno_code), str(dst))
        return real(src, dst, *args, **kwargs)

    return replace


@pytest.mark.parametrize("code, says", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk_is_one_line_and_the_rerun_completes(code, says, earlier, tmp_path, cli,
                                                                     monkeypatch):
    before = {name: tree_hash(path) for name, path in earlier.items()}
    out = tmp_path / "scores"
    monkeypatch.setattr(os, "replace", _failing_replace(code, out))
    result = cli(*scores_args(earlier, tmp_path))
    monkeypatch.undo()
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = error_lines(result.output)
    assert str(out) in line and says in line
    assert {name: tree_hash(path) for name, path in earlier.items()} == before
    assert cli(*scores_args(earlier, tmp_path)).exit_code == 0


def test_a_failed_evaluate_leaves_the_previous_evaluation_whole(earlier, tmp_path, cli):
    import shutil

    evaluation = tmp_path / "eval"
    shutil.copytree(earlier["eval"], evaluation)
    before = tree_hash(evaluation)
    bad_labels = tmp_path / "bad_labels.nii.gz"
    write_nifti(np.zeros((1, 8, 8), np.uint8), np.eye(4), bad_labels, dtype=np.uint8)
    rows = (earlier["cohort"] / "annotations.csv").read_text().splitlines()
    cohort = earlier["cohort"]
    rows = rows[:1] + [f"{r.split(',')[0]},{bad_labels if 'diseased' in r else cohort / r.split(',')[1]}"
                       for r in rows[1:]]
    annotations = write(tmp_path, "annotations.csv", "\n".join(rows) + "\n")
    (tmp_path / "markers.json").write_text((earlier["cohort"] / "markers.json").read_text())
    result = cli("evaluate", earlier["run"], earlier["cohort"] / "manifest.csv", "--annotations", annotations,
                 "--out", evaluation, "--device", "cpu", "--hybrid-steps", "2", "--n-bootstrap", "10")
    assert result.exit_code == 2 and "bad_labels.nii.gz" in error_lines(result.output)[0]
    assert tree_hash(evaluation) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eval")]


def test_ids_whose_slugs_agree_get_their_own_files(earlier, tmp_path, cli):
    from octanogan.fsutil import safe_name

    image = earlier["cohort"] / "images" / "healthy_000.nii.gz"
    other = earlier["cohort"] / "images" / "diseased_000.nii.gz"
    twin = safe_name("a/b")
    manifest = _manifest(tmp_path / "in", [("a/b", str(image), "healthy", "test"),
                                            (twin, str(other), "diseased", "test")])
    assert safe_name(twin) != twin
    out = tmp_path / "scores"
    result = cli("score", earlier["run"], manifest, "--out", out, "--device", "cpu", "--hybrid-steps", "1")
    assert result.exit_code == 0, result.output
    volumes = json.loads(json.dumps(sorted(p.name for p in (out / "patches").iterdir())))
    assert len(volumes) == 2
