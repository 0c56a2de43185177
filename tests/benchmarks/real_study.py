"""The real-data yardstick behind ``bench_real.py anomaly`` (in-process; not a test).

Train on ``kermany_crops/normal`` (every 5th crop held back as healthy validation), then measure on
data never trained on:

- ``duke_dme_dev``: fluid against the expert masks, per voxel (inside the retina mask), patch
  (positive: holds fluid) and B-scan (positive: any fluid), AUROC and AP;
- ``amd_drusen_dev``: drusen per voxel (AUROC, AP);
- ``kermany_dev``: NORMAL against CNV, DME, DRUSEN and pooled, per image (AUROC with a bootstrap over
  patients);
- domain robustness: median healthy patch score of kermany_dev NORMAL and of Duke patches without
  fluid, over that of the held-back crops.

Every candidate map is computed from one inversion per patch, so the map levers are compared on the
same trained model; the trivial baselines (direction fixed before any number was seen) sit beside
them: voxel darkness inside the retina (fluid), RPE elevation above BM (drusen), maximum retina
thickness and darkness of the retina (whole images).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
KERMANY_DISEASES = ("CNV", "DME", "DRUSEN")
VOXEL_STEP = 3  # every 3rd retina voxel enters the voxel metrics (millions otherwise; same ranking)


def natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=natural_key)


@dataclass
class Item:
    """One real B-scan of the yardstick, preprocessed, with its truth in flattened geometry."""

    group: str        # crop_train, crop_val, kermany, duke, amd
    name: str
    path: Path
    diagnosis: str = ""
    patient: str = ""
    prep: Any = None
    truth_flat: np.ndarray | None = None  # bool [1, H, W] lesion mask, flattened
    maps: dict[str, np.ndarray] = field(default_factory=dict)    # flattened [1, H, W]
    patch_scores: dict[str, np.ndarray] = field(default_factory=dict)
    centres: np.ndarray | None = None


def _mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as handle:
        handle = handle.convert("L")
        if handle.size != (shape[1], shape[0]):
            handle = handle.resize((shape[1], shape[0]), Image.NEAREST)
        return np.asarray(handle) > 0


def list_items(val_every: int = 5) -> list[Item]:
    """Every B-scan of the yardstick, not yet read."""
    items = []
    for i, path in enumerate(image_files(DATA / "kermany_crops" / "normal")):
        group = "crop_val" if i % val_every == val_every - 1 else "crop_train"
        items.append(Item(group, f"crop_{path.stem}", path, "NORMAL"))
    with open(DATA / "kermany_dev" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            path = DATA / "kermany_dev" / row["image"]
            patient = re.findall(r"-(\d+)-", path.name)
            items.append(Item("kermany", path.stem, path, row["diagnosis"].upper(),
                              patient[0] if patient else path.stem))
    with open(DATA / "duke_dme_dev" / "index.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            items.append(Item("duke", row["image_id"], DATA / "duke_dme_dev" / row["path"], "DME",
                              row["subject"]))
    for path in image_files(DATA / "amd_drusen_dev" / "images"):
        items.append(Item("amd", path.stem, path, "DRUSEN", path.stem))
    return items


def preprocess_items(items: list[Item], config: Any) -> list[tuple[Item, str]]:
    """Read and preprocess every item in place; returns the refused ones with the reason."""
    from octanogan.io import read_volume
    from octanogan.preprocess import preprocess_volume
    from octanogan.preprocess.flatten import flatten

    refused = []
    for item in items:
        try:
            volume = read_volume(item.path)
            item.prep = preprocess_volume(volume.data, config, volume.spacing_mm)
        except Exception as exc:  # noqa: BLE001 - a refusal is a result here
            refused.append((item, f"{type(exc).__name__}: {exc}"))
            continue
        truth = None
        if item.group == "duke":
            truth = _mask(DATA / "duke_dme_dev" / "masks" / item.path.name, volume.shape[1:])
        elif item.group == "amd":
            truth = _mask(DATA / "amd_drusen_dev" / "masks" / item.path.name, volume.shape[1:])
        if truth is not None:
            item.truth_flat = flatten(truth[None], item.prep.shifts, fill=False)
    for item, _ in refused:
        items.remove(item)
    return refused


def write_manifest(items: list[Item], path: Path) -> Path:
    """A manifest of the training and validation crops (for ``extract`` and ``train``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["volume_id", "path", "label", "split"])
        for item in items:
            if item.group.startswith("crop_"):
                writer.writerow([item.name, str(item.path), "healthy", item.group[5:]])
    return path


