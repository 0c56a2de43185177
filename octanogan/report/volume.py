"""One volume's page: its image files, flagged regions, B-scan ranking and scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from octanogan.errors import InputError
from octanogan.io import read_label_map, read_volume
from octanogan.outputs.scores import ScoresFolder
from octanogan.report import images
from octanogan.report.cohort import fmt_score
from octanogan.report.inputs import Evaluation, VolumeEntry
from octanogan.report.regions import Region, flagged_regions

TOP_REGIONS = 10
#: Grey level of export fill (not image) in the B-scan images.
FILL_GREY = 128
#: Smaller regions are counted but not listed: single noisy voxels would crowd the table.
MIN_REGION_VOXELS = 10


@dataclass(frozen=True)
class LegendEntry:
    name: str
    colour: str
    present: bool


@dataclass(frozen=True)
class HeatScale:
    """The heat-map colour range; ``threshold_at`` is the threshold's position (0-1) on it."""

    lo: float
    hi: float
    threshold: float | None

    @property
    def threshold_at(self) -> float | None:
        if self.threshold is None:
            return None
        return (self.threshold - self.lo) / (self.hi - self.lo)


def heat_scale(anomaly: np.ndarray, retina: np.ndarray | None, threshold: float | None) -> HeatScale:
    """Colour from half the voxel threshold (transparent) to twice it (brightest).

    Without a threshold the volume's own 90th-99.9th percentiles (inside the retina) are used.
    """
    if threshold is not None and threshold > 0:
        return HeatScale(threshold / 2, threshold * 2, threshold)
    values = anomaly[retina] if retina is not None and retina.any() else anomaly
    lo, hi = np.percentile(values, [90, 99.9])
    return HeatScale(float(lo), float(max(hi, lo + 1e-6)), None)


def _read_map(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    data = read_volume(path).data
    if data.shape != shape:
        raise InputError(path, f"map shape {data.shape} differs from its volume's {shape}")
    return data


def _labels_and_legend(ev: Evaluation, entry: VolumeEntry, shape: tuple[int, int, int]
                       ) -> tuple[np.ndarray | None, list[int], list[LegendEntry]]:
    if entry.annotation_path is None:
        return None, [], []
    labels = read_label_map(entry.annotation_path, shape)
    present = {int(v) for v in np.unique(labels)} - {0}
    values = list(ev.markers) + sorted(present - set(ev.markers))
    legend = [LegendEntry(ev.markers.get(v, f"label {v}"),
                          images.marker_colour(i) if v in ev.markers else images.OTHER_LABEL_COLOUR,
                          v in present)
              for i, v in enumerate(values)]
    return labels, values, legend


def _patch_summary(ev: Evaluation, entry: VolumeEntry) -> tuple[int, int] | None:
    """(patches above the patch threshold, patches scored), when the patch table is there."""
    path = ev.patch_table_path(entry)
    threshold = ev.threshold("patch")
    if threshold is None or not path.is_file():
        return None
    try:
        scores = pd.to_numeric(pd.read_csv(path, usecols=["score"])["score"], errors="coerce")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"not a readable patch score table ({exc})") from exc
    return int((scores > threshold).sum()), int(scores.notna().sum())


@dataclass(frozen=True)
class MapLegend:
    """How the volume page shows one kind of anomaly map (``ScoreConfig.anomaly_map``)."""

    ramp: str
    title: str
    note: str


MAP_LEGENDS = {
    "darker": MapLegend("cold", "Darker than expected",
                        "Blue: tissue darker than the model's healthy retina at this place "
                        "(hypo-reflective: fluid, tissue under a lifted RPE, shadows)."),
    "brighter": MapLegend("hot", "Brighter than expected",
                          "Heat: tissue brighter than the model's healthy retina at this place "
                          "(hyper-reflective: foci, exudates, fibrosis)."),
    "absolute": MapLegend("hot", "Anomaly |x − G(z)|",
                          "Heat: how far the tissue differs from the model's healthy retina, darker "
                          "or brighter (the AnoGAN paper's residual)."),
}


def map_legend(ev: Evaluation) -> MapLegend:
    """The legend of the scores' map; scores made before the setting existed hold |x - G(z)|."""
    kind = str((ev.info.get("scoring") or {}).get("anomaly_map", "absolute"))
    return MAP_LEGENDS.get(kind, MAP_LEGENDS["absolute"])


