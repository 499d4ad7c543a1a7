"""Benchmark: the report of a run with conditions (3 models x 80 conditions x 40 images by default).

The run is real (`zeg-eval run` on the generated sample): each model is a prediction folder holding
one map per condition, the ground truth with some thing objects removed (small ones more often, at
higher severity more often, a weaker model more often), so the robustness tables have structure.
The conditions are ImageNet-C's 15 corruptions at severities 1-5, resolution 0.5 and 0.25, JPEG 20,
blur 2 and noise 16 (80). Then `build_report` is timed (the CLI's defaults: 1,000 resamples, the
figure files), once per repeat, with the time of each stage; `--no-inputs` reports a copy of the
run without RUN/inputs, so that the example inputs are made again from the dataset images.

Folder models never call the corruption code, but the records' identity names its version and
--save-inputs makes every condition's images with it: without the corruption library (the extra
'robustness') a stand-in is used (said in the output), which makes the run faster and the
no-inputs report's timing a lower bound.

    .venv/bin/python bench/bench_report_robustness.py [--images 40] [--models 3] [--keep DIR] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.conditions.spec import IMAGENET_C  # noqa: E402

CONDITIONS = [f"{c}-{s}" for c in IMAGENET_C for s in range(1, 6)] + [
    "resolution-0.5", "resolution-0.25", "jpeg-20", "blur-2", "noise-16"]


def corruption_library() -> str:
    """The corruption module's version, or a stand-in's (installed into sys.modules)."""
    try:
        from harness.conditions import corruptions

        return corruptions.version()
    except ImportError:
        stub = types.ModuleType("harness.conditions.corruptions")
        stub.version = lambda: "bench-stand-in"
        stub.library_problem = lambda: None
        stub.corrupt = lambda image, name, severity, seed: (image * (1 - severity / 8)).astype(np.uint8)
        sys.modules["harness.conditions.corruptions"] = stub
        return "stand-in (harness.conditions.corruptions is not installed)"


def _severity(condition: str) -> float:
    """0 clean .. 5 (knobs: resolution 0.5 and jpeg/blur/noise count as 2, resolution 0.25 as 4)."""
    if condition == "clean":
        return 0.0
    name, level = condition.rsplit("-", 1)
    if name == "resolution":
        return 2.0 if level == "0.5" else 4.0
    return float(level) if name in IMAGENET_C else 2.0


def write_predictions(data: Path, folder: Path, skill: float, seed: int) -> None:
    """<folder>/<stem>.png (clean) and <folder>/<condition>/<stem>.png: the ground truth with each
    thing object removed (to the background class 0) with a probability growing with the severity,
    shrinking with the object's area and the model's skill."""
    from harness.data.dataset import load_dataset
    from harness.data.imageio import write_label_png

    dataset = load_dataset(data)
    for k, stem in enumerate(dataset.stems()):
        gt = dataset.load_label(stem)
        instances = dataset.load_instances(stem, gt.shape)
        ids = [i for i in np.unique(instances) if i > 0]
        areas = np.array([(instances == i).sum() for i in ids], np.float64)
        for condition in ["clean", *CONDITIONS]:
            rng = np.random.default_rng([seed, k, CONDITIONS.index(condition) + 1 if condition != "clean" else 0])
            p = (0.05 + 0.12 * _severity(condition)) * (1 - skill) * 4 / (1 + np.log1p(areas) / 3)
            pred = np.where(gt == dataset.ignore_index, 0, gt).astype(np.uint8)
            for i, drop in zip(ids, rng.random(len(ids)) < p):
                if drop:
                    pred[instances == i] = 0
            out = folder if condition == "clean" else folder / condition
            out.mkdir(parents=True, exist_ok=True)
            write_label_png(out / f"{stem}.png", pred)


def make_run(root: Path, n_images: int, n_models: int) -> Path:
    from harness.data.sample import SampleConfig, make_sample
    from harness.run.command import run_from_args

    data = make_sample(root / "sample", SampleConfig(n_images=n_images))
    models = []
    for j in range(n_models):
        folder = root / "pred" / f"model{j}"
        write_predictions(data, folder, skill=0.5 + 0.15 * j, seed=j)
        models.append({"name": f"model{j}", "predictions": str(folder)})
    protocol = {"name": "bench_rob", "families": {"standard": {}, "size": {}, "boundary": {}},
                "conditions": CONDITIONS, "robustness": {"reference": "model0", "bootstrap": 200}, "models": models}
    (root / "p.yaml").write_text(json.dumps(protocol))
    t = time.perf_counter()
    run_from_args(root / "p.yaml", data, [], root / "run", workers=2, save_inputs=True)
    print(f"run: {n_models} models x {len(CONDITIONS)} conditions x {n_images} images in "
          f"{time.perf_counter() - t:.0f} s")
    return root / "run"


def time_report(run: Path, out: Path, repeat: int) -> None:
    from harness.report.build import Options, build_report

    for k in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        result = build_report([run], out, Options())
        wall = time.perf_counter() - t
        stages = "  ".join(f"{s} {v:.2f}" for s, v in result["timings"].items())
        print(f"  report {k + 1}: {wall:.1f} s ({stages}); page {result['html'].stat().st_size / 1e6:.2f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", help="write the run and the reports here (default: a temp folder); reused if there")
    ap.add_argument("--no-inputs", action="store_true", help="also report a copy without RUN/inputs")
    args = ap.parse_args()
    print(f"corruption library: {corruption_library()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        run = root / "run"
        if not (run / "robustness_summary.csv").is_file():
            run = make_run(root, args.images, args.models)
        print(f"report of {run} (saved inputs):")
        time_report(run, root / "report", args.repeat)
        if args.no_inputs:
            bare = root / "run_no_inputs"
            if not bare.is_dir():
                shutil.copytree(run, bare, ignore=shutil.ignore_patterns("inputs"))
            print("report without RUN/inputs (example inputs made again):")
            time_report(bare, root / "report_no_inputs", args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
