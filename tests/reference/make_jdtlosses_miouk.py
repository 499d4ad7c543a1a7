"""Writes tests/reference/jdtlosses_miouk.json: Wang et al.'s own mIoU^K code (JDTLosses,
metrics/miouk_metric.py, mIoUKMetric with threshold 0) run on the real samples of ../shared/realdata,
for tests/test_segment_level.py. Nothing of JDTLosses is copied: the script imports it from a
checkout given on the command line, at the commit the output records.

    git clone https://github.com/zifuwanggg/JDTLosses /tmp/JDTLosses && git -C /tmp/JDTLosses checkout af6c1f6
    .venv/bin/python tests/reference/make_jdtlosses_miouk.py /tmp/JDTLosses

What goes in (the data loading is zeg-eval's; the metric is theirs):
* labels: each sample's label maps as zeg-eval reads them (harness.data.dataset; ignore value 255);
* segments: COCO panoptic's own panoptic PNGs and segments_info (every segment: things, stuff,
  crowds), with each segment's category given as its class index (semantic133's order); the other
  samples have no panoptic annotation, so each class region of an image is one segment there, the
  definition zeg-eval uses without instances;
* predictions: `shift7` (the label with ignore pixels set to 0, rolled 7 pixels right) and
  `swap_left` (the left half moved to the next class id), as in jdtlosses_miouic.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from helpers.data import reference_prediction  # noqa: E402
from helpers.realdata import REALDATA, write_real_dataset  # noqa: E402

from harness.data.dataset import load_dataset  # noqa: E402

OUT = HERE / "jdtlosses_miouk.json"
SAMPLES = ("coco_panoptic2", "coco_stuff10", "ade20k3")


def panoptic_inputs(name: str, dataset, stem: str, gt: np.ndarray):
    """(segment id map, segments_info) of one image."""
    if name == "coco_panoptic2":
        src = REALDATA / "coco_panoptic_val2017_2"
        rgb = cv2.cvtColor(cv2.imread(str(src / "panoptic" / f"{stem}.png")), cv2.COLOR_BGR2RGB).astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        categories = sorted(c["id"] for c in json.loads((src / "panoptic_coco_categories.json").read_text()))
        index = {cat: i for i, cat in enumerate(categories)}  # semantic133: classes in ascending category id
        anns = json.loads((src / "panoptic_examples.json").read_text())["annotations"]
        ann = next(a for a in anns if Path(a["file_name"]).stem == stem)
        segments = [{"id": s["id"], "category_id": index[s["category_id"]]} for s in ann["segments_info"]]
        return ids, segments
    ids = np.where(gt == 255, 0, gt.astype(np.int64) + 1)  # one segment per class region
    return ids, [{"id": int(c) + 1, "category_id": int(c)} for c in np.unique(gt) if c != 255]


def main(checkout: str) -> None:
    import torch

    checkout = Path(checkout).resolve()
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    sys.path.insert(0, str(checkout))
    from metrics.miouk_metric import mIoUKMetric  # their code, from the checkout
    values = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SAMPLES:
            dataset = load_dataset(write_real_dataset(name, Path(tmp) / name))
            for kind in ("shift7", "swap_left"):
                annos, anno_map, batches = [], {}, []
                for stem in dataset.stems():
                    gt = dataset.load_label(stem).astype(np.int64)
                    ids, segments = panoptic_inputs(name, dataset, stem, gt)
                    anno_map[f"{stem}.png"] = len(annos)
                    annos.append({"file_name": f"{stem}.png", "segments_info": segments})
                    batches.append((stem, gt, ids, reference_prediction(gt, dataset.num_classes, kind)))
                metric = mIoUKMetric(annos, anno_map, dataset.num_classes, ignore_index=255)
                for stem, gt, ids, pred in batches:
                    metric.add(torch.from_numpy(pred)[None], torch.from_numpy(gt)[None], torch.from_numpy(ids)[None],
                               [stem], [f"{stem}.png"])
                plain, worst = metric.value(), metric.value(q=10)
                values[f"{name}/{kind}"] = {"mIoUK": plain["mIoUK"], "mIoUK_worst10": worst["mIoUK10"]}
                print(name, kind, values[f"{name}/{kind}"])
    OUT.write_text(json.dumps({
        "source": f"zifuwanggg/JDTLosses at commit {commit}, metrics/miouk_metric.py (mIoUKMetric(annos, anno_map, "
                  "num_classes, ignore_index=255), threshold 0; value() and value(q=10)), run with torch "
                  f"{torch.__version__} CPU on the real samples of ../shared/realdata by "
                  "tests/reference/make_jdtlosses_miouk.py",
        "note": "JDTLosses computes in float32; compare with a relative tolerance of about 1e-6",
        "segments": "coco_panoptic2: its panoptic PNGs and segments_info (every segment, crowds included); the other "
                    "samples: one segment per class region of an image",
        "predictions": {"shift7": "the label with ignore pixels set to 0, rolled 7 pixels right (np.roll, axis 1)",
                        "swap_left": "the label with ignore pixels set to 0, the left half (columns < W // 2) shifted "
                                     "to the next class id (c + 1) % C"},
        "values": values}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
