"""Synthetic macular SD-OCT volumes with lesions and exact ground truth (octanogan's built-in data).

``generate_volume`` makes one volume; ``make_cohort`` writes a cohort of NIfTI volumes, label maps,
true boundaries and a manifest (``CohortConfig`` holds its settings); ``ArtefactConfig`` adds the
artefacts of real exports (fill wedges, padding, tilt, noise, optic disc, sizes). See
docs/phantom.md. Names load on first use, so the CLI reads the settings without NumPy.
"""

from octanogan.lazy import lazy_exports

_EXPORTS = {
    "ArtefactConfig": "artefacts", "CohortConfig": "config", "MARKERS": "lesions",
    "PhantomVolume": "volume", "generate_volume": "volume", "make_cohort": "cohort",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
