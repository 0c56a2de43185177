"""Evaluation: voxel, patch, B-scan and volume metrics with bootstrap CIs (docs/evaluation.md)."""

from octanogan.evaluation.evaluate import EvaluationConfig, evaluate_scores

__all__ = ["EvaluationConfig", "evaluate_scores"]
