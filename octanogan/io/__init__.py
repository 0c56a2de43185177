"""Reading and writing OCT volumes, label maps and manifests."""

from octanogan.io.readers import read_label_map, read_volume, write_nifti
from octanogan.io.volume import OCTVolume, affine_from_spacing

__all__ = ["OCTVolume", "affine_from_spacing", "read_volume", "read_label_map", "write_nifti"]
