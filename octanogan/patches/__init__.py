"""Patch grids over the flattened retina and the on-disk patch store."""

from octanogan.patches.grid import cut_patches, retina_grid
from octanogan.patches.store import PatchStore, PatchStoreWriter

__all__ = ["PatchStore", "PatchStoreWriter", "cut_patches", "retina_grid"]
