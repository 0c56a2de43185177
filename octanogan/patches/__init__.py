"""Patch grids over the flattened retina and the on-disk patch store (names load on first use)."""

from octanogan.lazy import lazy_exports

_EXPORTS = {"ExtractConfig": "config", "cut_patches": "grid", "retina_grid": "grid",
            "PatchStore": "store", "PatchStoreWriter": "store"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
