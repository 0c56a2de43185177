"""Preprocessing: intensity normalisation, ILM/BM detection, flattening and the retina mask."""

from octanogan.preprocess.boundaries import detect_boundaries
from octanogan.preprocess.config import PreprocessConfig
from octanogan.preprocess.flatten import flatten, unflatten
from octanogan.preprocess.normalize import normalize_intensity
from octanogan.preprocess.pipeline import Preprocessed, preprocess_volume, retina_mask

__all__ = [
    "PreprocessConfig",
    "Preprocessed",
    "detect_boundaries",
    "flatten",
    "normalize_intensity",
    "preprocess_volume",
    "retina_mask",
    "unflatten",
]
