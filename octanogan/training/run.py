"""``train``: the GAN phase, then the encoder phase, checkpointing into a run folder."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from octanogan.device import resolve_device
from octanogan.distributed import Ranks, backend_name, mean_over_ranks, on_main, rank_device, ranks_from_env
from octanogan.errors import InputError, OctanoganError
from octanogan.fsutil import relative_path
from octanogan.models import NetworkSpec
from octanogan.outputs.folder import claim_output, write_marker
from octanogan.outputs.lock import scope
from octanogan.outputs.run import KIND
from octanogan.outputs.run import is_finished as rf_is_finished
from octanogan.outputs.run import is_resumable as rf_is_resumable
from octanogan.patches.store import PatchStore
from octanogan.provenance import git_commit, now, versions
from octanogan.training import run_folder as rf
from octanogan.training.checkpoint import TrainingState, load_tensors, save_tensors, save_weights
from octanogan.training.config import TrainConfig
from octanogan.training.data import ENCODER_STREAM, GAN_STREAM, BatchSchedule, batch_stream, open_store
from octanogan.training.encoder import EncoderStep, freeze
from octanogan.training.figures import image_grid, plot_losses, save_png
from octanogan.training.gan import GanStep
from octanogan.training.health import check_run
from octanogan.training.monitor import Monitor, describe, gradient_norm, open_monitor, sample_diversity
from octanogan.training.parallel import data_parallel, synchronise_batch_norm

N_SAMPLES = 64
#: Extraction settings copied from the store into run.json (scoring must cut patches the same way).
STORE_SETTINGS = ("stride", "label", "split", "preprocess", "manifest")
SAMPLES_STREAM = 2


@dataclasses.dataclass
class TrainProgress:
    """Passed to the ``on_iteration`` callback after every iteration."""

    phase: str  # "gan" or "encoder"
    iteration: int
    total: int
    stats: dict[str, torch.Tensor]  # averaged over the ranks under torchrun
    state: TrainingState  # networks and optimisers, to look at (not to change)

    def losses(self) -> dict[str, float]:
        """The iteration's losses as floats (a device sync: call it sparingly on GPU)."""
        return {name: float(value) for name, value in self.stats.items()}


@dataclasses.dataclass
class TrainSummary:
    """What one call of :func:`train` did."""

    run_dir: Path
    gan_iterations: int  # trained in this call
    encoder_iterations: int
    patches: int  # patches read in this call
    seconds: float
    epochs: float  # GAN epochs reached in total
    #: Signs that the run went wrong (training/health.py), and notices (the live view's).
    warnings: list[str] = dataclasses.field(default_factory=list)
    notices: list[str] = dataclasses.field(default_factory=list)

    @property
    def patches_per_s(self) -> float:
        return self.patches / self.seconds if self.seconds > 0 else 0.0


