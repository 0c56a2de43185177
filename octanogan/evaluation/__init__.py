"""Evaluation: voxel, patch, B-scan and volume metrics with bootstrap CIs (docs/evaluation.md)."""

from octanogan.lazy import lazy_exports

_EXPORTS = {"EvaluationConfig": "config", "evaluate_scores": "evaluate"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
