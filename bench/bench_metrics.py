"""Benchmark: scoring saved predictions with every protocol, whole process, as a user runs it.

    .venv/bin/python bench/bench_metrics.py [--maps 48] [--size 512] [--classes 150] [--workers 2] [--repeat 5]

Writes a synthetic dataset (piecewise-constant scenes with ~20 of the classes present and many small
objects; predictions = the ground truth with shifted boundaries, dropped and spurious blobs), then
times `zeg-eval run` in a fresh process for each protocol and prints maps/s, peak memory (max RSS over
the process and its workers) and the speed ratio against beyond-iou's evaluator on the same kind of
maps (25.7 s for 48 maps of 512x512 with 150 classes, measured on this 2-core machine; see the issue).
With --maps N and --maps 4N the peak memory shows whether memory stays flat in the number of images.
Each protocol runs --repeat times into a fresh folder; the median time is shown (one run of about a
second on a shared 2-core machine varies by +-5%), with the fastest and slowest.
"""
from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

BEYOND_IOU_SECONDS_PER_48 = 25.7


def synthetic_scene(rng, size, num_classes, present=20):
    classes = rng.choice(num_classes, present, replace=False)
    # stuff: a coarse random field of a few classes, upsampled (blocky regions with long boundaries)
    coarse = rng.choice(classes[:6], (8, 8))
    gt = cv2.resize(coarse.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(np.int32)
    # things: ellipses of every size, many small
    for _ in range(60):
        c = int(rng.choice(classes[6:]))
        r = int(rng.choice([2, 4, 8, 16, 40]))
        x, y = rng.integers(0, size, 2)
        cv2.ellipse(gt, (int(x), int(y)), (r, max(1, int(r * rng.uniform(0.5, 1.5)))), float(rng.uniform(0, 180)), 0, 360, c, -1)
    gt[rng.random(gt.shape) < 0.002] = 255
    pred = gt.copy()
    pred[pred == 255] = classes[0]
    pred = cv2.dilate(pred.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.int32)  # shifted boundaries
    for _ in range(15):  # spurious blobs
        x, y = rng.integers(0, size, 2)
        cv2.circle(pred, (int(x), int(y)), int(rng.integers(2, 12)), int(rng.choice(classes)), -1)
    return gt, pred


def write_data(root: Path, n: int, size: int, num_classes: int) -> None:
    rng = np.random.default_rng(0)
    (root / "data" / "labels").mkdir(parents=True)
    (root / "pred").mkdir()
    for i in range(n):
        gt, pred = synthetic_scene(rng, size, num_classes)
        cv2.imwrite(str(root / "data" / "labels" / f"{i:05d}.png"), gt.astype(np.uint8))
        cv2.imwrite(str(root / "pred" / f"{i:05d}.png"), pred.astype(np.uint8))
    names = [f"class{i}" for i in range(num_classes)]
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({"classes": names, "unseen": names[-15:]}))


def time_run(protocol: Path, root: Path, workers: int, attempt: int = 0) -> tuple[float, float]:
    out = root / f"run-{protocol.stem}-{attempt}"
    # A fresh process per protocol; it reports the max RSS of itself and of its metric workers.
    wrapper = ("import resource, sys; from harness.cli import main; rc = main(sys.argv[1:]); "
               "usage = resource.getrusage; print('PEAK_KIB', max(usage(resource.RUSAGE_SELF).ru_maxrss, "
               "usage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(rc)")
    cmd = [sys.executable, "-c", wrapper, "run", str(protocol), "--data", str(root / "data"),
           "--predictions", f"model={root / 'pred'}", "--out", str(out), "--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kib = int(proc.stdout.split("PEAK_KIB")[1].split()[0])
    return seconds, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="runs per protocol (median shown)")
    parser.add_argument("--protocols", nargs="*", default=["small_targets", "occlusion", "boundary", "all"])
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    # A normal environment caches the package's bytecode at the first run; where
    # PYTHONDONTWRITEBYTECODE is set (as on the machines this was measured on) every timed run
    # would compile harness/ again (~30 ms), so compile it once here.
    compileall.compile_dir(repo / "harness", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.maps, args.size, args.classes)
        print(f"{args.maps} maps {args.size}x{args.size}, {args.classes} classes, {args.workers} workers")
        print(f"{'protocol':<14} {'seconds':>8} {'min-max':>11} {'maps/s':>8} {'peak MiB':>9} {'x beyond-iou':>13}")
        for name in args.protocols:
            runs = [time_run(repo / "protocols" / f"{name}.yaml", root, args.workers, i) for i in range(args.repeat)]
            times = sorted(seconds for seconds, _ in runs)
            seconds = statistics.median(times)
            peak = max(peak for _, peak in runs)
            reference = BEYOND_IOU_SECONDS_PER_48 * args.maps / 48 * (args.size / 512) ** 2
            spread = f"{times[0]:.2f}-{times[-1]:.2f}"
            print(f"{name:<14} {seconds:8.2f} {spread:>11} {args.maps / seconds:8.1f} {peak:9.0f} "
                  f"{reference / seconds:13.1f}")


if __name__ == "__main__":
    main()
