"""Tiny test inputs shared by several test files."""

TINY_PIPELINE = """
description: tiny end-to-end pipeline for tests (seconds on a CPU)
data:
  phantom: {healthy: 5, diseased: 2, shape: [3, 496, 128], seed: 3}
extract: {patch_size: 32, stride: 16}
train: {iterations: 4, encoder_iterations: 4, batch_size: 8, latent_dim: 8, base_channels: 8,
        checkpoint_every: 2, seed: 0}
score: {mode: hybrid, hybrid_steps: 2, stride: 32, batch_size: 64}
evaluate: {n_bootstrap: 20}
"""
