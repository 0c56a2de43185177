"""Scoring: latent inversion of patches and stitching of residuals into anomaly maps."""

from octanogan.scoring.inversion import Inversion, InversionConfig, LatentInverter
from octanogan.scoring.score import ScoreConfig, ScoresFolder, score_manifest

__all__ = ["Inversion", "InversionConfig", "LatentInverter", "ScoreConfig", "ScoresFolder",
           "score_manifest"]
