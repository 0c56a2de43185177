"""Training: the DCGAN (or WGAN-GP) on healthy patches, then the f-AnoGAN encoder.

``train(store_dir, run_dir, config)`` writes a run folder; ``load_run(run_dir)`` reads it back.
"""

from octanogan.training.config import TrainConfig, load_train_config
from octanogan.training.run import TrainProgress, TrainSummary, train
from octanogan.training.run_folder import LoadedRun, load_run, read_config

__all__ = ["LoadedRun", "TrainConfig", "TrainProgress", "TrainSummary", "load_run",
           "load_train_config", "read_config", "train"]
