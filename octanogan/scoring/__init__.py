"""Scoring: latent inversion of patches and stitching of residuals into anomaly maps.

Submodules: ``inversion`` (torch: the three modes), ``stitch``, ``aggregate`` (patch scores to
B-scan and volume scores) and ``score`` (the ``octanogan score`` stage). Import from them directly;
this package does not import torch by itself.
"""
