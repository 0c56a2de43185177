"""Training throughput: octanogan's loop against a minimal plain-PyTorch DCGAN loop.

Run: ``python tests/benchmarks/bench_training.py [--threads 2] [--rounds 3]``

1. Same networks, batch size and data (a synthetic 64x64 store): octanogan's ``train()`` (memory-
   mapped store, deterministic resumable order, loss log, progress callback) against the
   PyTorch-example DCGAN loop on the same patches held in RAM. Segments alternate order each
   round; throughput is timed between the first and last iteration of each segment (setup,
   warm-up and the final checkpoint excluded; they are reported separately).
2. Seconds per iteration at the demo and paper settings, extrapolated to epochs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fixtures_training import make_store  # noqa: E402

from octanogan.models import NetworkSpec  # noqa: E402
from octanogan.patches.store import PatchStore  # noqa: E402
from octanogan.training import TrainConfig, train  # noqa: E402


def octanogan_segment(store: Path, out: Path, config: TrainConfig) -> tuple[float, float]:
    """(patches/s in the loop, total seconds of the train() call)."""
    stamps: list[float] = []
    begin = time.perf_counter()
    train(store, out, config, on_iteration=lambda progress: stamps.append(time.perf_counter()))
    total = time.perf_counter() - begin
    n = len(stamps) - 1
    return n * config.batch_size * config.resolved().critic_steps / (stamps[-1] - stamps[0]), total


def plain_segment(data: torch.Tensor, spec: NetworkSpec, config: TrainConfig) -> float:
    """The PyTorch DCGAN example's loop on in-RAM data; patches/s after the first iteration."""
    torch.manual_seed(config.seed)
    g, d = spec.generator(), spec.discriminator()
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    stamps = []
    for _ in range(config.iterations):
        real = data[torch.randint(len(data), (config.batch_size,))]
        fake = g(torch.randn(config.batch_size, spec.latent_dim))
        real_logits, fake_logits = d(real), d(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        logits = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()  # what any loop logging its losses does
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) * config.batch_size / (stamps[-1] - stamps[0])


def seconds_per_iteration(store: Path, work: Path, config: TrainConfig) -> tuple[float, float]:
    """Median seconds per GAN and per encoder iteration (first iteration of each excluded)."""
    stamps: dict[str, list[float]] = {"gan": [], "encoder": []}
    train(store, work, config, on_iteration=lambda p: stamps[p.phase].append(time.perf_counter()))
    return tuple(statistics.median(b - a for a, b in zip(s[1:], s[2:])) for s in stamps.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=15, help="per segment")
    parser.add_argument("--base-channels", type=int, default=16, help="for the comparison")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = make_store(work / "store", n_patches=2048, patch_size=64, shard_size=512)
        data = torch.from_numpy(PatchStore(store).batch(range(2048))).unsqueeze(1)
        config = TrainConfig(iterations=args.iterations, encoder_iterations=0, batch_size=64,
                             latent_dim=100, base_channels=args.base_channels, device=args.device)
        spec = NetworkSpec(64, config.latent_dim, config.base_channels)

        print(f"\n1. loop throughput, 64x64, base_channels {config.base_channels}, batch 64, "
              f"{args.iterations} iterations x {args.rounds} rounds (patches/s)")
        ours, plain, totals = [], [], []
        for r in range(args.rounds):
            order = ("octanogan", "plain") if r % 2 == 0 else ("plain", "octanogan")
            for name in order:
                if name == "octanogan":
                    rate, total = octanogan_segment(store, work / f"run{r}", config)
                    ours.append(rate)
                    totals.append(total)
                else:
                    plain.append(plain_segment(data, spec, config))
            print(f"   round {r}: octanogan {ours[-1]:7.1f}   plain {plain[-1]:7.1f}")
        ratio = statistics.median(ours) / statistics.median(plain)
        print(f"   median: octanogan {statistics.median(ours):.1f}, plain {statistics.median(plain):.1f}"
              f", ratio octanogan/plain {ratio:.3f}")
        loop_s = args.iterations * config.batch_size / statistics.median(ours)
        print(f"   train() call overhead (store hash, setup, checkpoint, figures): "
              f"{statistics.median(totals) - loop_s:.2f} s per call")

        print("\n2. seconds per iteration and epoch estimates (64x64, batch 64)")
        settings = {"demo (base 16, z 64)": TrainConfig(iterations=6, encoder_iterations=5,
                                                         latent_dim=64, base_channels=16,
                                                         device=args.device),
                    "pipelines/demo.yaml (base 32, z 64)": TrainConfig(
                        iterations=6, encoder_iterations=5, latent_dim=64, base_channels=32,
                        device=args.device),
                    "paper (base 64, z 100)": TrainConfig(iterations=5, encoder_iterations=4,
                                                          device=args.device)}
        for k, (name, cfg) in enumerate(settings.items()):
            gan_s, enc_s = seconds_per_iteration(store, work / f"speed{k}", cfg)
            per_epoch = {n: n / cfg.batch_size * gan_s for n in (10_000, 1_000_000)}
            print(f"   {name}: GAN {gan_s:.3f} s/it, encoder {enc_s:.3f} s/it; one GAN epoch of "
                  f"10k patches {per_epoch[10_000] / 60:.1f} min, of 1M patches "
                  f"{per_epoch[1_000_000] / 3600:.1f} h "
                  f"(20 epochs: {20 * per_epoch[1_000_000] / 3600:.0f} h)")


if __name__ == "__main__":
    main()
