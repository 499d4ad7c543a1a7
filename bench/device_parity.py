"""`zeg-eval run --device cuda` end to end, against the same run on the CPU.

The ZegCLIP model of the shipped protocols/all.yaml (ViT-B/16 COCO-Stuff config, the dataset's
vocabulary through its text tower), with random weights (seed 0), evaluated on DATA three times,
each a fresh `zeg-eval run ... --save-predictions`: on the CPU in fp32, on DEVICE in fp32, and on
DEVICE in bf16. Prints each run's wall time and images/s, the share of pixels whose predicted class
equals the CPU run's, and the largest difference of any summary metric from the CPU run.

    python bench/device_parity.py --device cuda --out /tmp/parity [--data DATA]

Random weights give nearly flat scores, so near-ties make a few pixels flip between devices even
where both compute the same function; the figures bound the difference, they are not tolerances.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROTOCOL = ROOT / "protocols" / "all.yaml"
MODEL = "zegclip_coco_inductive"


def random_checkpoint(data: Path, path: Path) -> Path:
    """The protocol's ZegCLIP, built for `data`'s classes with seeded random weights, saved."""
    import torch

    from harness.data.dataset import load_dataset
    from harness.evaluation.protocol import load_protocol
    from harness.models import mmseg_predictor
    from harness.models.registry import parse_models

    spec = next(m for m in parse_models(load_protocol(PROTOCOL).models, PROTOCOL) if m.name == MODEL)
    dataset = load_dataset(data)
    torch.manual_seed(0)
    model = mmseg_predictor.build_model(spec, mmseg_predictor.load_config(spec, dataset), "cpu")
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def run(data: Path, out: Path, checkpoint: Path, device: str, precision: str) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "run", str(PROTOCOL), "--data", str(data), "--model", MODEL,
           "--out", str(out), "--device", device, "--precision", precision, "--save-predictions"]
    env = {**os.environ, "ZEGCLIP_COCO_INDUCTIVE": str(checkpoint)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())["models"][MODEL]
    timing = manifest["timings"][-1]
    return {"device": device, "precision": precision, "seconds": round(seconds, 1), "images": timing["images"],
            "loop_images_per_s": timing["images_per_s"], "run_info": manifest.get("run_info"),
            "summary": json.loads((out / "summary.json").read_text())[MODEL]}


def pixel_agreement(a: Path, b: Path) -> float:
    from harness.data.imageio import read_label_png

    same = total = 0
    for path in sorted(a.glob("*.png")):
        x, y = read_label_png(path), read_label_png(b / path.name)
        same += int((x == y).sum())
        total += x.size
    return same / total


def largest_difference(a: dict, b: dict) -> tuple[str, float, int]:
    diffs = {k: abs(a[k] - b[k]) for k in a if isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))}
    worst = max(diffs, key=diffs.get)
    return worst, diffs[worst], sum(1 for d in diffs.values() if d > 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", help="a zeg-eval dataset folder with images (default: the generated sample)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data:
        data = Path(args.data)
    else:
        from harness.data.sample import SampleConfig, make_sample

        data = make_sample(out / "sample", SampleConfig())
    checkpoint = random_checkpoint(data, out / "zegclip_random.pth")
    settings = [("reference_cpu_fp32", "cpu", "fp32"), (f"{args.device}_fp32", args.device, "fp32"),
                (f"{args.device}_bf16", args.device, "bf16")]
    runs = {name: run(data, out / name, checkpoint, device, precision) for name, device, precision in settings}
    reference = settings[0][0]
    for name, result in runs.items():
        agree = pixel_agreement(out / reference / "predictions" / MODEL, out / name / "predictions" / MODEL)
        metric, diff, moved = largest_difference(runs[reference]["summary"], result["summary"])
        result.update(pixel_agreement_with_cpu=agree, largest_metric_difference=[metric, diff],
                      metrics_that_moved=moved)
        print(f"{name:>18}: {result['images']} images in {result['seconds']} s (loop {result['loop_images_per_s']} "
              f"img/s)  mIoU {result['summary']['mIoU']:.2f}  pixels as on the CPU {100 * agree:.3f}%  "
              f"largest metric difference {diff:.3f} ({metric}; {moved} metrics moved)  ran with {result['run_info']}")
    (out / "parity.json").write_text(json.dumps(runs, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
