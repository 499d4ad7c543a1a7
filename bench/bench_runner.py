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

On a GPU the same script with `--device cuda` and a real config (`--config`, `--checkpoint`) gives
the overhead there: the model runs on the GPU while the metrics use the CPU cores, so the loop's
images/s should stay within 10% of `model_only`; `metric_wait_seconds` in the run's manifest is the
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


def _checkpoint(config: Path, tmp: Path) -> Path:
    import torch

    from harness.models import mmseg_predictor
    from harness.models.mmseg_model import MmsegSpec

    torch.manual_seed(0)
    spec = MmsegSpec(name="t", config=config, checkpoint=None)
    model = mmseg_predictor.build_model(spec, mmseg_predictor.load_config(spec), "cpu")
    path = tmp / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path


def _peak() -> dict:
    kib = 1024
    return {"peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib, 1),
            "peak_rss_child_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib, 1)}


def one(args) -> dict:
    """One measurement in this (fresh) process."""
    from harness.models.mmseg_model import MmsegSpec
    from harness.run.command import run_from_args

    data = _sample(args.images)
    tmp = Path(tempfile.mkdtemp(prefix="zeg-bench-"))
    config = Path(args.config)
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if args.what in ("model", "model_only") and ckpt is None:
        ckpt = _checkpoint(config, tmp)
    if args.what == "model_only":
        from harness.data.dataset import load_dataset
        from harness.models import mmseg_predictor
        from harness.models.base import Runtime

        dataset = load_dataset(data)
        stems = dataset.stems()
        spec = MmsegSpec(name="m", config=config, checkpoint=ckpt)
        runtime = Runtime(device=args.device, loader_workers=args.loader_workers)
        stream = mmseg_predictor.predict_stream(spec, dataset, stems, runtime)
        next(stream)  # the model is built and warm: timing starts at the second image
        start = time.perf_counter()
        n = sum(1 for _ in stream)
        seconds = time.perf_counter() - start
        return {"what": args.what, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 2),
                **_peak()}
    if args.what == "simulated_gpu":
        return simulated_gpu(args, data, tmp)
    if args.what == "baseline":
        models = [{"name": "m", "baseline": "drop_small"}]
    else:
        models = [{"name": "m", "config": str(config), "checkpoint": str(ckpt)}]
    protocol = _protocol(tmp, args.families.split(","), models)
    if args.what == "model":  # warm the same way as model_only: one image first, then time the rest
        run_from_args(protocol, data, None, tmp / "run", limit=1, workers=args.workers,
                      device=args.device, loader_workers=args.loader_workers)
    start = time.perf_counter()
    run_from_args(protocol, data, None, tmp / "run", workers=args.workers, device=args.device,
                  loader_workers=args.loader_workers)
    seconds = time.perf_counter() - start
    entry = json.loads((tmp / "run" / "manifest.json").read_text())["models"]["m"]["timings"][-1]
    n = entry["images"]
    return {"what": args.what, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 2),
            "loop_images_per_s": entry["images_per_s"], "metric_wait_seconds": entry["metric_wait_seconds"],
            "predict_seconds": entry["predict_seconds"], **_peak()}


def simulated_gpu(args, data: Path, tmp: Path) -> dict:
    """A model that keeps the CPU free (as one running on a GPU): it sleeps --sim-ms per image and
    returns the ground truth. Whole loop / model time - 1 is the metrics' overhead on a GPU machine."""
    from harness.data.dataset import load_dataset
    from harness.evaluation.protocol import Protocol, family_config
    from harness.run.scoring import score_model

    dataset = load_dataset(data)
    stems = dataset.stems()
    protocol = Protocol(name="bench", families={f: family_config(f) for f in args.families.split(",")})
    labels = {s: dataset.load_label(s).astype("uint8") for s in stems}

    def stream(pending):
        for stem in pending:
            time.sleep(args.sim_ms / 1000)
            yield stem, labels[stem]

    result = score_model(dataset, protocol, tmp / "records", stems, stream=stream, workers=args.workers)
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
                        ("--loader-workers", args.loader_workers)):
        if value is not None:
            cmd += [flag, str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--families", default="standard,size")
    parser.add_argument("--config", default=str(ROOT / "tests" / "configs" / "tiny_fcn.py"))
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
    if args.one:
        args.what = args.one
        print(json.dumps(one(args)))
        return
    results = {"cpus": len(os.sched_getaffinity(0)), "families": args.families, "device": args.device}
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
