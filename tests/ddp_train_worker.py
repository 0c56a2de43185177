"""Run under torchrun by tests/test_distributed.py: train, checking after every iteration that all
ranks hold identical weights (the DDP invariant).

    torchrun --nproc-per-node N tests/ddp_train_worker.py STORE OUT GAN_ITERATIONS ENCODER_ITERATIONS
        CHECKPOINT_EVERY [BATCH_SIZE DEVICE]

The settings are :data:`CONFIG`'s (the tests train one process with the same).
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

from octanogan.cli.common import end_rank
from octanogan.distributed import process_group
from octanogan.training import TrainConfig, train

#: Tiny networks; 300 GAN iterations give samples as varied as the real patches (diversity ~0.85).
CONFIG = {"batch_size": 16, "latent_dim": 16, "base_channels": 8, "seed": 3, "device": "cpu"}


def main() -> None:
    store, out, iterations, encoder_iterations, every = sys.argv[1:6]
    batch_size, device = (int(sys.argv[6]), sys.argv[7]) if len(sys.argv) > 7 else (16, "cpu")
    checked = {"steps": 0}

    def same_weights_on_every_rank(progress) -> None:  # noqa: ANN001
        weights = torch.cat([p.detach().flatten() for name in ("generator", "discriminator", "encoder")
                             for p in getattr(progress.state, name).parameters()])
        gathered = [torch.empty_like(weights) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, weights)
        if not all(torch.equal(gathered[0], other) for other in gathered[1:]):
            raise AssertionError(f"ranks differ after {progress.phase} iteration {progress.iteration}")
        checked["steps"] += 1

    config = TrainConfig(iterations=int(iterations), encoder_iterations=int(encoder_iterations),
                         checkpoint_every=int(every), **{**CONFIG, "batch_size": batch_size,
                                                          "device": device})
    with process_group(torch.device(device)) as ranks:
        train(store, out, config, on_iteration=same_weights_on_every_rank)
    print(f"rank {ranks.rank}: identical weights after {checked['steps']} steps")
    end_rank(0)


if __name__ == "__main__":
    main()
