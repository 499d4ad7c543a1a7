"""Benchmark of the runner's whole loop on CPU: images/s, the metrics' overhead, peak memory.

    .venv/bin/python bench/bench_runner.py [--images 40] [--families standard,size] [--json out.json]

Measured, each in a fresh process on the generated sample (320x240):
* `baseline`: drop_small through the whole loop (records, chunks, summary): images/s;
* `model_only`: the tiny mmseg model (tests/configs/tiny_fcn.py, random weights) alone, its label
  maps consumed and dropped: the inference time the metrics are compared with;
* `model`: the same model through the whole loop, metrics in worker processes: images/s and the
  overhead = whole loop / inference only - 1;
* `simulated_gpu`: a model that sleeps --sim-ms per image (the CPU free, as when the model runs on
  a GPU) and returns the ground truth, through the loop with the metrics: the metrics' overhead
  on a GPU machine, measurable on CPU;
* memory: peak RSS of the main process and of the largest worker for N and 4N images (`--memory`):
  flat when the loop holds a bounded number of images whatever N.

On a GPU the same script with `--device cuda` and a real model gives the overhead there, e.g. the
ZegCLIP port (ViT-B/16, slide inference, random weights, the sample's class names) in bf16:

    python bench/bench_runner.py --device cuda --zegclip --precision bf16 --families standard,size,boundary

A real checkpoint goes in with `--config` and `--checkpoint`. There the model runs on the GPU while
the metrics use the CPU cores, so the loop's images/s should stay within 10% of `model_only`; `metric_wait_seconds` in the run's manifest is the
time the loop waited for metric workers (0 when they keep up).
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


def _sample(n: int) -> Path:
    from harness.data.sample import SampleConfig, make_sample

    path = Path(tempfile.gettempdir()) / f"zeg-bench-sample-{n}"
    return make_sample(path, SampleConfig(n_images=n))


def _protocol(tmp: Path, families: list[str], models: list[dict]) -> Path:
    import yaml

    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "families": {f: {} for f in families}, "models": models}))
    return path


# ZegCLIP with the dataset's classes (its text tower encodes their names), as an open-vocabulary
# model is evaluated on a dataset of its own choosing
ZEGCLIP_CONFIG = ROOT / "configs" / "zegclip" / "zegclip_vitb16_512x512_coco-stuff171_inductive.py"
ZEGCLIP_OPTIONS = {"model.class_names": "${dataset.classes}", "model.seen_idx": "${dataset.seen_ids}",
                   "model.unseen_idx": "${dataset.unseen_ids}", "model.decode_head.num_classes": "${dataset.num_classes}",
                   "model.text_embedding": None}


def _model_entry(args, checkpoint: Path | None) -> dict:
    entry = {"name": "m", "config": str(args.config), "checkpoint": str(checkpoint)}
    if args.zegclip:
        entry.update(loader="zegclip", cfg_options=ZEGCLIP_OPTIONS)
    if args.precision:
        entry["precision"] = args.precision
    if args.batch_size:
        entry["batch_size"] = args.batch_size
    return entry


def _spec(args, checkpoint: Path | None):
    from harness.models.mmseg_model import MmsegSpec

    entry = _model_entry(args, checkpoint)
    return MmsegSpec(name="m", config=Path(entry["config"]), checkpoint=checkpoint, loader=entry.get("loader", "mmseg"),
                     precision=entry.get("precision", "fp32"), batch_size=entry.get("batch_size", 1),
                     cfg_options=entry.get("cfg_options", {}))


def random_checkpoint(spec, dataset, path: Path) -> Path:
    """Random weights (seeded) of `spec`'s model saved as a state-dict checkpoint its loader reads."""
    import torch

    from harness.models import mmseg_predictor

    torch.manual_seed(0)
    model = mmseg_predictor.build_model(spec, mmseg_predictor.load_config(spec, dataset), "cpu")
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def _checkpoint(args, dataset, tmp: Path) -> Path:
    return random_checkpoint(_spec(args, None), dataset, tmp / "random.pth")


def _peak() -> dict:
    kib = 1024
    return {"peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib, 1),
            "peak_rss_child_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib, 1)}


def one(args) -> dict:
    """One measurement in this (fresh) process."""
    from harness.data.dataset import load_dataset
    from harness.run.command import run_from_args

    data = _sample(args.images)
    dataset = load_dataset(data)
    tmp = Path(tempfile.mkdtemp(prefix="zeg-bench-"))
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if args.what in ("model", "model_only") and ckpt is None:
        ckpt = _checkpoint(args, dataset, tmp)
    if args.what == "model_only":
        from harness.models import mmseg_predictor
        from harness.models.base import Runtime

        stems = dataset.stems()
        runtime = Runtime(device=args.device, loader_workers=args.loader_workers)
        weights = mmseg_predictor.load_weights
        if args.zegclip:
            from harness.models.zegclip_model import _load_zegclip_weights as weights
        spec = _spec(args, ckpt)
        # as `model` below: a warm-up over the first image (imports, caches), then the other images
        # timed, the model built once more inside the timing, as the whole loop builds it
        for _ in mmseg_predictor.predict_stream(spec, dataset, stems[:1], runtime, weights=weights):
            pass
        start = time.perf_counter()
        n = sum(1 for _ in mmseg_predictor.predict_stream(spec, dataset, stems[1:], runtime, weights=weights))
        seconds = time.perf_counter() - start
        return {"what": args.what, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 2),
                **_peak()}
    if args.what == "simulated_gpu":
        return simulated_gpu(args, dataset, tmp)
    if args.what == "baseline":
        models = [{"name": "m", "baseline": "drop_small"}]
    else:
        models = [_model_entry(args, ckpt)]
    protocol = _protocol(tmp, args.families.split(","), models)
    if args.what == "model":  # warm the same way as model_only: one image first, then the rest timed
        run_from_args(protocol, data, None, tmp / "run", limit=1, workers=args.workers,
                      device=args.device, loader_workers=args.loader_workers)
    start = time.perf_counter()
    run_from_args(protocol, data, None, tmp / "run", workers=args.workers, device=args.device,
                  loader_workers=args.loader_workers)
    seconds = time.perf_counter() - start
    entry = json.loads((tmp / "run" / "manifest.json").read_text())["models"]["m"]
    timing = entry["timings"][-1]
    n = timing["images"]
    return {"what": args.what, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 2),
            "loop_images_per_s": timing["images_per_s"], "metric_wait_seconds": timing["metric_wait_seconds"],
            "predict_seconds": timing["predict_seconds"], "run_info": entry.get("run_info"), **_peak()}


