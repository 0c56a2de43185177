"""ILM / BM error of octanogan's boundary detection against the phantom's true surfaces.

    .venv/bin/python scripts/measure_boundary_error.py [--seeds 3] [--shape 49 496 512]

Prints, per volume and pooled, the mean and 95th percentile absolute error in rows and the time
``preprocess_volume`` takes (one process; numpy/scipy threads as the environment allows).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from octanogan.phantom import generate_volume
from octanogan.preprocess import preprocess_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="volumes per kind (healthy/diseased)")
    parser.add_argument("--shape", type=int, nargs=3, default=(49, 496, 512))
    args = parser.parse_args()

    print("| volume | ILM mean | ILM p95 | BM mean | BM p95 | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    pooled: dict[str, dict[str, list[np.ndarray]]] = {}
    for diseased in (False, True):
        kind = "diseased" if diseased else "healthy"
        pooled[kind] = {"ilm": [], "bm": []}
        for seed in range(args.seeds):
            phantom = generate_volume(shape=tuple(args.shape), seed=seed, diseased=diseased)
            start = time.perf_counter()
            result = preprocess_volume(phantom.image)
            seconds = time.perf_counter() - start
            ilm_error = np.abs(result.ilm - phantom.ilm).ravel()
            bm_error = np.abs(result.bm - phantom.bm).ravel()
            pooled[kind]["ilm"].append(ilm_error)
            pooled[kind]["bm"].append(bm_error)
            print(f"| {kind} seed {seed} | {ilm_error.mean():.2f} | "
                  f"{np.percentile(ilm_error, 95):.2f} | {bm_error.mean():.2f} | "
                  f"{np.percentile(bm_error, 95):.2f} | {seconds:.2f} |")
    for kind, errors in pooled.items():
        ilm_error, bm_error = np.concatenate(errors["ilm"]), np.concatenate(errors["bm"])
        print(f"| **{kind}, all** | {ilm_error.mean():.2f} | {np.percentile(ilm_error, 95):.2f} | "
              f"{bm_error.mean():.2f} | {np.percentile(bm_error, 95):.2f} | |")


if __name__ == "__main__":
    main()
