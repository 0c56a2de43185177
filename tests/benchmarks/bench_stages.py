"""Stage profile (not a test): where the seconds of scoring one volume go, in encoder and hybrid mode.

    OMP_NUM_THREADS=2 python tests/benchmarks/bench_stages.py [--run RUN] [--bscans DIR]

For one default phantom volume (49 x 496 x 512) and one folder of real B-scans (default
../shared/data/topcon_healthy_bscans, when present) it prints the seconds spent reading,
preprocessing (normalisation, ILM/BM, flattening, QC), inverting (the networks), stitching (maps,
smoothing, unflattening) and writing (NIfTI maps, geometry, patch table), with demo.yaml's scoring
(stride 32, darker map, σ 4; hybrid: 20 Adam steps). Without --run a demo-size run (base 16, z 64,
64 px) is trained for 10 iterations on a small phantom: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from octanogan.io import read_volume
from octanogan.outputs.scores import ScoresFolder
from octanogan.phantom import generate_volume, make_cohort
from octanogan.scoring.config import score_config
from octanogan.scoring.score import open_scorer

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
STAGES = ("read", "preprocess", "invert", "stitch", "write")


def quick_run(root: Path) -> Path:
    """A demo-size run trained for 10 iterations (for timing only)."""
    from octanogan.patches.extract import ExtractConfig, extract_store
    from octanogan.training import TrainConfig, train

    manifest = make_cohort(root / "cohort", n_healthy=2, n_diseased=0, shape=(4, 496, 512), seed=0)
    extract_store(manifest, root / "store", ExtractConfig(patch_size=64, stride=32))
    train(root / "store", root / "run", TrainConfig(iterations=10, encoder_iterations=10,
                                                    batch_size=64, latent_dim=64, base_channels=16,
                                                    device="cpu", checkpoint_every=1000))
    return root / "run"


def profile(run: Path, path: Path, mode: str, out: Path) -> dict[str, float]:
    """Seconds per stage of scoring the volume at ``path`` once (after one warm-up)."""
    import yaml

    demo = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())["score"]
    config = score_config({**demo, "mode": mode}, "demo.yaml")
    scorer, _ = open_scorer(run, config, torch.device("cpu"))
    folder = ScoresFolder(out)
    times: dict[str, float] = {}
    for _ in range(2):  # the first pass warms caches and allocators up; the second is reported
        start = time.perf_counter()
        volume = read_volume(path)
        times["read"] = time.perf_counter() - start
        result, prep = scorer.score(volume, "v")
        times.update(result.stages)
        start = time.perf_counter()
        folder.write_volume("v", volume.affine, result.anomaly_map, prep.retina_mask, prep.geometry(),
                            result.patches)
        times["write"] = time.perf_counter() - start
    times["n_bscans"] = volume.shape[0]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a trained run (default: a 10-iteration demo-size run)")
    parser.add_argument("--bscans", type=Path, default=DATA / "topcon_healthy_bscans")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = args.run or quick_run(root)
        phantom = root / "phantom.npy"
        np.save(phantom, generate_volume(seed=5, diseased=True).image)
        inputs = {"phantom 49x496x512": phantom}
        if args.bscans.is_dir():
            inputs[f"real: {args.bscans.name}"] = args.bscans
        else:
            print(f"{args.bscans} not found: real B-scans skipped")
        print(f"threads {torch.get_num_threads()}; scoring as pipelines/demo.yaml; seconds")
        print(f"{'input':<34}{'mode':<9}" + "".join(f"{s:>11}" for s in STAGES)
              + f"{'total':>9}{'prep share':>12}")
        for name, path in inputs.items():
            rows = {mode: profile(run, path, mode, root / f"scores_{mode}") for mode in ("encoder", "hybrid")}
            for mode, times in rows.items():
                total = sum(times[s] for s in STAGES)
                label = f"{name} ({int(times['n_bscans'])})"
                print(f"{label:<34}{mode:<9}" + "".join(f"{times[s]:>11.2f}" for s in STAGES)
                      + f"{total:>9.2f}{times['preprocess'] / total:>12.2f}")


if __name__ == "__main__":
    main()
