"""Distributed benchmarks (not tests): one process against torchrun with N gloo processes.

    python tests/benchmarks/bench_distributed.py score [--volumes 4] [--shape 6 496 256] [--nproc 2]
    python tests/benchmarks/bench_distributed.py train [--iterations 200] [--nproc 2]

``score`` builds a phantom cohort of test volumes and a small run (the demo's network size), then
scores the cohort with ``octanogan score`` in one process (OMP threads = cores) and with
``torchrun --nproc-per-node N`` (cores / N threads each), same settings, and prints volumes/s and
patches/s side by side with their ratio. The maps of both runs are checked equal.

``train`` extracts a phantom patch store and trains the demo's networks (64 px, base 16, z 64,
batch 64) for ``--iterations`` GAN and a quarter as many encoder iterations, in one process and
under torchrun (global batch 64: 64/N patches per rank), and prints the patches/s that ``train``
reports (training alone, without start-up) side by side.

Both use every core either way, so the ratio shows what splitting gains over torch's own threading.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def prepare(root: Path, volumes: int, shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """A cohort whose volumes are all test volumes, and a run trained for a few iterations."""
    from octanogan.patches.extract import ExtractConfig, extract_store
    from octanogan.phantom import make_cohort
    from octanogan.training import TrainConfig, train

    # two healthy volumes to train on, then ``volumes`` test volumes (one of them diseased), so
    # that N processes get equal shares when N divides ``volumes``
    manifest = make_cohort(root / "cohort", n_healthy=volumes + 1, n_diseased=1, shape=shape, seed=3)
    table = pd.read_csv(manifest)
    train_ids = table["volume_id"].iloc[:2]
    extract_table = table.assign(split=np.where(table["volume_id"].isin(train_ids), "train", "test"))
    extract_table.to_csv(manifest, index=False)
    extract_store(manifest, root / "store", ExtractConfig())
    train(root / "store", root / "run", TrainConfig(iterations=20, encoder_iterations=20, seed=0,
                                                    base_channels=16, latent_dim=64, device="cpu",
                                                    checkpoint_every=1000))
    return manifest, root / "run"


def timed(command: list[str], threads: int) -> tuple[float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def score_benchmark(args: argparse.Namespace, torchrun: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        root = Path(tmp)
        manifest, run = prepare(root, args.volumes, tuple(args.shape))
        score = ["score", str(run), str(manifest), "--mode", "hybrid", "--hybrid-steps", "20",
                 "--device", "cpu"]
        one, _ = timed([sys.executable, "-m", "octanogan", *score, "--out", str(root / "one")], args.cores)
        many, _ = timed([str(torchrun), "--standalone", "--nproc-per-node", str(args.nproc), "-m",
                         "octanogan", *score, "--out", str(root / "many")],
                        max(1, args.cores // args.nproc))
        table = pd.read_csv(root / "one" / "volumes.csv")
        patches, volumes = int(table["n_patches"].sum()), len(table)
        same = pd.read_csv(root / "many" / "volumes.csv")["score"].equals(table["score"])
    print(f"{volumes} volumes {tuple(args.shape)}, {patches} patches, hybrid 20 steps, "
          f"{args.cores} cores (wall time includes start-up)")
    print(f"{'':<28}{'seconds':>9}{'volumes/s':>11}{'patches/s':>11}")
    for label, seconds in ((f"1 process, {args.cores} threads", one),
                           (f"torchrun {args.nproc} x {max(1, args.cores // args.nproc)} threads", many)):
        print(f"{label:<28}{seconds:>9.1f}{volumes / seconds:>11.3f}{patches / seconds:>11.0f}")
    print(f"speed-up {one / many:.2f}x; volume scores identical: {same}")


def train_benchmark(args: argparse.Namespace, torchrun: Path) -> None:
    from octanogan.patches.extract import ExtractConfig, extract_store
    from octanogan.phantom import make_cohort

    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        root = Path(tmp)
        manifest = make_cohort(root / "cohort", n_healthy=3, n_diseased=0, shape=(8, 496, 512), seed=3)
        extract_store(manifest, root / "store", ExtractConfig(patch_size=64, stride=32))
        train = ["train", str(root / "store"), "--iterations", str(args.iterations),
                 "--encoder-iterations", str(max(1, args.iterations // 4)), "--batch-size", "64",
                 "--base-channels", "16", "--latent-dim", "64", "--device", "cpu",
                 "--checkpoint-every", "1000000"]
        rows = []
        for label, command, threads in (
                (f"1 process, {args.cores} threads", [sys.executable, "-m", "octanogan"], args.cores),
                (f"torchrun {args.nproc} x {max(1, args.cores // args.nproc)} threads",
                 [str(torchrun), "--standalone", "--nproc-per-node", str(args.nproc), "-m", "octanogan"],
                 max(1, args.cores // args.nproc))):
            seconds, output = timed([*command, *train, "--out", str(root / f"run{len(rows)}")], threads)
            rate = float(re.search(r"([0-9.]+) patches/s", output).group(1))
            rows.append((label, seconds, rate))
    print(f"GAN {args.iterations} + encoder {max(1, args.iterations // 4)} iterations, global batch 64, "
          f"64 px, base 16, z 64, {args.cores} cores")
    print(f"{'':<28}{'wall s':>9}{'patches/s':>11}")
    for label, seconds, rate in rows:
        print(f"{label:<28}{seconds:>9.1f}{rate:>11.0f}")
    print(f"training speed-up {rows[1][2] / rows[0][2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("score", "train"))
    parser.add_argument("--volumes", type=int, default=4, help="score: test volumes")
    parser.add_argument("--shape", type=int, nargs=3, default=(6, 496, 256), help="score: volume shape")
    parser.add_argument("--iterations", type=int, default=200, help="train: GAN iterations")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torchrun = Path(sys.executable).parent / "torchrun"
    (score_benchmark if args.what == "score" else train_benchmark)(args, torchrun)


if __name__ == "__main__":
    main()
