"""Benchmark of the condition loop: what applying a condition costs over model-only inference.

    .venv/bin/python bench/bench_conditions.py [--images 16] [--size 512] [--conditions noise-16,...]
    # on a GPU machine (the condition runs in the DataLoader workers on the CPU, the model on the GPU):
    python bench/bench_conditions.py --device cuda --zegclip --precision bf16 --batch-size 8 --loader-workers 8

For a 512x512 slide-inference model (bench/configs/tiny_fcn_slide512.py: the tests' tiny model sliding
512-pixel windows with stride 341 over images resized to a short side of 512, as ZegCLIP's configs do;
random weights; or the ZegCLIP port with --zegclip), each in a fresh process on generated 512x512 images:

* `model_only`: the model's stream alone (images decoded, pipeline, forward, label maps), clean;
* `model_only/<condition>`: the same stream with the condition applied to each image in the
  DataLoader workers: the condition loop's overhead = its time / clean time - 1 (steady state: the
  warm-up image pays the library's import and numba's compilation, once per run in a real run);
* `loop/<condition>`: `zeg-eval run` of that condition (standard + size families): the condition's own
  loop (model, condition and metrics) in images/s, from the run manifest's timing.

Corruptions per second per type, without a model, are bench/bench_corruptions.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_runner import ZEGCLIP_CONFIG, ZEGCLIP_OPTIONS, random_checkpoint  # noqa: E402 - after the path

DEFAULT_CONDITIONS = "gaussian_noise-3,glass_blur-3,fog-3,jpeg_compression-3,resolution-0.5,jpeg-20"
SLIDE_512 = ROOT / "bench" / "configs" / "tiny_fcn_slide512.py"


def _sample(n: int, size: int) -> Path:
    from harness.data.sample import SampleConfig, make_sample

    path = Path(tempfile.gettempdir()) / f"zeg-bench-sample-{n}-{size}"
    return make_sample(path, SampleConfig(n_images=n, height=size, width=size))


def _spec(args, checkpoint):
    from harness.models.mmseg_model import MmsegSpec

    if args.zegclip:
        return MmsegSpec(name="m", config=ZEGCLIP_CONFIG, checkpoint=checkpoint, loader="zegclip",
                         precision=args.precision or "fp32", batch_size=args.batch_size or 1,
                         cfg_options=dict(ZEGCLIP_OPTIONS))
    return MmsegSpec(name="m", config=SLIDE_512, checkpoint=checkpoint, precision=args.precision or "fp32",
                     batch_size=args.batch_size or 1)


def _checkpoint(args, dataset, tmp: Path) -> Path:
    return random_checkpoint(_spec(args, None), dataset, tmp / "random.pth")


def _weights(args):
    from harness.models import mmseg_predictor

    if args.zegclip:
        from harness.models.zegclip_model import _load_zegclip_weights

        return _load_zegclip_weights
    return mmseg_predictor.load_weights


def one(args) -> dict:
    """One measurement in this (fresh) process."""
    from harness.conditions.spec import CLEAN_CONDITION, named
    from harness.data.dataset import load_dataset
    from harness.models import mmseg_predictor
    from harness.models.base import Runtime

    data = _sample(args.images, args.size)
    dataset = load_dataset(data)
    tmp = Path(tempfile.mkdtemp(prefix="zeg-bench-"))
    ckpt = _checkpoint(args, dataset, tmp)
    what, _, name = args.one.partition("/")
    condition = named(name) if name else CLEAN_CONDITION
    stems = dataset.stems()
    runtime = Runtime(device=args.device, loader_workers=args.loader_workers)
    if what == "model_only":
        spec = _spec(args, ckpt)
        for _ in mmseg_predictor.predict_stream(spec, dataset, stems[:1], runtime, weights=_weights(args),
                                                condition=condition):
            pass  # warm-up: imports, caches, the corruption library's one-off costs (steady state is timed)
        start = time.perf_counter()
        n = sum(1 for _ in mmseg_predictor.predict_stream(spec, dataset, stems[1:], runtime, weights=_weights(args),
                                                          condition=condition))
        seconds = time.perf_counter() - start
    else:
        import yaml

        from harness.run.command import run_from_args

        entry = {"name": "m", "config": str(_spec(args, ckpt).config), "checkpoint": str(ckpt),
                 "cfg_options": _spec(args, ckpt).cfg_options}
        if args.zegclip:
            entry["loader"] = "zegclip"
        protocol = tmp / "p.yaml"
        protocol.write_text(yaml.safe_dump({"name": "b", "families": {"standard": {}, "size": {}},
                                            "conditions": [condition.name], "robustness": {"bootstrap": 0},
                                            "models": [entry]}))
        run_from_args(protocol, data, None, tmp / "run", limit=1, device=args.device,
                      loader_workers=args.loader_workers)  # warm-up
        run_from_args(protocol, data, None, tmp / "run", device=args.device, loader_workers=args.loader_workers)
        # the condition's own loop (a run evaluates clean too, first), as the manifest times it
        timings = json.loads((tmp / "run" / "manifest.json").read_text())["models"]["m"]["timings"]
        timing = [t for t in timings if t["condition"] == condition.name][-1]
        seconds, n = timing["seconds"], timing["images"]
    kib = 1024
    return {"what": args.one, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 3),
            "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib, 1),
            "peak_rss_child_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib, 1)}


def _measure(what: str, args) -> dict:
    cmd = [sys.executable, __file__, "--one", what, "--images", str(args.images), "--size", str(args.size),
           "--device", args.device]
    for flag, value in (("--loader-workers", args.loader_workers), ("--precision", args.precision),
                        ("--batch-size", args.batch_size)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.zegclip:
        cmd.append("--zegclip")
    runs = []
    for _ in range(args.repeat):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return max(runs, key=lambda r: r["images_per_s"])  # the least disturbed of --repeat fresh processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--conditions", default=DEFAULT_CONDITIONS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--zegclip", action="store_true", help="the ZegCLIP ViT-B/16 port, random weights")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--loader-workers", type=int)
    parser.add_argument("--loop", action="store_true", help="also the whole `zeg-eval run` per condition")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    results = {"cpus": len(os.sched_getaffinity(0)), "device": args.device, "size": args.size,
               "model": "zegclip" if args.zegclip else "tiny_fcn_slide (512 windows)"}
    clean = _measure("model_only", args)
    results["model_only"] = clean
    print(f"model only, clean: {clean['images_per_s']} img/s", flush=True)
    for name in args.conditions.split(","):
        r = _measure(f"model_only/{name}", args)
        per_image, clean_per_image = r["seconds"] / r["images"], clean["seconds"] / clean["images"]
        r["overhead_percent"] = round(100 * (per_image / clean_per_image - 1), 1)
        results[f"model_only/{name}"] = r
        print(f"model only, {name}: {r['images_per_s']} img/s, condition overhead {r['overhead_percent']}%",
              flush=True)
        if args.loop:
            loop = _measure(f"loop/{name}", args)
            results[f"loop/{name}"] = loop
            print(f"whole loop, {name}: {loop['images_per_s']} img/s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
