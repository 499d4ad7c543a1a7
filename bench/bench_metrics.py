"""Benchmark: scoring saved predictions with every protocol, whole process, as a user runs it.

    .venv/bin/python bench/bench_metrics.py [--maps 48] [--size 512] [--classes 150] [--workers 2]
        [--repeat 5] [--protocols small_targets occlusion boundary all]
        [--against OTHER_CHECKOUT] [--beyond-iou BEYOND_IOU_CHECKOUT]

Writes a synthetic dataset (piecewise-constant scenes with ~20 of the classes present and many small
objects; predictions = the ground truth with shifted boundaries, dropped and spurious blobs), then
times `zeg-eval run` in a fresh process for each protocol and prints maps/s, peak memory (max RSS over
the process and its workers) and the speed ratio against beyond-iou's evaluator on the same kind of
maps. With --maps N and --maps 4N the peak memory shows whether memory stays flat in the number of
images. Each protocol runs --repeat times into a fresh folder; the median time is shown (one run of
about a second on a shared 2-core machine varies by +-5%), with the fastest and slowest.

--against DIR: a paired before/after comparison with another checkout of this repository, e.g.
    git worktree add /tmp/before <older commit>
    .venv/bin/python bench/bench_metrics.py --against /tmp/before
  Each protocol's timed runs alternate between this checkout and DIR (this, DIR, this, DIR, ...) on
  the same synthetic data, so machine noise hits both alike. Every run imports `harness` from its own
  checkout (cwd and PYTHONPATH set to the checkout root, so the editable install in the venv does not
  win; the run fails if harness.__file__ lies elsewhere) and uses that checkout's protocols/<name>.yaml.
  The column before/after is DIR's median / this checkout's median (> 1: this checkout is faster).

--beyond-iou DIR: a checkout of github.com/mxbh/beyond-iou (needs torch, mmengine, pandas, tqdm).
  Its Evaluator ('exact' boundaries, the defaults of its eval.py) runs once, in a fresh process, over
  its own loader on the same synthetic maps; the time of evaluate() is used (imports excluded) and
  the table says "measured now". Without it the column uses a recorded figure, 87.4 s for 48 maps of
  512x512 with 150 classes (measured 2026-12-04 on a loaded 2-core machine; 25.7 s and 49.7 s on
  other days), scaled linearly to --maps and --size, and says "recorded": compare with it only
  figures of the same day.
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

# (seconds, maps, size, classes, where from) of beyond-iou's evaluator, used without --beyond-iou
RECORDED_BEYOND_IOU = (87.4, 48, 512, 150, "measured 2026-12-04 on a loaded 2-core machine, beyond-iou bfd2d7c")

# A fresh process per run; it reports where harness came from and the max RSS of itself and of its
# metric workers.
HARNESS_WRAPPER = """
import resource, sys
import harness
print('MODULE_FILE', harness.__file__)
from harness.cli import main
rc = main(sys.argv[1:])
usage = resource.getrusage
print('PEAK_KIB', max(usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""

# beyond-iou's public API as its eval.py calls it; argv: pred_dir gt_dir num_classes
BEYOND_IOU_WRAPPER = """
import sys, time
import beyond_iou
print('MODULE_FILE', beyond_iou.__file__)
from beyond_iou import Evaluator, build_segmentation_loader
names = [f'class{i}' for i in range(int(sys.argv[3]))]
start = time.perf_counter()
evaluator = Evaluator(class_names=names, ignore_index=255, boundary_width=0.01,
                      boundary_and_trimap_iou_d=0.02, boundary_implementation='exact')
evaluator.evaluate(build_segmentation_loader(pred_dir=sys.argv[1], gt_dir=sys.argv[2]))
print('SECONDS', time.perf_counter() - start)
"""


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


def marker(stdout: str, name: str) -> str:
    """The rest of the last stdout line starting with `name `."""
    lines = [line for line in stdout.splitlines() if line.startswith(name + " ")]
    if not lines:
        sys.exit(f"no {name} line in the child's output:\n{stdout}")
    return lines[-1][len(name) + 1:]


def run_in_checkout(checkout: Path, wrapper: str, args: list[str]) -> str:
    """Run `wrapper` in a fresh process importing from `checkout`; fail loudly if it imports elsewhere."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], cwd=checkout, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"run in {checkout} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    module_file = Path(marker(proc.stdout, "MODULE_FILE")).resolve()
    if not module_file.is_relative_to(checkout):
        sys.exit(f"the run in {checkout} imported {module_file}, from outside that checkout")
    return proc.stdout


def time_run(checkout: Path, protocol: str, root: Path, workers: int, out: Path) -> tuple[float, float]:
    """Seconds and peak MiB of `zeg-eval run` of `checkout` with its protocols/<protocol>.yaml."""
    args = ["run", str(checkout / "protocols" / f"{protocol}.yaml"), "--data", str(root / "data"),
            "--predictions", f"model={root / 'pred'}", "--out", str(out), "--workers", str(workers)]
    start = time.perf_counter()
    stdout = run_in_checkout(checkout, HARNESS_WRAPPER, args)
    seconds = time.perf_counter() - start
    return seconds, int(marker(stdout, "PEAK_KIB")) / 1024


def beyond_iou_reference(args, root: Path) -> tuple[float, str, str]:
    """Seconds of beyond-iou's evaluator on this run's maps, the header line and the column label."""
    if args.beyond_iou:
        stdout = run_in_checkout(args.beyond_iou, BEYOND_IOU_WRAPPER,
                                 [str(root / "pred"), str(root / "data" / "labels"), str(args.classes)])
        seconds = float(marker(stdout, "SECONDS"))
        line = (f"beyond-iou: measured now: {seconds:.1f} s for these {args.maps} maps "
                f"(Evaluator.evaluate over its loader, imports excluded; {describe(args.beyond_iou)})")
        return seconds, line, "measured now"
    seconds, maps, size, classes, source = RECORDED_BEYOND_IOU
    line = (f"beyond-iou: recorded figure: {seconds} s per {maps} maps of {size}x{size}, {classes} classes "
            f"({source}), not measured now")
    if (args.maps, args.size) != (maps, size):
        seconds *= args.maps / maps * (args.size / size) ** 2
        line += f"; scaled linearly to {seconds:.1f} s for {args.maps} maps of {args.size}x{args.size}"
    if args.classes != classes:
        line += f"; recorded with {classes} classes, this run has {args.classes}"
    return seconds, line, "recorded"


def describe(checkout: Path) -> str:
    """The checkout and its commit, '-dirty' with uncommitted changes."""
    proc = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                          capture_output=True, text=True)
    return f"{checkout} ({proc.stdout.strip() or 'not a git checkout'})"


def time_protocol(protocol: str, checkouts: dict[str, Path], root: Path, args) -> dict[str, list]:
    """--repeat runs of `protocol` per checkout, alternating checkouts run by run, each into a fresh folder."""
    runs = {label: [] for label in checkouts}
    for i in range(args.repeat):
        for label, checkout in checkouts.items():
            out = root / f"run-{label}-{protocol}-{i}"
            runs[label].append(time_run(checkout, protocol, root, args.workers, out))
    return runs


def row(protocol: str, label: str, runs: list[tuple[float, float]], maps: int, reference: float) -> str:
    """One table line for one checkout's runs of one protocol."""
    times = sorted(seconds for seconds, _ in runs)
    seconds = statistics.median(times)
    peak = max(peak for _, peak in runs)
    spread = f"{times[0]:.2f}-{times[-1]:.2f}"
    return (f"{protocol:<14} {label:<8} {seconds:8.2f} {spread:>11} {maps / seconds:8.1f} {peak:9.0f} "
            f"{reference / seconds:27.1f}")


def print_protocol(protocol: str, runs: dict[str, list], maps: int, reference: float) -> None:
    """This checkout's line (with before/after where there is another checkout), then the other's."""
    line = row(protocol, "this", runs["this"], maps, reference)
    if "against" in runs:
        before, after = (statistics.median(seconds for seconds, _ in runs[k]) for k in ("against", "this"))
        line += f"  {before / after:12.2f}\n" + row("", "against", runs["against"], maps, reference)
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="runs per protocol and checkout (median shown)")
    parser.add_argument("--protocols", nargs="*", default=["small_targets", "occlusion", "boundary", "all"])
    parser.add_argument("--against", type=lambda p: Path(p).resolve(), metavar="DIR",
                        help="another checkout of this repository to compare with, run after run")
    parser.add_argument("--beyond-iou", type=lambda p: Path(p).resolve(), metavar="DIR",
                        help="a checkout of mxbh/beyond-iou to time now instead of the recorded figure")
    args = parser.parse_args()
    checkouts = {"this": Path(__file__).resolve().parents[1]}
    if args.against:
        checkouts["against"] = args.against
    for checkout in checkouts.values():
        # A normal environment caches the package's bytecode at the first run; where
        # PYTHONDONTWRITEBYTECODE is set (as on the machines this was measured on) every timed run
        # would compile harness/ again (~30 ms), so compile it once here.
        compileall.compile_dir(checkout / "harness", quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.maps, args.size, args.classes)
        reference, reference_line, reference_label = beyond_iou_reference(args, root)
        print(f"{args.maps} maps {args.size}x{args.size}, {args.classes} classes, {args.workers} workers, "
              f"{args.repeat} runs per protocol" + (" and checkout, alternating" if args.against else ""))
        for label, checkout in checkouts.items():
            print(f"{label + ':':<11} {describe(checkout)}")
        print(reference_line)
        print(f"{'protocol':<14} {'checkout':<8} {'seconds':>8} {'min-max':>11} {'maps/s':>8} {'peak MiB':>9} "
              f"{'x beyond-iou (' + reference_label + ')':>27}{'  before/after' if args.against else ''}")
        for name in args.protocols:
            print_protocol(name, time_protocol(name, checkouts, root, args), args.maps, reference)

if __name__ == "__main__":
    main()