# --- metrics -------------------------------------------------------------------------------------


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(negative) == 0 or len(positive) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(negative)), np.ones(len(positive))],
                               np.r_[negative, positive]))


def average_precision(negative: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    if len(negative) == 0 or len(positive) == 0:
        return float("nan")
    return float(average_precision_score(np.r_[np.zeros(len(negative)), np.ones(len(positive))],
                                         np.r_[negative, positive]))


def patient_bootstrap(scores: dict[str, np.ndarray], patients: dict[str, np.ndarray], healthy: str,
                      diseased: list[str], n: int, seed: int) -> tuple[float, float, float]:
    """AUROC of ``healthy`` against ``diseased`` classes, CI by resampling patients in each class."""
    neg, pos = scores[healthy], np.concatenate([scores[d] for d in diseased])
    value = auroc(neg, pos)
    rng = np.random.default_rng(seed)

    def resample(name: str) -> np.ndarray:
        ids = np.unique(patients[name])
        picked = rng.choice(ids, len(ids))
        return np.concatenate([scores[name][patients[name] == p] for p in picked])

    draws = [auroc(resample(healthy), np.concatenate([resample(d) for d in diseased])) for _ in range(n)]
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return value, float(low), float(high)


# --- maps ----------------------------------------------------------------------------------------


def smooth_covered(values: np.ndarray, covered: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing within each B-scan, normalised by the covered area (as scoring does)."""
    from scipy import ndimage

    if sigma <= 0:
        return values
    blur = (0.0, sigma, sigma)
    total = ndimage.gaussian_filter(values * covered, blur)
    norm = ndimage.gaussian_filter(covered.astype(np.float32), blur)
    out = np.zeros_like(values)
    np.divide(total, norm, out=out, where=(covered > 0) & (norm > 1e-6))
    return out


def greedy_coreset(features: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of a k-center greedy coreset (PatchCore's subsampling) of ``features``."""
    if len(features) <= size:
        return np.arange(len(features))
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(features)))]
    distance = np.linalg.norm(features - features[chosen[0]], axis=1)
    for _ in range(size - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(features - features[chosen[-1]], axis=1))
    return np.asarray(chosen)