def write_images(folder: Path, grey: np.ndarray, heat: np.ndarray, heat_top: np.ndarray,
                 contours: np.ndarray | None, contour_colours: list[str],
                 layout: images.SpriteLayout, row_repeat: int, ramp: str = "hot") -> None:
    """The four image files of a volume page."""
    images.save_jpeg(layout.tile(grey, edge=True), folder / "bscans.jpg")
    palette, alpha = images.heat_palette(ramp)
    images.save_png(layout.tile(heat, edge=False), folder / "heat.png", palette, alpha)
    if contours is not None:
        rgb = [0, 0, 0] + [c for colour in contour_colours for c in images.hex_rgb(colour)]
        opaque = bytes([0] + [255] * len(contour_colours))
        images.save_png(layout.tile(contours, edge=False), folder / "contours.png", rgb, opaque)
    images.save_png(images.enface_rgb(grey, heat_top, row_repeat, ramp), folder / "enface.png")


def _export_fill(ev: Evaluation, entry: VolumeEntry, data: np.ndarray) -> np.ndarray | None:
    """The export fill to show grey, when the scores hold it (``invalid`` in the geometry file).

    Dark fill outside the retina band already looks like background (and a vitreous clipped to
    the export's minimum is found as fill), so only fill over the retina or brighter than the
    background is shown.
    """
    from octanogan.preprocess.pipeline import retina_mask

    path = ev.map_path(entry, "geometry")
    geometry = ScoresFolder(ev.scores_dir).geometry(entry.safe_id)
    if "invalid" not in geometry:
        return None
    try:
        fill = geometry["invalid"].astype(bool)
        band = retina_mask(geometry["ilm"], geometry["bm"], data.shape[1])
    except (KeyError, ValueError) as exc:
        raise InputError(path, f"not a readable geometry file ({exc})") from exc
    if fill.shape != data.shape or band.shape != data.shape:
        raise InputError(path, f"fill mask shape {fill.shape} differs from its volume's {data.shape}")
    darkest = data.reshape(len(data), -1).min(axis=1)[:, None, None]
    return fill & (band | (data > darkest))


def _bscan_ranking(scores: np.ndarray, threshold: float | None) -> list[dict[str, Any]]:
    finite = scores[np.isfinite(scores)]
    top = float(finite.max()) if finite.size else 1.0
    order = sorted((k for k in range(len(scores)) if math.isfinite(scores[k])),
                   key=lambda k: -scores[k])
    return [{"index": k, "score": fmt_score(scores[k]),
             "bar": max(0.0, scores[k] / top * 100) if top > 0 else 0.0,
             "flagged": threshold is not None and scores[k] > threshold} for k in order]


@dataclass
class VolumePage:
    """What one volume's page shows (``volume.html``'s context); its images are written already."""

    entry: VolumeEntry
    rank: int
    n_volumes: int
    score: str
    flagged: bool | None  # above the volume threshold (None: no threshold)
    volume_threshold: str | None
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    patches: Any
    images: dict[str, str | None]  # file names relative to the page's folder
    layout: images.SpriteLayout
    enface_rows: int
    legend: list[Any]
    map: Any  # the map's legend (its kind, ramp and meaning)
    scale: Any
    scale_labels: tuple[str, str]
    regions: list[Region]
    n_regions: int
    min_region_voxels: int
    voxel_threshold: str | None
    ranked_bscans: list[dict[str, Any]]
    has_fill: bool
    viewer: dict[str, Any]  # the B-scan viewer's data (sprite layout, scores, flags, QC)


