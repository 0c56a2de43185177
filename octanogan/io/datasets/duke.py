"""Duke DME set (Chiu et al. 2015): ``Subject_NN.mat`` with ``images`` and ``manualFluid1``.

``images`` is ``[depth, width, n_bscans]`` (496 x 768 x 61, Spectralis); ``manualFluid1`` (and
``manualFluid2``, the second grader) has the same shape, NaN on the B-scans that were not
graded (11 of 61 are) and fluid regions > 0 elsewhere. Only graded B-scans are kept by default,
so that unannotated fluid is never counted as background: the B-scan axis of the written volume
then skips B-scans and its spacing is nominal. Fluid becomes label 1 (``fluid``); the set does
not tell IRF from SRF. All subjects have DME: ``diseased``, split ``test``.

MATLAB v5 files are read with scipy, v7.3 (HDF5) files with h5py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from octanogan.errors import InputError, OctanoganError, Refusal
from octanogan.io.convert import ConversionReport, IdAllocator
from octanogan.io.datasets.common import claim_dataset_output, write_case, write_tables
from octanogan.io.devices import canonical_device
from octanogan.io.volume import DEFAULT_SPACING_MM
from octanogan.outputs.lock import scope

DUKE_MARKERS = {1: "fluid"}


def load_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of a MATLAB file in MATLAB's axis order (v5 or v7.3)."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError:  # v7.3 is HDF5
        return _load_hdf5_mat(path, keys)
    except (ValueError, OSError) as exc:
        raise InputError(path, f"not a readable MATLAB file ({exc})") from exc
    return {k: np.asarray(content[k]) for k in keys if k in content}


def _load_hdf5_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:  # h5py reverses MATLAB's axis order
            return {k: np.asarray(handle[k]).T for k in keys if k in handle}
    except OSError as exc:
        raise InputError(path, f"not a readable MATLAB v7.3 file ({exc})") from exc


def read_duke_subject(
    path: Path, grader: int = 1, graded_only: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(volume, labels)`` as ``[bscan, depth, width]`` float32 / uint8."""
    key = f"manualFluid{grader}"
    arrays = load_mat(path, ("images", key))
    if "images" not in arrays or key not in arrays:
        raise InputError(path, f"lacks 'images' or '{key}' (not a Duke DME file?)")
    images = np.moveaxis(arrays["images"], -1, 0).astype(np.float32)
    fluid = np.moveaxis(arrays[key], -1, 0).astype(np.float32)
    if images.ndim != 3 or fluid.shape != images.shape:
        raise InputError(path, f"'images' {images.shape} and '{key}' {fluid.shape} do not match")
    graded = ~np.isnan(fluid).all(axis=(1, 2))
    if graded_only:
        if not graded.any():
            raise InputError(path, f"'{key}' grades no B-scan")
        images, fluid = images[graded], fluid[graded]
    labels = (np.nan_to_num(fluid, nan=0.0) > 0).astype(np.uint8)
    return images, labels


@scope()
def duke_dme_to_nifti(
    root: str | Path,
    out_dir: str | Path,
    grader: int = 1,
    graded_only: bool = True,
    progress: Callable[[Iterable[Path]], Iterator[Path]] | None = None,
) -> ConversionReport:
    """Convert every Duke DME ``.mat`` under ``root``; write manifest, annotations and markers."""
    root, out_dir = Path(root), Path(out_dir)
    claim_dataset_output(root, out_dir)
    files = sorted(root.rglob("*.mat")) if root.is_dir() else [root]
    if not files:
        raise InputError(root, "no .mat files found (expected Subject_NN.mat)")
    report = ConversionReport(out_dir)
    allocate = IdAllocator()
    for path in (progress or iter)(files):
        try:
            images, labels = read_duke_subject(path, grader, graded_only)
        except OctanoganError as exc:
            report.refused.append(Refusal(str(path), getattr(exc, "problem", str(exc))))
            continue
        volume_id = allocate([path.stem, f"{path.parent.name}_{path.stem}"])
        image, label_map = write_case(out_dir, volume_id, images, DEFAULT_SPACING_MM, labels)
        report.rows.append({
            "volume_id": volume_id, "path": image, "label": "diseased", "split": "test",
            "annotation_path": label_map, "device": canonical_device("Heidelberg Spectralis"),
            "eye": "",
        })
    write_tables(report, DUKE_MARKERS)
    return report
