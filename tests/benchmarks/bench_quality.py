"""Quality benchmark (not a test): AUROC/AP per marker and level for each scoring mode.

    python tests/benchmarks/bench_quality.py DEMO_OUT [--steps 500] [--modes encoder hybrid iterative]

DEMO_OUT is the folder of a finished `octanogan run pipelines/demo.yaml --out DEMO_OUT` (phantom
cohort, patch store, trained run). Each mode rescores the val and test volumes into
DEMO_OUT/bench_quality/<mode> (reused when present) and is evaluated against the phantom's exact
lesion labels. Prints pooled and per-marker AUROC / AP at voxel and patch level, and writes the
table as CSV beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from octanogan.evaluation import EvaluationConfig, evaluate_scores
from octanogan.io.manifest import load_annotations, load_manifest, load_markers
from octanogan.scoring.inversion import InversionConfig
from octanogan.scoring.score import ScoreConfig, score_manifest


def score_and_evaluate(demo: Path, name: str, config: ScoreConfig,
                       n_bootstrap: int) -> tuple[pd.DataFrame, float]:
    manifest = load_manifest(demo / "data" / "manifest.csv")
    out = demo / "bench_quality" / name
    start = time.perf_counter()
    score_manifest(demo / "run", manifest, out / "scores", config, "cpu")
    seconds = time.perf_counter() - start
    metrics = evaluate_scores(out / "scores", manifest, load_annotations(demo / "data" / "annotations.csv"),
                              load_markers(demo / "data" / "markers.json"), out,
                              EvaluationConfig(n_bootstrap=n_bootstrap), {"benchmark": name})
    return metrics, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", type=Path)
    parser.add_argument("--steps", type=int, default=500, help="Γ for iterative mode")
    parser.add_argument("--hybrid-steps", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=["encoder", "hybrid", "iterative"])
    parser.add_argument("--smooth", type=float, nargs="+", default=[0.0], help="smooth_sigma values")
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for mode in args.modes:
        for sigma in args.smooth:
            inversion = InversionConfig(mode=mode, steps=args.steps, hybrid_steps=args.hybrid_steps)
            config = ScoreConfig(inversion=inversion, stride=args.stride, smooth_sigma=sigma)
            name = f"{mode}_s{sigma:g}" + (f"_g{args.steps}" if mode == "iterative" else "") + \
                (f"_k{args.hybrid_steps}" if mode == "hybrid" else "")
            metrics, seconds = score_and_evaluate(args.demo, name, config, args.n_bootstrap)
            threshold_free = metrics["operating_point"].fillna("") == ""
            picked = metrics[threshold_free & metrics["metric"].isin(["auroc", "ap"])
                             & metrics["level"].isin(["voxel", "patch"])]
            for row in picked.itertuples(index=False):
                rows.append({"setting": name, "level": row.level, "marker": row.marker, "metric": row.metric,
                             "value": row.value, "ci": f"{row.ci_low:.3f}-{row.ci_high:.3f}",
                             "score_seconds": round(seconds, 1)})
            print(f"{name}: scored in {seconds:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["level", "marker"], columns=["setting", "metric"], values="value")
    pd.set_option("display.width", 200)
    print(wide.round(3).to_string())
    table.to_csv(args.demo / "bench_quality" / "quality.csv", index=False)
    record = json.loads((args.demo / "run" / "run.json").read_text())
    print(f"training budget: {record.get('gan_iterations')} GAN + {record.get('encoder_iterations')} "
          f"encoder iterations on {record['store']['n_patches']} patches")


if __name__ == "__main__":
    main()
