"""Latent inversion and stitching: batching changes nothing, stitching is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octanogan.models import NetworkSpec
from octanogan.scoring.aggregate import top_mean
from octanogan.scoring.inversion import InversionConfig, LatentInverter
from octanogan.scoring.stitch import Stitcher, patch_weights

SPEC = NetworkSpec(patch_size=32, latent_dim=8, base_channels=8)


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    generator, discriminator, encoder = SPEC.generator(), SPEC.discriminator(), SPEC.encoder()
    # Give BatchNorm non-trivial running statistics, as after training.
    with torch.no_grad():
        generator.train()(torch.randn(16, SPEC.latent_dim))
        discriminator.train()(torch.rand(16, 1, 32, 32) * 2 - 1)
        encoder.train()(torch.rand(16, 1, 32, 32) * 2 - 1)
    return generator, discriminator, encoder


def _patches(n: int) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("mode", ["iterative", "hybrid"])
def test_batched_inversion_equals_one_patch_at_a_time(networks, mode):
    config = InversionConfig(mode=mode, steps=15, hybrid_steps=15)
    inverter = LatentInverter(*networks, SPEC.latent_dim, config)
    x = _patches(5)
    z0 = torch.randn(5, SPEC.latent_dim, generator=torch.Generator().manual_seed(2))
    batched = inverter.invert(x, z0)
    for i in range(5):
        single = inverter.invert(x[i : i + 1], z0[i : i + 1])
        torch.testing.assert_close(single.z, batched.z[i : i + 1], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(single.score, batched.score[i : i + 1], rtol=1e-4, atol=1e-4)
    assert not torch.equal(batched.z, z0), "Adam must move z"


def test_iterative_steps_lower_the_loss(networks):
    x = _patches(4)
    z0 = torch.randn(4, SPEC.latent_dim, generator=torch.Generator().manual_seed(3))
    def inverter(steps: int) -> LatentInverter:
        return LatentInverter(*networks, SPEC.latent_dim, InversionConfig(mode="iterative", steps=steps))

    start, end = inverter(0).invert(x, z0), inverter(40).invert(x, z0)
    assert (end.score < start.score).all()


def test_score_is_weighted_sum_of_parts_and_map_matches_residual(networks):
    config = InversionConfig(mode="encoder", lam=0.3)
    result = LatentInverter(*networks, SPEC.latent_dim, config).invert(_patches(3))
    torch.testing.assert_close(result.score, 0.7 * result.residual + 0.3 * result.feature)
    torch.testing.assert_close(result.residual_map.flatten(1).sum(1), result.residual)
    assert result.residual_map.shape == (3, 32, 32)


def test_encoder_modes_need_an_encoder(networks):
    generator, discriminator, _ = networks
    with pytest.raises(ValueError, match="encoder"):
        LatentInverter(generator, discriminator, None, SPEC.latent_dim, InversionConfig(mode="hybrid"))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="mode"):
        InversionConfig(mode="magic")
    with pytest.raises(ValueError, match="lam"):
        InversionConfig(lam=1.5)


@pytest.mark.parametrize("weighting", ["uniform", "gaussian"])
def test_stitching_constant_patches_reproduces_the_constant(weighting):
    stitcher = Stitcher((2, 40, 50), 8, weighting)
    centres = np.array([[b, y, x] for b in range(2) for y in (10, 14, 20) for x in (8, 12, 30)])
    stitcher.add(np.full((len(centres), 8, 8), 3.5, np.float32), centres)
    result = stitcher.result()
    covered = stitcher.weight > 0
    np.testing.assert_allclose(result[covered], 3.5, rtol=1e-6)
    assert (result[~covered] == 0).all()


def test_stitching_averages_overlaps():
    stitcher = Stitcher((1, 16, 16), 8)
    stitcher.add(np.stack([np.full((8, 8), 1.0), np.full((8, 8), 3.0)]).astype(np.float32),
                 np.array([[0, 8, 6], [0, 8, 10]]))
    result = stitcher.result()
    assert result[0, 8, 3] == 1.0 and result[0, 8, 13] == 3.0 and result[0, 8, 8] == 2.0
    assert patch_weights(8, "gaussian")[4, 4] > patch_weights(8, "gaussian")[0, 0]


def test_top_mean():
    assert top_mean(np.arange(100.0), 0.1) == pytest.approx(94.5)
    assert top_mean(np.array([1.0, 5.0]), 0.1) == 5.0


def test_smoothing_keeps_a_constant_map_constant_up_to_its_edges():
    from octanogan.scoring.score import ScoreConfig, VolumeScorer

    stitcher = Stitcher((1, 40, 60), 8)
    centres = np.array([[0, y, x] for y in (12, 18, 24) for x in range(4, 57, 4)])
    stitcher.add(np.full((len(centres), 8, 8), 2.0, np.float32), centres)
    scorer = VolumeScorer(None, 8, None, ScoreConfig(smooth_sigma=3.0), "cpu")  # type: ignore[arg-type]
    smoothed = scorer._smoothed(stitcher)
    covered = stitcher.weight > 0
    np.testing.assert_allclose(smoothed[covered], 2.0, rtol=1e-5)
    assert (smoothed[~covered] == 0).all()
    noisy = Stitcher((1, 40, 60), 8)
    noisy.add(np.random.default_rng(0).random((len(centres), 8, 8)).astype(np.float32), centres)
    assert scorer._smoothed(noisy)[covered].std() < noisy.result()[covered].std() / 2


def test_reseeding_makes_iterative_start_depend_only_on_the_key(networks):
    inverter = LatentInverter(*networks, SPEC.latent_dim, InversionConfig(mode="iterative", steps=0))
    x = _patches(3)
    inverter.reseed("volume-b")
    first = inverter.initial_latents(x)
    inverter.reseed("volume-a")
    inverter.initial_latents(x)
    inverter.reseed("volume-b")
    torch.testing.assert_close(inverter.initial_latents(x), first)
    inverter.reseed("volume-a")
    assert not torch.equal(inverter.initial_latents(x), first)