def sleeping_model(labels: dict, ms: float):
    """A model that keeps the CPU free (as one running on a GPU): it sleeps `ms` per image and
    returns the ground truth, streamed from this process like a model with weights."""
    from harness.models.base import Predictor

    class SleepingModel(Predictor):
        in_workers = False

        def stream(self, stems):
            for stem in stems:
                time.sleep(ms / 1000)
                yield stem, labels[stem]

    return SleepingModel()


def simulated_gpu(args, dataset, tmp: Path) -> dict:
    """Whole loop / model time - 1 with `sleeping_model`: the metrics' overhead on a GPU machine."""
    from harness.evaluation.protocol import Protocol, family_config
    from harness.run.records import RecordSet
    from harness.run.scoring import score_model

    stems = dataset.stems()
    protocol = Protocol(name="bench", families={f: family_config(f) for f in args.families.split(",")})
    labels = {s: dataset.load_label(s).astype("uint8") for s in stems}
    records = RecordSet(tmp / "run", "m")
    result = score_model(dataset, protocol, records, stems, predictor=sleeping_model(labels, args.sim_ms),
                         workers=args.workers)
    model_seconds = len(stems) * args.sim_ms / 1000
    return {"what": "simulated_gpu", "images": len(stems), "sim_ms_per_image": args.sim_ms,
            "seconds": round(result.seconds, 3), "images_per_s": round(len(stems) / result.seconds, 2),
            "model_only_images_per_s": round(len(stems) / model_seconds, 2),
            "overhead_percent": round(100 * (result.seconds / model_seconds - 1), 1),
            "metric_wait_seconds": round(result.metric_wait_seconds, 3), **_peak()}


def measure(what: str, images: int, args) -> dict:
    """The best of --repeat fresh processes (the machine may be shared: the best is the least disturbed)."""
    runs = [_measure_once(what, images, args) for _ in range(args.repeat)]
    return max(runs, key=lambda r: r["images_per_s"])


def _measure_once(what: str, images: int, args) -> dict:
    cmd = [sys.executable, __file__, "--one", what, "--images", str(images), "--families", args.families,
           "--config", args.config, "--device", args.device, "--sim-ms", str(args.sim_ms)]
    for flag, value in (("--checkpoint", args.checkpoint), ("--workers", args.workers),
                        ("--loader-workers", args.loader_workers), ("--precision", args.precision),
                        ("--batch-size", args.batch_size)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.zegclip:
        cmd.append("--zegclip")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--families", default="standard,size")
    parser.add_argument("--config", default=None,
                        help="mmseg config (default: tests/configs/tiny_fcn.py; with --zegclip the ViT-B/16 COCO config)")
    parser.add_argument("--zegclip", action="store_true",
                        help="the ZegCLIP port (loader zegclip) with the sample's class names, random weights")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--loader-workers", type=int)
    parser.add_argument("--sim-ms", type=float, default=40.0,
                        help="simulated GPU model: milliseconds per image with the CPU free (default 40)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement; the best counts")
    parser.add_argument("--memory", action="store_true", help="also peak memory for N and 4N images")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config is None:
        args.config = str(ZEGCLIP_CONFIG if args.zegclip else ROOT / "tests" / "configs" / "tiny_fcn.py")
    if args.one:
        args.what = args.one
        print(json.dumps(one(args)))
        return
    results = {"cpus": len(os.sched_getaffinity(0)), "families": args.families, "device": args.device,
               "config": Path(args.config).name, "precision": args.precision or "fp32"}
    for what in ("baseline", "model_only", "model", "simulated_gpu"):
        results[what] = measure(what, args.images, args)
        print(json.dumps(results[what]), flush=True)
    only, loop = results["model_only"]["images_per_s"], results["model"]["images_per_s"]
    results["metrics_overhead_percent"] = round(100 * (only / loop - 1), 1)
    print(f"metrics overhead on {args.device}: {results['metrics_overhead_percent']}% "
          f"(inference only {only} img/s, whole loop {loop} img/s)")
    sim = results["simulated_gpu"]
    print(f"metrics overhead with a model that leaves the CPU free ({args.sim_ms:g} ms/img, as on a GPU): "
          f"{sim['overhead_percent']}%")
    if args.memory:
        for what in ("baseline", "model"):
            small, large = (_measure_once(what, n, args) for n in (args.images, 4 * args.images))
            results[f"memory_{what}"] = {str(args.images): small, str(4 * args.images): large}
            print(f"peak RSS {what}: main {small['peak_rss_main_mib']} -> {large['peak_rss_main_mib']} MiB, "
                  f"largest child {small['peak_rss_child_mib']} -> {large['peak_rss_child_mib']} MiB "
                  f"({args.images} -> {4 * args.images} images)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
