"""Kermany et al. 2018 OCT2017 (``{train,val,test}/{NORMAL,CNV,DME,DRUSEN}/*.jpeg``).

Each JPEG is one B-scan and becomes one single-B-scan volume. The manifest points at the JPEGs
where they lie (no copies: the set has 84,000 images); NORMAL is ``healthy``, the rest
``diseased``; the split is the dataset's own folder. An extra ``diagnosis`` column keeps the
class. The set has image-level labels only, so there are no annotations or markers. Volume ids
are the JPEG names (``CNV-1234-1``): the dataset's public, de-identified ids, kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from octanogan.errors import InputError, Refusal
from octanogan.io.convert import ConversionReport
from octanogan.io.datasets.common import claim_dataset_output, relative, write_tables
from octanogan.io.devices import canonical_device
from octanogan.io.readers import IMAGE_SUFFIXES
from octanogan.outputs.lock import scope

KERMANY_CLASSES = {"NORMAL": "healthy", "CNV": "diseased", "DME": "diseased", "DRUSEN": "diseased"}
KERMANY_SPLITS = {"train": "train", "val": "val", "test": "test"}


def _class_folders(root: Path) -> list[Path]:
    return sorted(d for d in root.rglob("*")
                  if d.is_dir() and d.name.upper() in KERMANY_CLASSES
                  and d.parent.name.lower() in KERMANY_SPLITS
                  and not any(p.startswith(".") for p in d.relative_to(root).parts))


@scope()
def kermany_manifest(
    root: str | Path,
    out_dir: str | Path,
    progress: Callable[[Iterable[Path]], Iterator[Path]] | None = None,
) -> ConversionReport:
    """Write ``out_dir/manifest.csv`` for an OCT2017 folder; the images stay where they are."""
    root, out_dir = Path(root), Path(out_dir)
    claim_dataset_output(root, out_dir)
    folders = _class_folders(root)
    if not folders:
        raise InputError(root, "no OCT2017 class folders found (expected "
                               "train|val|test/NORMAL|CNV|DME|DRUSEN)")
    report = ConversionReport(out_dir)
    seen: set[str] = set()
    for folder in (progress or iter)(folders):
        diagnosis = folder.name.upper()
        split = KERMANY_SPLITS[folder.parent.name.lower()]
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES or image.name.startswith("."):
                continue
            volume_id = image.stem if image.stem not in seen else f"{split}_{image.stem}"
            if volume_id in seen:
                report.refused.append(Refusal(str(image), f"duplicate image id '{volume_id}'"))
                continue
            seen.add(volume_id)
            report.rows.append({
                "volume_id": volume_id, "path": relative(image, out_dir),
                "label": KERMANY_CLASSES[diagnosis], "split": split, "annotation_path": "",
                "device": canonical_device("Heidelberg Spectralis"), "eye": "",
                "diagnosis": diagnosis,
            })
    if not report.rows:
        raise InputError(root, "OCT2017 class folders hold no images")
    write_tables(report, extra_columns=("diagnosis",))
    return report