def build_volume_page(ev: Evaluation, entry: VolumeEntry, rank: int, folder: Path) -> VolumePage:
    """Write the volume's images into ``folder/<safe_id>/`` and return its page."""
    volume = read_volume(entry.path)
    shape = volume.shape
    anomaly = _read_map(ev.map_path(entry, "anomaly"), shape)
    retina_path = ev.map_path(entry, "retina")
    retina = _read_map(retina_path, shape) > 0 if retina_path.exists() else None
    labels, label_values, legend = _labels_and_legend(ev, entry, shape)
    voxel_threshold = ev.threshold("voxel")
    scale = heat_scale(anomaly, retina, voxel_threshold)
    layout = images.SpriteLayout.for_shape(shape)
    row_repeat = images.enface_row_repeat(shape, volume.spacing_mm)
    fill = _export_fill(ev, entry, volume.data) if ev.map_path(entry, "geometry").is_file() else None
    shown = map_legend(ev)
    contours = _write_page_images(folder / entry.safe_id, volume.data, anomaly, retina, fill, labels,
                                  label_values, legend, scale, layout, row_repeat, shown.ramp)
    regions: list[Region] = []
    n_regions = 0
    if voxel_threshold is not None:
        regions, n_regions = flagged_regions(anomaly, voxel_threshold, volume.affine, retina,
                                             TOP_REGIONS, MIN_REGION_VOXELS)
    ranked, viewer = _bscan_view(ev, entry, shape[0], layout)
    volume_threshold = ev.threshold("volume")
    return VolumePage(
        entry=entry, rank=rank, n_volumes=len(ev.volumes), score=fmt_score(entry.score),
        flagged=None if volume_threshold is None else entry.score > volume_threshold,
        volume_threshold=None if volume_threshold is None else fmt_score(volume_threshold),
        shape=shape, spacing=tuple(round(s, 4) for s in volume.spacing_mm),
        patches=_patch_summary(ev, entry),
        images={"bscans": f"{entry.safe_id}/bscans.jpg", "heat": f"{entry.safe_id}/heat.png",
                "enface": f"{entry.safe_id}/enface.png",
                "contours": f"{entry.safe_id}/contours.png" if contours else None},
        layout=layout, enface_rows=row_repeat, legend=legend, map=shown, scale=scale,
        scale_labels=(fmt_score(scale.lo), fmt_score(scale.hi)), regions=regions,
        n_regions=n_regions, min_region_voxels=MIN_REGION_VOXELS,
        voxel_threshold=None if voxel_threshold is None else fmt_score(voxel_threshold),
        ranked_bscans=ranked, has_fill=fill is not None and bool(fill.any()), viewer=viewer,
    )


def _write_page_images(folder: Path, data: np.ndarray, anomaly: np.ndarray, retina: np.ndarray | None,
                       fill: np.ndarray | None, labels: np.ndarray | None, label_values: Any,
                       legend: list[Any], scale: Any, layout: images.SpriteLayout, row_repeat: int,
                       ramp: Any) -> bool:
    """The page's B-scan sprite, heat map, en-face view and (with labels) contours; True when
    contours were drawn."""
    inside = np.where(retina, anomaly, 0) if retina is not None else anomaly
    heat = images.heat_indices(inside, scale.lo, scale.hi)
    # en-face: only what exceeds the threshold, or every column would glow with residual noise
    heat_top = images.heat_indices(inside.max(axis=1), scale.threshold or scale.lo, scale.hi)
    folder.mkdir(parents=True, exist_ok=True)
    contours = images.contour_indices(labels, label_values) if labels is not None else None
    grey = images.to_uint8(data)
    if fill is not None:
        grey[fill] = FILL_GREY
    write_images(folder, grey, heat, heat_top, contours, [e.colour for e in legend], layout,
                 row_repeat, ramp)
    return contours is not None


def _bscan_view(ev: Evaluation, entry: VolumeEntry, n_bscans: int, layout: images.SpriteLayout
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The B-scans ranked by score, and the viewer's data (scores, flags, QC per B-scan)."""
    bscan_scores = ev.bscan_scores.get(entry.volume_id, np.zeros(0))
    bscan_scores = np.concatenate([bscan_scores, np.full(max(0, n_bscans - len(bscan_scores)),
                                                         np.nan)])[:n_bscans]
    bscan_threshold = ev.threshold("bscan")
    ranked = _bscan_ranking(bscan_scores, bscan_threshold)
    qc = ev.qc_problems(entry.volume_id, n_bscans)
    for item in ranked:
        item["qc"] = qc[item["index"]]
    viewer = {
        "sprite": layout.to_json(),
        "scores": [fmt_score(s) for s in bscan_scores],
        "flagged": [bool(bscan_threshold is not None and s > bscan_threshold) for s in bscan_scores],
        "qc": qc,
        "start": ranked[0]["index"] if ranked else 0,
    }
    return ranked, viewer
