"""Preprocessing: intensity normalisation, ILM/BM detection, flattening and the retina mask.

Names load on first use, so ``octanogan.preprocess.config`` stays importable without SciPy;
``flatten`` is imported from ``octanogan.preprocess.flatten`` (its module has the same name).
"""

from octanogan.lazy import lazy_exports

_EXPORTS = {
    "PreprocessConfig": "config", "Preprocessed": "pipeline", "detect_boundaries": "boundaries",
    "unflatten": "flatten", "normalize_intensity": "normalize",
    "preprocess_volume": "pipeline", "retina_mask": "pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