def knn_distance(query: np.ndarray, bank: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean Euclidean distance of each query row to its k nearest rows of ``bank``."""
    import torch

    d = torch.cdist(torch.from_numpy(query), torch.from_numpy(bank))
    return d.topk(min(k, len(bank)), largest=False).values.mean(dim=1).numpy()


def invert_patches(run: Any, patches: np.ndarray, mode: str = "encoder", hybrid_steps: int = 20,
                   batch: int = 256) -> dict[str, np.ndarray]:
    """octanogan's own inversion of patches ``[n, P, P]``: G(z), z, the paper's score A and its
    feature part, and the discriminator's pooled features of x (for the memory bank)."""
    import torch

    from octanogan.scoring.config import InversionConfig
    from octanogan.scoring.inversion import LatentInverter

    inverter = LatentInverter(run.generator, run.discriminator, run.encoder, run.latent_dim,
                              InversionConfig(mode=mode, hybrid_steps=hybrid_steps))
    out: dict[str, list[np.ndarray]] = {"fake": [], "z": [], "feature": [], "score": [], "dfeat": []}
    for begin in range(0, len(patches), batch):
        x = torch.from_numpy(patches[begin:begin + batch])[:, None]
        result = inverter.invert(x)
        out["fake"].append((x[:, 0] - result.difference).numpy())
        out["z"].append(result.z.numpy())
        out["feature"].append(result.feature.numpy())
        out["score"].append(result.score.numpy())
        with torch.no_grad():
            out["dfeat"].append(run.discriminator.features(x).mean(dim=(2, 3)).numpy())
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def memory_bank(run: Any, store_dir: Path, size: int, seed: int) -> dict[str, np.ndarray]:
    """Coreset of the training patches' encoder latents and discriminator features."""
    from octanogan.patches.store import PatchStore

    store = PatchStore(store_dir)
    every = max(1, len(store) // 20000)
    patches = store.batch(np.arange(0, len(store), every)).astype(np.float32)
    inverted = invert_patches(run, patches)
    return {name: inverted[name][greedy_coreset(inverted[name], size, seed)] for name in ("z", "dfeat")}


def base_maps(item: Item, run: Any, patch_size: int, stride: int, sigma: float,
              bank: dict[str, np.ndarray], mode: str = "encoder") -> None:
    """Stitched maps of one item, flattened geometry: everything the levers are built from."""
    from octanogan.patches.grid import cut_patches, patch_centres
    from octanogan.scoring.stitch import Stitcher

    prep = item.prep
    centres = patch_centres(prep, patch_size, stride, 0.05)
    item.centres = centres
    x = cut_patches(prep.flat, centres, patch_size)
    inv = invert_patches(run, x, mode)
    item.patch_scores["paper_score"] = inv["score"]
    shape = prep.flat.shape
    stitched = {}
    per_patch = {"feature": inv["feature"], "knn_latent": knn_distance(inv["z"], bank["z"]),
                 "knn_dfeat": knn_distance(inv["dfeat"], bank["dfeat"])}
    values = {"abs": np.abs(x - inv["fake"]), "signed": x - inv["fake"],
              **{k: np.broadcast_to(v[:, None, None], x.shape) for k, v in per_patch.items()}}
    for name, patches in values.items():
        stitcher = Stitcher(shape, patch_size)
        stitcher.add(np.ascontiguousarray(patches, dtype=np.float32), centres)
        stitched[name] = stitcher.result()
    covered = stitcher.weight > 0
    maps = {"abs_raw": smooth_covered(stitched["abs"], covered, sigma),
            "signed": smooth_covered(stitched["signed"], covered, sigma),
            "signed_s8": smooth_covered(stitched["signed"], covered, 2 * sigma),
            "feature": stitched["feature"], "knn_latent": stitched["knn_latent"],
            "knn_dfeat": stitched["knn_dfeat"],
            "intensity": smooth_covered(prep.flat, np.ones_like(covered), sigma),
            "darkness_raw": -prep.flat}
    maps["rpe_elevation"] = rpe_elevation_map(prep, patch_size)
    item.maps = maps


def rpe_elevation_map(prep: Any, patch_size: int) -> np.ndarray:
    """Baseline for drusen: per column, how far the brightest row of the outer retina lies above
    BM (flattened rows); every voxel of the column gets its column's value."""
    from scipy import ndimage

    flat = ndimage.gaussian_filter(prep.flat, (0, 1.0, 3.0))
    top = max(0, prep.bm_row - patch_size)
    window = flat[:, top:prep.bm_row + 1, :]
    elevation = (prep.bm_row - top) - np.argmax(window, axis=1)  # rows above BM
    return np.broadcast_to(elevation[:, None, :].astype(np.float32), prep.flat.shape).copy()


REL_BINS = 40


def depth_bins(item: Item, relative: bool, max_depth: int) -> np.ndarray:
    """Per voxel (flattened ``[1, H, W]``): rows above BM, or the relative depth between BM (0)
    and ILM (REL_BINS - 1) in bins."""
    prep = item.prep
    above = (prep.bm_row - np.arange(prep.flat.shape[1]))[None, :, None].astype(np.float32)
    if not relative:
        return np.clip(np.broadcast_to(above, prep.flat.shape), 0, max_depth).astype(np.int64)
    thickness = np.maximum(prep.bm_row - prep.ilm_flat, 1.0)[:, None, :]
    rel = np.floor(above / thickness * REL_BINS)
    return np.clip(rel, 0, REL_BINS - 1).astype(np.int64)


def normative_stats(items: list[Item], name: str, relative: bool, max_depth: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of map ``name`` per depth over healthy retina."""
    size = REL_BINS if relative else max_depth + 1
    sums, squares, counts = np.zeros(size), np.zeros(size), np.zeros(size)
    for item in items:
        mask = item.prep.retina_mask_flat()
        depth = depth_bins(item, relative, max_depth)[mask]
        values = item.maps[name][mask].astype(np.float64)
        np.add.at(sums, depth, values)
        np.add.at(squares, depth, values ** 2)
        np.add.at(counts, depth, 1)
    filled = counts > 50
    mean = np.where(filled, sums / np.maximum(counts, 1), np.nan)
    var = np.where(filled, squares / np.maximum(counts, 1) - mean ** 2, np.nan)
    index = np.arange(size)
    mean = np.interp(index, index[filled], mean[filled])
    std = np.sqrt(np.interp(index, index[filled], np.maximum(var[filled], 0)))
    return mean, np.maximum(std, 1e-3 + 0.05 * np.median(std[filled]))


def normative_z(item: Item, name: str, stats: tuple[np.ndarray, np.ndarray], relative: bool,
                max_depth: int) -> np.ndarray:
    mean, std = stats
    depth = depth_bins(item, relative, max_depth)
    return (item.maps[name] - mean[depth]) / std[depth]


def derived_maps(items: list[Item], max_depth: int) -> None:
    """The levers that need healthy statistics (from the validation crops) or a sign."""
    healthy = [i for i in items if i.group == "crop_val"]
    keys = [(name, rel) for name in ("signed", "abs_raw", "intensity", "signed_s8") for rel in (False, True)]
    stats = {key: normative_stats(healthy, key[0], key[1], max_depth) for key in keys}
    knn_scale = max(1e-6, float(np.median(np.concatenate(
        [h.maps["knn_latent"][h.prep.retina_mask_flat()] for h in healthy]))))
    for item in items:
        maps = item.maps
        z = {key: normative_z(item, key[0], s, key[1], max_depth) for key, s in stats.items()}
        maps["abs_signed"] = np.abs(maps["signed"])
        maps["hypo_signed"] = -maps["signed"]
        maps["hyper_signed"] = maps["signed"]
        maps["abs_z"] = z["abs_raw", False]
        maps["abs_zrel"] = z["abs_raw", True]
        for suffix, rel in (("", False), ("rel", True)):
            maps[f"z{suffix}_signed_abs"] = np.abs(z["signed", rel])
            maps[f"z{suffix}_signed_hypo"] = -z["signed", rel]
            maps[f"z{suffix}_signed_hyper"] = z["signed", rel]
            maps[f"z{suffix}_signed8_hypo"] = -z["signed_s8", rel]
            maps[f"z{suffix}_intensity_hypo"] = -z["intensity", rel]
            maps[f"z{suffix}_intensity_abs"] = np.abs(z["intensity", rel])
        maps["combo_hypo_knn"] = np.maximum(-z["signed", False], 0) + maps["knn_latent"] / knn_scale


def product_maps(items: list[Item], run: Any, preprocess: Any, config: Any) -> None:
    """octanogan's scorer on every item: its anomaly map (flattened here) and patch scores A."""
    from octanogan.io import read_volume
    from octanogan.preprocess.flatten import flatten
    from octanogan.scoring.inversion import LatentInverter
    from octanogan.scoring.score import VolumeScorer

    inverter = LatentInverter(run.generator, run.discriminator, run.encoder, run.latent_dim,
                              config.inversion)
    scorer = VolumeScorer(inverter, run.patch_size, preprocess, config, "cpu")
    for item in items:
        result, _ = scorer.score(read_volume(item.path), item.name)
        centres = result.patches[["bscan", "y", "x"]].to_numpy()
        if not np.array_equal(centres, item.centres):
            raise ValueError("the study's patch grid differs from the scorer's: use its stride")
        item.maps["product"] = flatten(result.anomaly_map, item.prep.shifts, fill=0.0)
        item.patch_scores["product"] = result.patches["score"].to_numpy(np.float64)


# --- evaluation ----------------------------------------------------------------------------------

#: Higher is more abnormal for every map; baselines are marked and their direction is fixed.
BASELINES = {"darkness_raw": "fluid: voxel darkness inside the retina",
             "rpe_elevation": "drusen: RPE elevation above BM"}


def patch_scores(item: Item, name: str, patch_size: int) -> np.ndarray:
    from octanogan.patches.grid import cut_patches

    if name in item.patch_scores:
        return item.patch_scores[name]
    return cut_patches(item.maps[name], item.centres, patch_size).mean(axis=(1, 2))


def aggregate(scores: np.ndarray, how: str, threshold: float | None = None) -> float:
    if how == "mean":
        return float(scores.mean())
    if how == "max":
        return float(scores.max())
    if how == "area":
        return float((scores > threshold).mean())
    k = max(1, int(round(0.1 * len(scores))))
    return float(np.sort(scores)[-k:].mean())


def whole_image_baselines(item: Item) -> dict[str, float]:
    """Trivial whole-image scores, direction fixed: thicker retina, darker retina = diseased."""
    prep = item.prep
    valid = ~(prep.invalid.mean(axis=1) >= 0.5)
    thickness = (prep.bm - prep.ilm)[valid]
    retina = prep.retina_mask
    return {"max_thickness": float(np.percentile(thickness, 95)) if thickness.size else 0.0,
            "retina_darkness": -float(prep.image[retina].mean()) if retina.any() else 0.0}


def evaluate_map(items: list[Item], name: str, patch_size: int, n_bootstrap: int = 200,
                 seed: int = 0) -> dict[str, Any]:
    """Every yardstick number for one map."""
    out: dict[str, Any] = {}
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    # voxels (inside the retina mask, flattened geometry)
    for group, key in (("duke", "fluid"), ("amd", "drusen")):
        if name not in items[0].maps:
            break
        neg, pos = [], []
        for item in by_group.get(group, []):
            mask = item.prep.retina_mask_flat()
            values = item.maps[name][mask][::VOXEL_STEP]
            truth = item.truth_flat[mask][::VOXEL_STEP]
            neg.append(values[~truth])
            pos.append(values[truth])
        if neg:
            neg_all, pos_all = np.concatenate(neg), np.concatenate(pos)
            out[f"{key}_voxel_auroc"] = auroc(neg_all, pos_all)
            out[f"{key}_voxel_ap"] = average_precision(neg_all, pos_all)
    # patches and B-scans of Duke
    from octanogan.patches.grid import cut_patches

    healthy_val = np.concatenate([patch_scores(i, name, patch_size) for i in by_group["crop_val"]])
    threshold = float(np.percentile(healthy_val, 99))
    p_neg, p_pos, b_neg, b_pos, duke_clean = [], [], [], [], []
    for item in by_group.get("duke", []):
        scores = patch_scores(item, name, patch_size)
        has = cut_patches(item.truth_flat.astype(np.float32), item.centres, patch_size).max(axis=(1, 2)) > 0
        p_neg.append(scores[~has])
        p_pos.append(scores[has])
        duke_clean.append(scores[~has])
        (b_pos if has.any() else b_neg).append(aggregate(scores, "top"))
    if p_neg:
        out["fluid_patch_auroc"] = auroc(np.concatenate(p_neg), np.concatenate(p_pos))
        out["fluid_patch_ap"] = average_precision(np.concatenate(p_neg), np.concatenate(p_pos))
        out["fluid_bscan_auroc"] = auroc(np.asarray(b_neg), np.asarray(b_pos))
    # whole images of kermany_dev
    kermany = by_group.get("kermany", [])
    per_image = {i.name: patch_scores(i, name, patch_size) for i in kermany}
    for how in ("top", "mean", "max", "area"):
        scores = {d: np.asarray([aggregate(per_image[i.name], how, threshold) for i in kermany
                                 if i.diagnosis == d]) for d in ("NORMAL", *KERMANY_DISEASES)}
        patients = {d: np.asarray([i.patient for i in kermany if i.diagnosis == d])
                    for d in ("NORMAL", *KERMANY_DISEASES)}
        for disease in KERMANY_DISEASES:
            out[f"image_{how}_{disease}"] = auroc(scores["NORMAL"], scores[disease])
        diseased = np.concatenate([scores[d] for d in KERMANY_DISEASES])
        out[f"image_{how}_pooled"] = (
            patient_bootstrap(scores, patients, "NORMAL", list(KERMANY_DISEASES), n_bootstrap, seed)
            if how == "top" else auroc(scores["NORMAL"], diseased))
    # domain robustness
    normal = [per_image[i.name] for i in kermany if i.diagnosis == "NORMAL"]
    base = float(np.median(healthy_val))
    out["healthy_median_val"] = base
    for key, patches in (("ratio_kermany_normal", normal), ("ratio_duke_no_fluid", duke_clean)):
        if patches and base:
            out[key] = float(np.median(np.concatenate(patches))) / base
    return out


def evaluate_image_baselines(items: list[Item], n_bootstrap: int, seed: int) -> dict[str, Any]:
    kermany = [i for i in items if i.group == "kermany"]
    out = {}
    for key in ("max_thickness", "retina_darkness"):
        scores = {d: np.asarray([whole_image_baselines(i)[key] for i in kermany if i.diagnosis == d])
                  for d in ("NORMAL", *KERMANY_DISEASES)}
        patients = {d: np.asarray([i.patient for i in kermany if i.diagnosis == d])
                    for d in ("NORMAL", *KERMANY_DISEASES)}
        for disease in KERMANY_DISEASES:
            out[f"{key}_{disease}"] = auroc(scores["NORMAL"], scores[disease])
        out[f"{key}_pooled"] = patient_bootstrap(scores, patients, "NORMAL", list(KERMANY_DISEASES),
                                                 n_bootstrap, seed)
    return out


# --- one protocol run ----------------------------------------------------------------------------

MAP_NAMES = ("abs_raw", "abs_signed", "hypo_signed", "hyper_signed", "abs_z", "abs_zrel",
             "z_signed_abs", "z_signed_hypo", "z_signed_hyper", "z_signed8_hypo",
             "zrel_signed_abs", "zrel_signed_hypo", "zrel_signed_hyper", "zrel_signed8_hypo",
             "feature", "knn_latent", "knn_dfeat", "combo_hypo_knn",
             "z_intensity_hypo", "z_intensity_abs", "zrel_intensity_hypo", "zrel_intensity_abs",
             "darkness_raw", "rpe_elevation", "paper_score")


def run_protocol(work: Path, seed: int, preprocess: Any, patch_size: int = 64, stride: int = 16,
                 score_stride: int = 16, sigma: float = 4.0, train_settings: dict[str, Any] | None = None,
                 bank_size: int = 2000, n_bootstrap: int = 200, maps: tuple[str, ...] = MAP_NAMES,
                 mode: str = "encoder", product: Any = None, log: Any = print) -> dict[str, Any]:
    """Extract (once per ``work``), train (once per seed), invert every test patch, measure.

    ``product`` (a ScoreConfig) adds the map and patch scores that octanogan's own scorer writes
    with those settings, as map "product" (its stride must equal ``score_stride``).
    """
    import time

    import torch

    from octanogan.outputs.run import is_finished
    from octanogan.patches.config import ExtractConfig
    from octanogan.patches.extract import extract_store
    from octanogan.patches.store import is_complete_store
    from octanogan.training import TrainConfig, load_run, train

    start = time.perf_counter()
    items = list_items()
    refused = preprocess_items(items, preprocess)
    log(f"{len(items)} B-scans preprocessed, {len(refused)} refused "
        f"({time.perf_counter() - start:.0f} s)")
    store = work / "store"
    if not is_complete_store(store):
        extract_store(write_manifest(items, work / "manifest.csv"), store,
                      ExtractConfig(patch_size=patch_size, stride=stride, preprocess=preprocess),
                      keep_going=True)
    run_dir = work / f"run_seed{seed}"
    settings = {"iterations": 1500, "encoder_iterations": 600, "batch_size": 64, "base_channels": 16,
                "latent_dim": 64, "flip": True, **(train_settings or {})}
    if not is_finished(run_dir):
        t0 = time.perf_counter()
        train(store, run_dir, TrainConfig(seed=seed, device="cpu", **settings), overwrite=True)
        log(f"seed {seed}: trained in {time.perf_counter() - t0:.0f} s")
    run = load_run(run_dir)
    torch.manual_seed(seed)
    bank = memory_bank(run, store, bank_size, seed)
    tested = [i for i in items if i.group != "crop_train"]
    t0 = time.perf_counter()
    for item in tested:
        base_maps(item, run, patch_size, score_stride, sigma, bank, mode)
    derived_maps(tested, max_depth=tested[0].prep.flat.shape[1])
    if product is not None:
        product_maps(tested, run, preprocess, product)
        maps = ("product", *maps)
    log(f"seed {seed}: maps of {len(tested)} B-scans in {time.perf_counter() - t0:.0f} s")
    results = {name: evaluate_map(tested, name, patch_size, n_bootstrap, seed) for name in maps}
    results["_image_baselines"] = evaluate_image_baselines(tested, n_bootstrap, seed)
    results["_refused"] = [[i.name, why] for i, why in refused]
    results["_seconds"] = time.perf_counter() - start
    return results


def main() -> None:
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(description="one protocol run of the real-data map study")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--encoder-iterations", type=int, default=600)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--sigma", type=float, default=4.0)
    parser.add_argument("--mode", default="encoder", choices=("encoder", "hybrid"))
    parser.add_argument("--preprocess", default="{}", help="PreprocessConfig overrides as JSON")
    parser.add_argument("--train", default="{}", help="TrainConfig overrides as JSON")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    from octanogan.preprocess import PreprocessConfig

    prep = PreprocessConfig(**json.loads(args.preprocess))
    train_settings = {"iterations": args.iterations, "encoder_iterations": args.encoder_iterations,
                      **json.loads(args.train)}
    args.work.mkdir(parents=True, exist_ok=True)
    results = run_protocol(args.work, args.seed, prep, args.patch_size, sigma=args.sigma,
                           train_settings=train_settings, mode=args.mode)
    print_summary(results)
    if args.out_json:
        args.out_json.write_text(json.dumps(results, indent=1, default=float) + "\n")


def print_summary(results: dict[str, Any]) -> None:
    columns = ("fluid_voxel_auroc", "fluid_patch_auroc", "fluid_bscan_auroc", "drusen_voxel_auroc",
               "image_top_pooled", "image_top_CNV", "image_top_DME", "image_top_DRUSEN",
               "ratio_kermany_normal", "ratio_duke_no_fluid")
    short = ("fluidV", "fluidP", "fluidB", "drusV", "imgPool", "CNV", "DME", "DRUS", "rKerm", "rDuke")
    print(f"{'map':<18}" + "".join(f"{s:>8}" for s in short))
    for name, row in results.items():
        if name.startswith("_"):
            continue
        cells = ""
        for column in columns:
            value = row.get(column, float("nan"))
            value = value[0] if isinstance(value, (tuple, list)) else value
            cells += f"{value:>8.3f}"
        print(f"{name:<18}{cells}")
    base = results.get("_image_baselines", {})
    for key in ("max_thickness", "retina_darkness"):
        pooled = base.get(f"{key}_pooled", (float("nan"),))[0]
        print(f"image baseline {key}: pooled {pooled:.3f}, "
              + ", ".join(f"{d} {base.get(f'{key}_{d}', float('nan')):.3f}" for d in KERMANY_DISEASES))


if __name__ == "__main__":
    main()