class _Run:
    """One training session on a run folder (new or resumed), on one rank of ``ranks``.

    Every rank steps; rank 0 alone logs, draws and checkpoints (the others hold the same weights).
    """

    def __init__(self, store: PatchStore, run_dir: Path, config: TrainConfig, state: TrainingState,
                 on_iteration: Callable[[TrainProgress], None] | None, monitor: Monitor | None,
                 ranks: Ranks) -> None:
        self.store, self.run_dir, self.config, self.state = store, run_dir, config, state
        self.device = state.noise.device
        self.on_iteration = on_iteration
        self.monitor = monitor
        self.ranks = ranks
        self.log = rf.LossLog(run_dir / rf.LOSSES) if ranks.is_main else None
        rng = np.random.default_rng([config.seed, SAMPLES_STREAM])
        self.fixed_z = torch.from_numpy(rng.standard_normal((N_SAMPLES, config.latent_dim),
                                                            dtype=np.float32)).to(self.device)
        picks = np.linspace(0, len(store) - 1, N_SAMPLES // 2).astype(int)
        self.fixed_x = torch.from_numpy(store.batch(picks)).unsqueeze(1).to(self.device)

    def batches(self, stream: int, start: int, stop: int) -> Iterator[torch.Tensor]:
        schedule = BatchSchedule(len(self.store), self.config.batch_size, self.config.seed, stream)
        loader = batch_stream(self.store, schedule, start, stop, flip=self.config.flip,
                              workers=self.config.workers, pin_memory=self.device.type == "cuda",
                              part=(self.ranks.rank, self.ranks.world_size))
        return (batch.to(self.device, non_blocking=True) for batch in loader)

    def parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        return data_parallel(module, self.ranks, self.device)

    def gan_phase(self) -> int:
        s, c = self.state, self.config
        if s.gan_iteration >= c.iterations:
            self.save_gan_weights()  # a kill may have come between the last checkpoint and these
            return 0
        start = s.gan_iteration
        s.generator.train()
        s.discriminator.train()
        step = GanStep(self.parallel(s.generator), self.parallel(s.discriminator), s.opt_g, s.opt_d,
                       s.noise, c.objective, c.critic_steps, c.gp_weight)
        batches = self.batches(GAN_STREAM, start * c.critic_steps, c.iterations * c.critic_steps)
        self.run_phase("gan", start, c.iterations, lambda: step(batches), self.save_gan_samples,
                       lambda: {"g_grad_norm": gradient_norm(s.generator),
                                "d_grad_norm": gradient_norm(s.discriminator)})
        self.save_gan_weights()
        return c.iterations - start

    def save_gan_weights(self) -> None:
        if self.ranks.is_main:
            save_weights(self.run_dir / rf.GENERATOR, self.state.generator)
            save_weights(self.run_dir / rf.DISCRIMINATOR, self.state.discriminator)

    def encoder_phase(self) -> int:
        s, c = self.state, self.config
        if s.encoder_iteration >= c.encoder_iterations:
            if c.encoder_iterations and self.ranks.is_main:
                save_weights(self.run_dir / rf.ENCODER, s.encoder)
            return 0
        start = s.encoder_iteration
        freeze(s.generator, s.discriminator)
        s.encoder.train()
        step = EncoderStep(self.parallel(s.encoder), s.generator, s.discriminator, s.opt_e, c.kappa)
        batches = self.batches(ENCODER_STREAM, start, c.encoder_iterations)
        self.run_phase("encoder", start, c.encoder_iterations, lambda: step(next(batches)),
                       self.save_reconstructions, lambda: {"e_grad_norm": gradient_norm(s.encoder)})
        if self.ranks.is_main:
            save_weights(self.run_dir / rf.ENCODER, s.encoder)
        return c.encoder_iterations - start

    def run_phase(self, phase: str, done: int, total: int,
                  step: Callable[[], dict[str, torch.Tensor]], figure: Callable[[int], None],
                  gradients: Callable[[], dict[str, torch.Tensor]]) -> None:
        """Iterations ``done + 1 .. total`` of one phase: step, log, and at every checkpoint the
        phase's figure and the checkpoint (both phases share this, so resume works alike)."""
        for iteration in range(done + 1, total + 1):
            stats = mean_over_ranks(self.ranks, step())
            setattr(self.state, f"{phase}_iteration", iteration)
            if self.on_iteration is not None:  # on every rank
                self.on_iteration(TrainProgress(phase, iteration, total, stats, self.state))
            if self.log is None:  # not rank 0: nothing to write
                continue
            self.log.add(iteration, phase, stats)
            if self.monitor is not None:
                self.monitor.add(self.global_step(phase, iteration), phase, {**stats, **gradients()})
            if iteration % self.config.checkpoint_every == 0 or iteration == total:
                figure(iteration)
                self.checkpoint()

    def global_step(self, phase: str, iteration: int) -> int:
        """One step count through both phases: GAN 1..N, then encoder N+1..N+M."""
        return iteration if phase == "gan" else self.config.iterations + iteration

    def checkpoint(self) -> None:
        """Losses first, then the checkpoint: a crash between them leaves rows that resume drops."""
        self.log.flush()
        if self.monitor is not None:
            s = self.state
            self.monitor.flush({"gan": s.opt_g.param_groups[0]["lr"],
                                "encoder": s.opt_e.param_groups[0]["lr"]})
        save_tensors(self.run_dir / rf.CHECKPOINT, self.state.state_dict())
        rf.drop_replaced(self.run_dir)  # the new run has started: the one it replaces may go

    @torch.no_grad()
    def save_gan_samples(self, iteration: int) -> None:
        """G(z) for a fixed z, in eval mode as scoring will use it."""
        g = self.state.generator
        g.eval()
        samples = g(self.fixed_z)
        g.train()
        grid = image_grid(samples)
        save_png(self.run_dir / rf.SAMPLES / f"iter_{iteration:06d}.png", grid)
        if self.monitor is not None:
            self.monitor.image("samples", grid, iteration)
            self.monitor.scalar("gan/sample_diversity", sample_diversity(samples, self.fixed_x),
                                iteration)

    @torch.no_grad()
    def diversity(self) -> float:
        """The final generator's sample diversity (training/health.py)."""
        g = self.state.generator
        g.eval()
        return sample_diversity(g(self.fixed_z), self.fixed_x)

    @torch.no_grad()
    def save_reconstructions(self, iteration: int) -> None:
        """Rows of real patches x alternating with their reconstructions G(E(x))."""
        s = self.state
        s.encoder.eval()
        recon = s.generator(s.encoder(self.fixed_x))
        s.encoder.train()
        pairs = torch.stack([self.fixed_x.view(-1, 8, *self.fixed_x.shape[1:]),
                             recon.view(-1, 8, *recon.shape[1:])], dim=1).flatten(0, 2)
        grid = image_grid(pairs)
        save_png(self.run_dir / rf.SAMPLES / f"encoder_iter_{iteration:06d}.png", grid)
        if self.monitor is not None:
            self.monitor.image("reconstructions", grid, self.global_step("encoder", iteration))


@scope()
def train(store_dir: str | Path, run_dir: str | Path, config: TrainConfig | None = None, *,
          resume: bool = False, overwrite: bool = False,
          on_iteration: Callable[[TrainProgress], None] | None = None) -> TrainSummary:
    """Train G and D on the patch store, then the encoder; write everything to ``run_dir``.

    ``resume`` continues from ``run_dir/checkpoint.pt`` (or from the start, when a kill came
    before the first checkpoint) and reproduces the losses of an uninterrupted run; ``config``
    may then only extend iterations or change device/workers (see ``read_config``). Without
    ``resume`` a run with a checkpoint is refused unless ``overwrite``; the old run is deleted only
    once the new one has written its first checkpoint. Everything is validated before anything
    is written.

    Under torchrun (inside :func:`octanogan.distributed.process_group`) every rank trains its
    part of each batch with DistributedDataParallel and rank 0 alone writes (docs/scaling.md).
    """
    config = (config or TrainConfig()).resolved()
    ranks = ranks_from_env()
    run_dir = Path(run_dir)
    device = rank_device(resolve_device(config.device), ranks)
    rank0: dict[str, Any] = {}  # what rank 0 alone keeps: the store, checkpoint and run record

    def prepare() -> dict[str, bool]:
        """Rank 0: check everything and claim the folder; say whether to load the checkpoint."""
        if config.batch_size % ranks.world_size:
            raise OctanoganError(f"--batch-size {config.batch_size} is the global batch: it must be "
                                 f"divisible by the {ranks.world_size} ranks")
        rf.recover(run_dir)
        exists = claim_output(run_dir, KIND, [store_dir])
        store = rank0["store"] = open_store(store_dir, config.batch_size)
        rank0["hash"] = store.content_hash()
        if resume and not exists:
            raise InputError(run_dir, "holds no run to resume; start a new run without --resume")
        resuming = resume and ((run_dir / rf.CHECKPOINT).is_file() or rf_is_resumable(run_dir))
        checkpoint = rank0["checkpoint"] = _check_resume(run_dir, config, rank0["hash"]) if resuming \
            else None
        done = (int(checkpoint["gan_iteration"]), int(checkpoint["encoder_iteration"])) \
            if checkpoint is not None else (0, 0)
        _check_extension(*done, config, run_dir)
        if resuming and rf_is_finished(run_dir) and \
                done[0] >= config.iterations and done[1] >= config.encoder_iterations:
            return {"checkpoint": checkpoint is not None, "finished": True}
        if resuming:
            rank0["record"] = rf.read_record(run_dir)
            rank0["record"]["resumed"] = [*rank0["record"].get("resumed", []), now()]
            rf.LossLog(run_dir / rf.LOSSES).truncate(*done)  # rows after the checkpoint go
        else:
            rf.set_aside(run_dir, overwrite)
            rank0["record"] = _new_record(run_dir, Path(store_dir), store, rank0["hash"],
                                          _network_spec(store, config), config)
        return {"checkpoint": checkpoint is not None, "finished": False}

    plan = on_main(ranks, prepare)
    store = rank0.get("store") or open_store(store_dir, config.batch_size)
    state = TrainingState.create(_network_spec(store, config), config, device,
                                 (ranks.rank, ranks.world_size))
    if plan["checkpoint"]:
        checkpoint = rank0.get("checkpoint") or load_tensors(run_dir / rf.CHECKPOINT, "checkpoint")
        state.load_state_dict(checkpoint, run_dir / rf.CHECKPOINT)
    if plan["finished"]:
        return TrainSummary(run_dir, 0, 0, 0, 0.0, _epochs(state, config, store))
    batch_norm = synchronise_batch_norm(state, ranks, device)
    monitor, notice = None, None
    try:
        if ranks.is_main:
            monitor, notice = _open_run_folder(run_dir, config, state, device, rank0["record"],
                                               {"world_size": ranks.world_size, "batch_norm": batch_norm,
                                                "backend": backend_name(device) if ranks.active else None})
        session = _Run(store, run_dir, config, state, on_iteration, monitor, ranks)
        begin = time.perf_counter()
        try:
            gan_done = session.gan_phase()
            encoder_done = session.encoder_phase()
        finally:
            if monitor is not None:
                monitor.close()
    except BaseException:
        if ranks.is_main:
            rf.restore_replaced(run_dir)  # failed before its first checkpoint: the old run comes back
        raise
    seconds = time.perf_counter() - begin
    patches = (gan_done * config.critic_steps + encoder_done) * config.batch_size
    summary = TrainSummary(run_dir, gan_done, encoder_done, patches, seconds,
                           _epochs(state, config, store), notices=[notice] if notice else [])
    if ranks.is_main:
        plot_losses(run_dir / rf.LOSSES, run_dir / rf.LOSS_CURVE)
        health = check_run(run_dir / rf.LOSSES, config.objective, session.diversity())
        record = rank0["record"]
        record.update(finished=True, ended=now(), gan_iterations=state.gan_iteration,
                      encoder_iterations=state.encoder_iteration, health=health.record())
        rf.write_record(run_dir, record)
        rf.drop_replaced(run_dir)
        summary.warnings = health.warnings
    return summary


def _network_spec(store: PatchStore, config: TrainConfig) -> NetworkSpec:
    return NetworkSpec(store.patch_size, config.latent_dim, config.base_channels,
                       config.discriminator_norm)


def _open_run_folder(run_dir: Path, config: TrainConfig, state: TrainingState, device: torch.device,
                     record: dict[str, Any], session: dict[str, Any]) -> tuple[Monitor | None, str | None]:
    """Rank 0: the run folder's marker, config and record of this session, and the live view."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_marker(run_dir, KIND)
    record.update(finished=False, ended=None, device=str(device), versions=versions(),
                  git_commit=git_commit())
    record["sessions"] = [*record.get("sessions", []), {"started": now(), **session}]
    rf.write_config(run_dir, config)
    rf.write_record(run_dir, record)
    monitor, notice = open_monitor(run_dir, state.gan_iteration + state.encoder_iteration + 1,
                                   {"gan": config.batch_size * config.critic_steps,
                                    "encoder": config.batch_size})
    if monitor is not None:
        monitor.text("config", describe(dataclasses.asdict(config)), state.gan_iteration + 1)
    return monitor, notice


def _epochs(state: TrainingState, config: TrainConfig, store: PatchStore) -> float:
    return state.gan_iteration * config.critic_steps * config.batch_size / len(store)


def _new_record(run_dir: Path, store_dir: Path, store: PatchStore, store_hash: str, spec: NetworkSpec,
                config: TrainConfig) -> dict[str, Any]:
    """run.json of a new run: what it was trained on and how (completed as training goes)."""
    extraction = {k: store.settings[k] for k in STORE_SETTINGS if k in store.settings}
    return {"format_version": 1, "started": now(), "resumed": [],
            "store": {"path": relative_path(store_dir, run_dir), "content_hash": store_hash,
                      "n_patches": len(store), "patch_size": store.patch_size, **extraction},
            "networks": dataclasses.asdict(spec), "seed": config.seed}


def _check_resume(run_dir: Path, config: TrainConfig, store_hash: str) -> dict[str, Any] | None:
    """Everything a resume needs, read and checked before the run folder is touched; None when
    the run was stopped before its first checkpoint (it then starts again from iteration 0)."""
    if not rf_is_resumable(run_dir):
        raise InputError(run_dir, "holds no config.yaml and run.json to resume from; start a new run "
                                  "without --resume")
    rf.check_same_training(rf.read_config(run_dir), config, run_dir)
    record = rf.read_record(run_dir)
    if record.get("store", {}).get("content_hash") != store_hash:
        raise InputError(run_dir, "the patch store differs from the one this run was trained on "
                                  f"({record.get('store', {}).get('path')}); resume needs the same store")
    if not (run_dir / rf.CHECKPOINT).is_file():
        return None
    return load_tensors(run_dir / rf.CHECKPOINT, "checkpoint")


def _check_extension(gan_done: int, encoder_done: int, config: TrainConfig, run_dir: Path) -> None:
    """A resume may extend a run, never shorten it or retrain the GAN under a trained encoder."""
    if gan_done > config.iterations or encoder_done > config.encoder_iterations:
        raise InputError(run_dir, f"the checkpoint is at {gan_done} GAN / {encoder_done} encoder "
                                  f"iterations, beyond the {config.iterations} / "
                                  f"{config.encoder_iterations} asked for")
    if encoder_done > 0 and gan_done < config.iterations:
        raise InputError(run_dir, "the encoder was trained on this GAN; more GAN iterations would "
                                  "make it stale: start a new run")
