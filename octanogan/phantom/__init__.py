"""Synthetic macular SD-OCT volumes with lesions and exact ground truth (octanogan's built-in data).

``generate_volume`` makes one volume; ``make_cohort`` writes a cohort of NIfTI volumes, label maps,
true boundaries and a manifest; ``ArtefactConfig`` adds the artefacts of real exports (fill wedges,
padding, tilt, noise, optic disc, sizes). See docs/phantom.md.
"""

from octanogan.phantom.artefacts import ArtefactConfig
from octanogan.phantom.cohort import make_cohort
from octanogan.phantom.lesions import MARKERS
from octanogan.phantom.volume import PhantomVolume, generate_volume

__all__ = ["MARKERS", "ArtefactConfig", "PhantomVolume", "generate_volume", "make_cohort"]
