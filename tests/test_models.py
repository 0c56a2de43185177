"""Shapes and behaviour of the DCGAN generator, discriminator (feature layer) and encoder."""

from __future__ import annotations

import pytest
import torch
from monai.networks.blocks import Convolution

from octanogan.models import Discriminator, Encoder, Generator, NetworkSpec, channel_widths


def test_widths_follow_dcgan():
    assert channel_widths(64, 64) == [512, 256, 128, 64]
    assert channel_widths(32, 64) == [256, 128, 64]
    assert channel_widths(32, 8) == [32, 16, 8]
    for bad in (16, 48, 100):
        with pytest.raises(ValueError, match="power of two"):
            channel_widths(bad)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size):
    torch.manual_seed(0)
    g, d, e = Generator(size, 8, 8), Discriminator(size, 8), Encoder(size, 8, 8)
    z = torch.randn(5, 8)
    x = g(z)
    assert x.shape == (5, 1, size, size)
    assert x.abs().max() <= 1
    logits, features = d.forward_with_features(x)
    top = channel_widths(size, 8)[0]
    assert logits.shape == (5,)
    assert features.shape == (5, top, 4, 4) and d.feature_shape == (top, 4, 4)
    assert e(x).shape == (5, 8)


def test_forward_with_features_matches_separate_calls():
    torch.manual_seed(0)
    d = Discriminator(32, 8).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    logits, features = d.forward_with_features(x)
    torch.testing.assert_close(logits, d(x))
    torch.testing.assert_close(features, d.features(x))


def test_default_networks_are_dcgan_sized_and_built_from_monai_blocks():
    g, d = Generator(), Discriminator()
    widths = [m.conv.out_channels for m in g.modules() if isinstance(m, Convolution)]
    assert widths == [512, 256, 128, 64, 1]
    assert d.feature_shape == (512, 4, 4)
    assert g.latent_dim == 100


def test_eval_mode_treats_patches_independently():
    """Scoring batches patches: in eval mode one patch's output must not depend on the others."""
    torch.manual_seed(0)
    g, d = Generator(32, 8, 8), Discriminator(32, 8)
    for _ in range(3):  # move the BatchNorm running statistics away from their start
        d(g(torch.randn(16, 8)))
    g.eval()
    d.eval()
    z = torch.randn(6, 8)
    x = g(z)
    torch.testing.assert_close(x[:2], g(z[:2]))
    torch.testing.assert_close(d.features(x)[:2], d.features(x[:2]))


def test_layer_norm_critic_is_per_sample_in_training_mode():
    """WGAN-GP needs a critic whose output for one sample ignores the rest of the batch."""
    torch.manual_seed(0)
    d = Discriminator(32, 8, norm="layer").train()
    x = torch.rand(4, 1, 32, 32)
    torch.testing.assert_close(d(x)[:1], d(x[:1]))
    batch_norm = Discriminator(32, 8, norm="batch").train()
    assert not torch.allclose(batch_norm(x)[:1], batch_norm(x[:1]))


def test_spec_rebuilds_identical_architecture():
    spec = NetworkSpec(patch_size=32, latent_dim=8, base_channels=8)
    g = spec.generator()
    assert NetworkSpec.from_dict({**spec.__dict__}) == spec
    spec.generator().load_state_dict(g.state_dict())  # same parameter names and shapes
    with pytest.raises(ValueError):
        NetworkSpec(patch_size=32, discriminator_norm="instance")
