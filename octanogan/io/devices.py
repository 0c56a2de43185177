"""The manifest's ``device`` column: an allow-list of OCT vendors, never free text from a file.

DICOM ``Manufacturer``/``ManufacturerModelName`` and vendor headers are free text: sites put
station names, serial numbers or clinic names there. :func:`canonical_device` maps any such text
to one of :data:`DEVICE_VENDORS` (``"heidelberg"``, ``"zeiss"``, ...) by whole words, to
``"other"`` when nothing matches, and to ``""`` when there is no text at all.
"""

from __future__ import annotations

import re

#: Canonical vendor name -> words (lower case) that identify it in a manufacturer or model string.
DEVICE_VENDORS: dict[str, tuple[str, ...]] = {
    "heidelberg": ("heidelberg", "spectralis", "heyex"),
    "zeiss": ("zeiss", "meditec", "cirrus", "stratus", "plex"),
    "topcon": ("topcon", "triton", "maestro", "maestro2"),
    "optovue": ("optovue", "rtvue", "avanti", "solix", "ivue"),
    "nidek": ("nidek", "rs-3000", "rs-330", "mirante"),
    "canon": ("canon", "oct-hs100", "xephilio"),
    "optopol": ("optopol", "copernicus", "revo"),
    "leica": ("leica", "bioptigen", "envisu"),
    "thorlabs": ("thorlabs", "telesto", "ganymede"),
}
#: What a device string that names no known vendor becomes.
OTHER = "other"


def canonical_device(text: object) -> str:
    """``"Heidelberg Engineering Spectralis"`` -> ``"heidelberg"``; unknown text -> ``"other"``."""
    words = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", str(text or "").lower()))
    if not words:
        return ""
    for vendor, names in DEVICE_VENDORS.items():
        if words & set(names):
            return vendor
    return OTHER
