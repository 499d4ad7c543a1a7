"""Benchmark: render a comparison report of 3 models on 5,000 images (COCO-Stuff sized: 171 classes).

The run folder is synthesised directly as per-image records (harness.run.records.RecordWriter) with
every metric family's columns, so no dataset or model is needed; the gallery then has no pixels and
says so. Prints the time of each stage of `build_report` (1,000 bootstrap resamples by default).

    .venv/bin/python bench/bench_report.py [--images 5000] [--models 3] [--bootstrap 1000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.metrics import boundary  # noqa: E402
from harness.metrics.boundary import BoundaryConfig  # noqa: E402
from harness.metrics.occlusion import OcclusionConfig  # noqa: E402
from harness.metrics.size import SizeConfig  # noqa: E402
from harness.metrics.standard import StandardConfig  # noqa: E402
from harness.report.build import Options, build_report  # noqa: E402
from harness.run import manifest as manifest_mod  # noqa: E402
from harness.run import records  # noqa: E402

H, W = 480, 640


def synth_model(model_dir: Path, stems, n_classes: int, skill: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bcols = boundary.count_columns(BoundaryConfig())
    writer = records.RecordWriter(model_dir, chunk_size=500)  # model_dir: a records.RecordSet
    for stem in stems:
        # the ground truth (classes, objects) is the image's, the same for every model (the explorer
        # joins objects across models); what each model makes of it is the model's own draw
        geo = np.random.default_rng(int(stem))
        k = int(geo.integers(3, 12))
        classes = np.sort(geo.choice(n_classes, size=k, replace=False)).astype(np.int64)
        label = rng.integers(500, 60000, size=k)
        inter = (label * rng.uniform(skill - 0.3, skill, size=k)).astype(np.int64).clip(0)
        pred = inter + rng.integers(0, 5000, size=k)
        pixel = {"class": classes, "intersect": inter, "pred_area": pred, "label_area": label}
        for c in bcols:
            if c.endswith("_union"):
                pixel[c] = rng.integers(1000, 5000, size=k)
            elif c == "bnd_bf_images":
                pixel[c] = np.ones(k, np.int64)
            elif c == "bnd_bf_f1_nano":
                pixel[c] = rng.integers(0, 10**9, size=k)
            else:
                pixel[c] = rng.integers(0, 1000, size=k)
        n = int(geo.integers(5, 25))
        area = np.exp(geo.uniform(2, 10, size=n)).astype(np.int64) + 1
        obj_class = geo.choice(classes, n)
        x0, y0 = geo.integers(0, W - 40, n), geo.integers(0, H - 40, n)
        occlusion = geo.uniform(0, 1, n) * (geo.random(n) < 0.6)
        tp = (area * rng.uniform(0, 1, size=n) * skill).astype(np.int64)
        fp_share = rng.uniform(0, 200, size=n)
        objects = {"object": np.arange(1, n + 1), "class": obj_class, "area": area,
                   "rel_area": area / (H * W), "bbox_x0": x0, "bbox_y0": y0, "bbox_x1": x0 + 30, "bbox_y1": y0 + 30,
                   "tp": tp, "recall": tp / area, "fp_share": fp_share, "iou": tp / (area + fp_share),
                   "hit": tp / area >= 0.5, "occlusion": occlusion,
                   "occlusion_source": np.full(n, "proxy"), "occlusion_proxy": rng.uniform(0, 1, n),
                   "fragments": rng.integers(1, 3, n)}
        m = int(rng.integers(0, 6))
        blob_area = rng.integers(1, 3000, size=m)
        fp_blobs = {"class": rng.choice(classes, m), "area": blob_area, "rel_area": blob_area / (H * W)}
        images = {"height": np.array([H]), "width": np.array([W]), "n_valid": np.array([H * W])}
        writer.add(stem, {"pixel": pixel, "objects": objects, "fp_blobs": fp_blobs, "images": images})
    writer.flush()


def synth_run(run_dir: Path, n_images: int, n_models: int) -> None:
    classes = [f"class{i:03d}" for i in range(171)]
    stems = [f"{i:012d}" for i in range(n_images)]
    families = {"standard": StandardConfig(), "size": SizeConfig(), "occlusion": OcclusionConfig(),
                "boundary": BoundaryConfig()}
    models = {}
    for j in range(n_models):
        name = f"model{j}"
        synth_model(records.RecordSet(run_dir, name), stems, len(classes), skill=0.6 + 0.1 * j, seed=j)
        models[name] = {"kind": "predictions", "path": str(run_dir / "no_predictions" / name), "status": "complete"}
    manifest = {"status": "complete", "created": manifest_mod.now(), "finished": manifest_mod.now(),
                "protocol": {"name": "bench", "families": {k: dataclasses.asdict(v) for k, v in families.items()}},
                "dataset": {"name": "synthetic", "root": str(run_dir / "no_data"), "num_classes": len(classes),
                            "classes": classes, "unseen": classes[-15:], "ignore_index": 255},
                "images": stems, "models": models, "versions": manifest_mod.versions()}
    (run_dir / manifest_mod.MANIFEST).write_text(json.dumps(manifest))


def interactive(html: Path, runs: int = 3) -> None:
    """Load the page in headless Chromium (Debian's chromium + chromedriver, via selenium) and print
    when its script had run (the page stamps performance.now() on <body data-ready-ms>) and when the
    load event fired; the best of `runs` cold loads."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,900"):
        opts.add_argument(flag)
    ready, loaded, clicks = [], [], []
    for _ in range(runs):
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
        try:
            driver.get(html.resolve().as_uri())
            ready.append(float(driver.find_element("tag name", "body").get_attribute("data-ready-ms")))
            loaded.append(driver.execute_script(
                "var t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd;"))
            # one filter of the object explorer (every object is scanned) and of the summary table
            clicks.append(driver.execute_script(
                "var t0 = performance.now(), s = document.getElementById('ex-class');"
                "if (s) { s.value = s.options[1].value; s.dispatchEvent(new Event('change')); }"
                "var t1 = performance.now(), q = document.getElementById('metric-search');"
                "q.value = 'small'; q.dispatchEvent(new Event('input'));"
                "return [s ? t1 - t0 : NaN, performance.now() - t1,"
                " document.querySelectorAll('#explorer-table tbody tr').length];"))
        finally:
            driver.quit()
    print(f"  headless Chromium: script done {min(ready) / 1000:.2f} s, load event {min(loaded) / 1000:.2f} s "
          f"after navigation (best of {runs}; budget 3 s)")
    print(f"  explorer class filter {min(c[0] for c in clicks):.0f} ms ({clicks[0][2]} rows listed), "
          f"summary search {min(c[1] for c in clicks):.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--no-browser", action="store_true", help="skip timing the page in headless Chromium")
    ap.add_argument("--keep", help="write the synthetic run and the report here (default: a temp folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        run_dir = root / "run"
        t = time.perf_counter()
        synth_run(run_dir, args.images, args.models)
        print(f"synthesised {args.models} models x {args.images} images of records in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        result = build_report([run_dir], root / "report", Options(n_boot=args.bootstrap))
        wall = time.perf_counter() - t
        print(f"report of {args.models} models x {args.images} images, {args.bootstrap} bootstrap resamples: "
              f"{wall:.1f} s")
        for stage, seconds in result["timings"].items():
            print(f"  {stage:24s} {seconds:6.2f} s")
        print(f"  page size {result['html'].stat().st_size / 1e6:.1f} MB")
        if not args.no_browser:
            interactive(result["html"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
