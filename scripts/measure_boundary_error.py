"""ILM / BM error of octanogan's boundary detection against the phantom's true surfaces.

    .venv/bin/python scripts/measure_boundary_error.py [--seeds 3] [--shape 49 496 512]
                                                       [--artefacts none|realistic]

Prints, per volume and pooled, the mean and 95th percentile absolute error in rows, the share of
B-scans whose median ILM or BM error exceeds 10 rows (scaled to the depth: 10 rows at 496), and
the time ``preprocess_volume`` takes (one process; numpy/scipy threads as the environment allows).
With ``--artefacts realistic`` the phantoms carry real-world artefacts (see docs/phantom.md); columns
where the true surface is NaN (optic disc without BM, padding) or lies on fill/padding pixels are
left out of the errors, as are columns where the detector gives no finite row (counted as
"missed"). The detector is called as ``preprocess_volume(data, config)`` with the default config.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from octanogan.phantom import ArtefactConfig, generate_volume
from octanogan.preprocess import PreprocessConfig, preprocess_volume


def truth_usable(truth: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """``[B, W]`` columns whose true row is a number and falls on an image (not fill) pixel."""
    finite = np.isfinite(truth)
    rows = np.clip(np.rint(np.where(finite, truth, 0)), 0, invalid.shape[1] - 1).astype(np.intp)
    on_fill = np.take_along_axis(invalid, rows[:, None, :], axis=1)[:, 0, :]
    return finite & ~on_fill


def errors(found: np.ndarray, truth: np.ndarray, invalid: np.ndarray) -> tuple[np.ndarray, int]:
    """``[B, W]`` absolute errors, NaN where not measured; and how many usable columns the detector missed."""
    found = np.asarray(found, np.float64)
    usable = truth_usable(truth, invalid)
    measured = usable & np.isfinite(found)
    error = np.where(measured, np.abs(found - np.where(usable, truth, 0)), np.nan)
    return error, int((usable & ~np.isfinite(found)).sum())


def summarise(error: np.ndarray) -> tuple[float, float]:
    values = error[np.isfinite(error)]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(np.percentile(values, 95))


def failed_bscans(ilm_error: np.ndarray, bm_error: np.ndarray, threshold: float) -> np.ndarray:
    """``[B]`` B-scans whose median ILM or BM error exceeds ``threshold`` rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a B-scan with nothing measured: all NaN
        ilm, bm = np.nanmedian(ilm_error, axis=1), np.nanmedian(bm_error, axis=1)
    return (np.nan_to_num(ilm, nan=0.0) > threshold) | (np.nan_to_num(bm, nan=0.0) > threshold)


def applied(summary: dict) -> str:
    """Short names of the artefacts a volume got, from ``PhantomVolume.artefacts``."""
    if not summary:
        return "-"
    names = {"padding": "pad", "fill_wedges": "fill", "tilt_rows": "tilt", "curvature_rows": "bowl",
             "vignetting": "vignette", "vessel_shadows": "shadows", "low_snr_bscans": "low-SNR",
             "optic_disc": "disc"}
    return ", ".join(short for key, short in names.items() if summary.get(key)) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="volumes per kind (healthy/diseased)")
    parser.add_argument("--shape", type=int, nargs=3, default=(49, 496, 512))
    parser.add_argument("--artefacts", choices=("none", "realistic"), default="none",
                        help="phantom artefacts (realistic: sizes, fill, tilt, noise, disc, ...)")
    args = parser.parse_args()
    artefacts = ArtefactConfig.named(args.artefacts)

    print(f"artefacts: {args.artefacts}, shape {tuple(args.shape)}, {args.seeds} seeds per kind")
    print("| volume | size | artefacts | ILM mean | ILM p95 | BM mean | BM p95 | failed B-scans | missed "
          "| seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    pooled: dict[str, dict[str, list]] = {}
    for diseased in (False, True):
        kind = "diseased" if diseased else "healthy"
        pooled[kind] = {"ilm": [], "bm": [], "failed": [], "missed": 0}
        for seed in range(args.seeds):
            phantom = generate_volume(shape=tuple(args.shape), seed=seed, diseased=diseased,
                                      artefacts=artefacts)
            start = time.perf_counter()
            result = preprocess_volume(phantom.image, PreprocessConfig())
            seconds = time.perf_counter() - start
            ilm_error, ilm_missed = errors(result.ilm, phantom.ilm, phantom.invalid)
            bm_error, bm_missed = errors(result.bm, phantom.bm, phantom.invalid)
            depth = phantom.image.shape[1]
            failed = failed_bscans(ilm_error, bm_error, 10.0 * depth / 496)
            pooled[kind]["ilm"].append(ilm_error[np.isfinite(ilm_error)])
            pooled[kind]["bm"].append(bm_error[np.isfinite(bm_error)])
            pooled[kind]["failed"].append(failed)
            pooled[kind]["missed"] += ilm_missed + bm_missed
            ilm_mean, ilm_p95 = summarise(ilm_error)
            bm_mean, bm_p95 = summarise(bm_error)
            size = f"{depth}x{phantom.image.shape[2]}"
            print(f"| {kind} seed {seed} | {size} | {applied(phantom.artefacts)} | {ilm_mean:.2f} | "
                  f"{ilm_p95:.2f} | {bm_mean:.2f} | {bm_p95:.2f} | {failed.mean():.0%} | "
                  f"{ilm_missed + bm_missed} | {seconds:.2f} |")
    for kind, found in pooled.items():
        ilm_mean, ilm_p95 = summarise(np.concatenate(found["ilm"]))
        bm_mean, bm_p95 = summarise(np.concatenate(found["bm"]))
        failed = np.concatenate(found["failed"]).mean()
        print(f"| **{kind}, all** | | | {ilm_mean:.2f} | {ilm_p95:.2f} | {bm_mean:.2f} | {bm_p95:.2f} | "
              f"{failed:.0%} | {found['missed']} | |")


if __name__ == "__main__":
    main()
