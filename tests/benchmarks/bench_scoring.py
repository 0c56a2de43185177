"""Scoring benchmark (not a test): patches/s of each inversion mode against a per-patch reference.

    python tests/benchmarks/bench_scoring.py [--run RUN_DIR] [--patches 64] [--steps 20]

(a) reference: one patch at a time, one z, Adam, f(x) recomputed every step (the blog post's loop);
(b) iterative, batched; (c) hybrid (encoder start + steps/10 Adam steps, i.e. 50 for Γ=500);
(d) encoder. All iterative modes use the same Γ (--steps); time per patch is linear in Γ, so the
ratios hold for Γ=500. Then: a default-size volume (49x496x512) scored in encoder mode, and, with
--run, peak memory of `score` on cohorts of 1 and 4 volumes (flat in the number of volumes).
Without --run the networks are untrained DCGAN-size networks: speed does not depend on weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from octanogan.models import NetworkSpec
from octanogan.patches.grid import cut_patches, retina_grid
from octanogan.phantom import generate_volume
from octanogan.preprocess import preprocess_volume
from octanogan.scoring.inversion import InversionConfig, LatentInverter


def networks(run: str | None, spec: NetworkSpec):
    if run:
        from octanogan.training import load_run

        loaded = load_run(run)
        return loaded.generator, loaded.discriminator, loaded.encoder, loaded.spec
    torch.manual_seed(0)
    g, d, e = spec.generator(), spec.discriminator(), spec.encoder()
    with torch.no_grad():  # realistic BatchNorm running statistics
        g.train()(torch.randn(64, spec.latent_dim))
        d.train()(torch.rand(64, 1, spec.patch_size, spec.patch_size) * 2 - 1)
        e.train()(torch.rand(64, 1, spec.patch_size, spec.patch_size) * 2 - 1)
    return g.eval(), d.eval(), e.eval(), spec


def phantom_patches(n: int, patch_size: int) -> torch.Tensor:
    volume = generate_volume(shape=(4, 496, 512), seed=1, diseased=True)
    prep = preprocess_volume(volume.image)
    centres = retina_grid(prep.ilm_flat, prep.bm_row, 496, patch_size, 32)
    pick = np.random.default_rng(0).choice(len(centres), size=n, replace=len(centres) < n)
    return torch.from_numpy(cut_patches(prep.flat, centres[pick], patch_size))[:, None]


def reference(g, d, x: torch.Tensor, steps: int, lam: float = 0.1, lr: float = 0.05) -> torch.Tensor:
    """One patch at a time; f(x) recomputed at every step."""
    scores = []
    for i in range(len(x)):
        xi = x[i : i + 1]
        z = torch.randn(1, g.latent_dim).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            fake = g(z)
            loss = (1 - lam) * (xi - fake).abs().sum() + lam * (d.features(xi) - d.features(fake)).abs().sum()
            loss.backward()
            optimizer.step()
        scores.append(loss.detach())
    return torch.stack(scores)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_of_scoring(run: str, n_volumes: int, shape: tuple[int, int, int]) -> float:
    """Peak RSS (MiB) of a child process scoring a phantom cohort of n volumes."""
    with tempfile.TemporaryDirectory() as tmp:
        code = f"""
import resource, sys
from octanogan.phantom import make_cohort
from octanogan.io.manifest import load_manifest
from octanogan.scoring.inversion import InversionConfig
from octanogan.scoring.score import ScoreConfig, score_manifest
manifest = make_cohort({tmp!r} + '/c', n_healthy=0, n_diseased={n_volumes}, shape={shape!r}, seed=3)
score_manifest({run!r}, load_manifest(manifest), {tmp!r} + '/s',
               ScoreConfig(inversion=InversionConfig(mode='encoder')), 'cpu')
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="trained run folder (default: untrained DCGAN-size networks)")
    parser.add_argument("--patches", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="Γ for the iterative modes")
    parser.add_argument("--reference-patches", type=int, default=8, help="patches for the slow reference")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-volume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g, d, e, spec = networks(args.run, NetworkSpec())
    x = phantom_patches(args.patches, spec.patch_size)
    steps = args.steps
    print(f"networks: patch {spec.patch_size}, latent {spec.latent_dim}, base {spec.base_channels}"
          f" ({'trained: ' + args.run if args.run else 'untrained'}); Γ={steps}; "
          f"{args.patches} patches; torch threads {args.threads}")

    def mode(name: str, **kw) -> LatentInverter:
        return LatentInverter(g, d, e, spec.latent_dim, InversionConfig(mode=name, **kw))

    rows = {}
    n_ref = args.reference_patches
    rows["(a) reference, one patch at a time"] = n_ref / timed(lambda: reference(g, d, x[:n_ref], steps))
    rows["(b) iterative, batched"] = len(x) / timed(lambda: mode("iterative", steps=steps).invert(x))
    hybrid_steps = max(1, steps // 10)
    rows[f"(c) hybrid ({hybrid_steps} steps), batched"] = len(x) / timed(
        lambda: mode("hybrid", hybrid_steps=hybrid_steps).invert(x))
    rows["(d) encoder, batched"] = len(x) / timed(lambda: mode("encoder").invert(x))
    ref = rows["(a) reference, one patch at a time"]
    print(f"{'mode':<40}{'patches/s':>12}{'ratio to (a)':>14}")
    for name, rate in rows.items():
        print(f"{name:<40}{rate:>12.2f}{rate / ref:>14.1f}")
    print(f"at Γ=500 the reference maps {ref * steps / 500:.3f} patches/s, "
          f"batched iterative {rows['(b) iterative, batched'] * steps / 500:.2f} patches/s")

    results = {"gamma": steps, "patches_per_s": rows}
    if not args.skip_volume:
        from octanogan.io import OCTVolume
        from octanogan.preprocess import PreprocessConfig
        from octanogan.scoring.score import ScoreConfig, VolumeScorer

        volume = generate_volume(seed=5, diseased=True)
        scorer = VolumeScorer(mode("encoder"), spec.patch_size, PreprocessConfig(),
                              ScoreConfig(inversion=InversionConfig(mode="encoder"), stride=32), "cpu")
        start = time.perf_counter()
        result, _ = scorer.score(OCTVolume(volume.image), "bench")
        seconds = time.perf_counter() - start
        print(f"default-size volume {volume.image.shape}, encoder mode, stride 32: "
              f"{len(result.patches)} patches in {seconds:.1f} s (target <= 30 s)")
        results["volume_encoder_seconds"] = seconds
    if args.run:
        shape = (12, 496, 512)
        one, four = (peak_rss_of_scoring(args.run, n, shape) for n in (1, 4))
        print(f"peak RSS scoring 1 volume {one:.0f} MiB, 4 volumes {four:.0f} MiB "
              f"(ratio {four / one:.2f}; flat = 1.0), volume shape {shape}")
        results["peak_rss_mib"] = {"1": one, "4": four}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
