"""Training: the DCGAN (or WGAN-GP) on healthy patches, then the f-AnoGAN encoder.

``train(store_dir, run_dir, config)`` writes a run folder; ``load_run(run_dir)`` reads it back.
The names below load on first use, so ``octanogan.training.config`` stays importable without torch.
"""

from octanogan.lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config", "load_train_config": "config",
    "TrainProgress": "run", "TrainSummary": "run", "train": "run",
    "LoadedRun": "run_folder", "load_run": "run_folder", "read_config": "run_folder",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
