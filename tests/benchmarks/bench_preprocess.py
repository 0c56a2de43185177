"""Preprocessing speed, old against new in one run, and whether the boundaries stayed the same.

    OMP_NUM_THREADS=2 python tests/benchmarks/bench_preprocess.py [--reference COMMIT]

The reference is octanogan's preprocessing at ``--reference`` (default: f51d4c4, the last commit
before the compiled kernels), taken from this repository's history with ``git archive``. Each
input is preprocessed by both, in turns, in child processes (so each one's threads and imports
are its own), after one warm-up call (numba compiles or loads its kernels then). Inputs:

* the default phantom volume (49 x 496 x 512), three timed calls, the fastest reported;
* every real B-scan in ../shared/data's B-scan folders (when present), each read as a
  one-B-scan volume as ``bench_real.py boundaries`` reads it, one timed call each.

It prints B-scans per second of both, their ratio, and the largest ILM and BM difference over
every column (the issue's bar: within 0.5 px everywhere), whether the normalised images are equal
to the last bit, and how many B-scans both refused (no retina found; they must be the same).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
FOLDERS = ("topcon_healthy_bscans", "kermany_dev", "kermany_crops/normal", "kermany_crops/abnormal",
           "duke_dme_dev", "amd_drusen_dev")
SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def real_files(folder: str) -> list[Path]:
    root = DATA / folder
    root = root / "images" if (root / "images").is_dir() else root
    return sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES) if root.is_dir() else []


def worker(code: Path, inputs: list[str], out: Path) -> None:
    """Preprocess each input with the octanogan found in ``code``; save surfaces and seconds."""
    sys.path.insert(0, str(code))
    from octanogan.errors import OctanoganError
    from octanogan.io import read_volume
    from octanogan.phantom import generate_volume
    from octanogan.preprocess import PreprocessConfig, preprocess_volume

    config = PreprocessConfig()
    warm = generate_volume(seed=1, diseased=False).image[:2]
    preprocess_volume(warm, config)  # compiles or loads the kernels (new code)
    results: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for index, name in enumerate(inputs):
        if name == "phantom":
            data, spacing, repeats = generate_volume(seed=5, diseased=True).image, None, 3
        else:
            volume = read_volume(Path(name))
            data, spacing, repeats = volume.data, volume.spacing_mm, 1
        kwargs = {} if spacing is None else {"spacing_mm": spacing}
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            try:
                prep = preprocess_volume(data, config, **kwargs)
            except OctanoganError:  # refused (no retina found): both must refuse it
                prep = None
            best = min(best, time.perf_counter() - start)
        seconds[name] = best
        if prep is not None:
            results[f"{index}_ilm"], results[f"{index}_bm"], results[f"{index}_image"] = \
                prep.ilm, prep.bm, prep.image
    np.savez(out, **results)
    out.with_suffix(".json").write_text(json.dumps(seconds))


def extract_reference(commit: str, target: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "octanogan"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def run(code: Path, inputs: list[str], out: Path) -> tuple[dict[str, float], np.lib.npyio.NpzFile]:
    subprocess.run([sys.executable, __file__, "--worker", str(code), str(out), *inputs], check=True)
    return json.loads(out.with_suffix(".json").read_text()), np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="f51d4c4", help="commit of the old preprocessing")
    parser.add_argument("--limit", type=int, default=0, help="at most this many B-scans per folder")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), args.worker[2:], Path(args.worker[1]))
        return
    groups = {"phantom 49x496x512": ["phantom"]}
    for folder in FOLDERS:
        files = real_files(folder)[: args.limit or None]
        if files:
            groups[folder] = [str(p) for p in files]
    if len(groups) == 1:
        print(f"no real data at {DATA}: the phantom alone")
    with tempfile.TemporaryDirectory() as tmp:
        reference = extract_reference(args.reference, Path(tmp) / "reference")
        print(f"{'input':<26}{'B-scans':>8}{'old B/s':>9}{'new B/s':>9}{'new/old':>9}"
              f"{'max |dILM|':>12}{'max |dBM|':>11}{'cols > 0.5':>11}{'same image':>11}{'refused':>9}")
        for group, inputs in groups.items():
            old_s, old = run(reference, inputs, Path(tmp) / "old.npz")
            new_s, new = run(REPO, inputs, Path(tmp) / "new.npz")
            done = [i for i in range(len(inputs)) if f"{i}_ilm" in old]
            refused = len(inputs) - len(done)
            if [i for i in range(len(inputs)) if f"{i}_ilm" in new] != done:
                print(f"{group}: old and new refuse different B-scans")
            bscans = sum(old[f"{i}_ilm"].shape[0] for i in done) + refused
            d_ilm = max(float(np.abs(old[f"{i}_ilm"] - new[f"{i}_ilm"]).max()) for i in done)
            d_bm = max(float(np.abs(old[f"{i}_bm"] - new[f"{i}_bm"]).max()) for i in done)
            off = sum(int((np.maximum(np.abs(old[f"{i}_ilm"] - new[f"{i}_ilm"]),
                                      np.abs(old[f"{i}_bm"] - new[f"{i}_bm"])) > 0.5).sum())
                      for i in done)
            same = all(np.array_equal(old[f"{i}_image"], new[f"{i}_image"]) for i in done)
            old_rate, new_rate = bscans / sum(old_s.values()), bscans / sum(new_s.values())
            print(f"{group:<26}{bscans:>8}{old_rate:>9.1f}{new_rate:>9.1f}{new_rate / old_rate:>8.1f}x"
                  f"{d_ilm:>12.3g}{d_bm:>11.3g}{off:>11}{str(same):>11}{refused:>9}")


if __name__ == "__main__":
    main()
