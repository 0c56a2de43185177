"""Recipes that turn public OCT datasets into octanogan manifests (see docs/datasets.md)."""

from octanogan.io.datasets.duke import duke_dme_to_nifti
from octanogan.io.datasets.kermany import kermany_manifest
from octanogan.io.datasets.retouch import retouch_to_nifti

DATASETS = {"kermany": kermany_manifest, "retouch": retouch_to_nifti, "duke": duke_dme_to_nifti}

__all__ = ["DATASETS", "duke_dme_to_nifti", "kermany_manifest", "retouch_to_nifti"]
