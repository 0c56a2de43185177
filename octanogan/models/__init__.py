"""DCGAN generator, discriminator (with feature layer f) and f-AnoGAN encoder, from MONAI blocks.

Plain ``nn.Module``s without training logic; ``octanogan.training`` trains them.
"""

from octanogan.models.discriminator import Discriminator
from octanogan.models.encoder import Encoder
from octanogan.models.generator import Generator
from octanogan.models.layers import channel_widths
from octanogan.models.spec import NetworkSpec

__all__ = ["Discriminator", "Encoder", "Generator", "NetworkSpec", "channel_widths"]
