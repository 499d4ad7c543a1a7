"""Benchmark: the boundary family's per-image counts (`boundary.image_class_counts`), one core.

    .venv/bin/python bench/bench_boundary.py [--maps 48] [--size 512] [--classes 150] [--no-legacy]

Generates the maps of bench/bench_metrics.py (its `synthetic_scene`, same seed, stored as 8-bit
PNGs there, so round-tripped through uint8 here), passes the classes of gt (non-ignored) and
prediction as the harness does, and prints the median and p90 milliseconds per map with OpenCV
single-threaded (the harness parallelises images over processes). Unless --no-legacy, also times
the previous implementation (the frozen copy in tests/test_metrics_boundary.py), checks that every
column is identical and prints the speed ratio.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_metrics import synthetic_scene  # noqa: E402

from harness.metrics import boundary  # noqa: E402

IGNORE = 255


def make_maps(n: int, size: int, num_classes: int):
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(n):
        gt, pred = synthetic_scene(rng, size, num_classes)
        gt = gt.astype(np.uint8).astype(np.int32)      # as written to and read from PNG
        pred = pred.astype(np.uint8).astype(np.int32)
        v = gt != IGNORE
        classes = np.unique(np.concatenate([gt[v], pred[v]])).astype(np.int64)
        maps.append((gt, pred, classes))
    return maps


def time_per_map(fn, maps, cfg):
    times, outs = [], []
    for gt, pred, classes in maps:
        start = time.perf_counter()
        outs.append(fn(gt, pred, classes, IGNORE, cfg))
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times), outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--no-legacy", action="store_true", help="do not time the previous implementation")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cfg = boundary.BoundaryConfig()
    maps = make_maps(args.maps, args.size, args.classes)
    present = np.mean([m[2].size for m in maps])
    print(f"{args.maps} maps {args.size}x{args.size}, {args.classes} classes ({present:.1f} per map), "
          f"1 OpenCV thread")
    time_per_map(boundary.image_class_counts, maps[:2], cfg)    # warm-up
    new, new_out = time_per_map(boundary.image_class_counts, maps, cfg)
    print(f"{'implementation':<10} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8}")
    print(f"{'current':<10} {np.median(new):10.1f} {np.percentile(new, 90):8.1f} {new.mean():8.1f}")
    if args.no_legacy:
        return
    spec = importlib.util.spec_from_file_location("_boundary_tests", REPO / "tests" / "test_metrics_boundary.py")
    tests = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tests
    spec.loader.exec_module(tests)
    old, old_out = time_per_map(tests.legacy_image_class_counts, maps, cfg)
    print(f"{'previous':<10} {np.median(old):10.1f} {np.percentile(old, 90):8.1f} {old.mean():8.1f}")
    same = all(np.array_equal(a[k], b[k]) for a, b in zip(new_out, old_out) for k in b)
    print(f"speed-up (median) {np.median(old) / np.median(new):.2f}x; identical counts: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
