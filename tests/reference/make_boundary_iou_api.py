"""Writes tests/reference/boundary_iou_api.json: Boundary IoU with boundary-iou-api's own band
(boundary_iou/utils/boundary_utils.py, mask_to_boundary, dilation_ratio 0.02: each binary mask padded
with zeros, so the image border is a boundary) on the real samples of ../shared/realdata, for
tests/test_metrics_boundary_api.py. Nothing of boundary-iou-api is copied: the script imports it from
a checkout given on the command line, at the commit the output records.

    git clone https://github.com/bowenc0221/boundary-iou-api /tmp/biou   # tested at 37d2558
    .venv/bin/python tests/reference/make_boundary_iou_api.py /tmp/biou

boundary-iou-api evaluates instances (COCO, LVIS, Cityscapes); it has no semantic evaluator. The glue
here is the semantic one every Boundary IoU for semantic segmentation uses (and zeg-eval's
boundary_IoU, the beyond-iou convention): per class c, G = (gt == c) and P = (pred == c) as uint8
masks, their bands from mask_to_boundary, intersection |G_b ∩ P_b| and union |G_b ∪ P_b| counted on
pixels whose gt is not the ignore value 255 and summed over the images of a sample; per-class IoU =
100 · ΣI / ΣU (classes with ΣU = 0 have none); the mean over the classes that have one.
Predictions: `shift7` and `swap_left` of tests/helpers/data.py (as in jdtlosses_miouk.json).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from helpers.data import reference_prediction  # noqa: E402
from helpers.realdata import write_real_dataset  # noqa: E402

from harness.data.dataset import load_dataset  # noqa: E402

OUT = HERE / "boundary_iou_api.json"
SAMPLES = ("coco_panoptic2", "coco_stuff10", "ade20k3")
IGNORE = 255


def main(checkout: str) -> None:
    checkout = Path(checkout).resolve()
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    sys.path.insert(0, str(checkout))
    from boundary_iou.utils.boundary_utils import mask_to_boundary  # their code, from the checkout

    values = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SAMPLES:
            dataset = load_dataset(write_real_dataset(name, Path(tmp) / name))
            for kind in ("shift7", "swap_left"):
                inter = np.zeros(dataset.num_classes, np.int64)
                union = np.zeros(dataset.num_classes, np.int64)
                for stem in dataset.stems():
                    gt = dataset.load_label(stem).astype(np.int64)
                    pred = reference_prediction(gt, dataset.num_classes, kind)
                    valid = gt != IGNORE
                    for c in np.union1d(np.unique(gt[valid]), np.unique(pred)):
                        if c == IGNORE or c >= dataset.num_classes:
                            continue
                        g_band = mask_to_boundary((gt == c).astype(np.uint8)).astype(bool)
                        p_band = mask_to_boundary((pred == c).astype(np.uint8)).astype(bool)
                        inter[c] += int((g_band & p_band & valid).sum())
                        union[c] += int(((g_band | p_band) & valid).sum())
                has = union > 0
                per_class = {dataset.classes[c]: 100.0 * inter[c] / union[c] for c in np.flatnonzero(has)}
                values[f"{name}/{kind}"] = {"boundary_IoU_padded": float(np.mean(list(per_class.values()))),
                                            "per_class": per_class}
                print(name, kind, values[f"{name}/{kind}"]["boundary_IoU_padded"])
    OUT.write_text(json.dumps({
        "source": f"bowenc0221/boundary-iou-api at commit {commit}, boundary_iou/utils/boundary_utils.py "
                  "(mask_to_boundary(mask, dilation_ratio=0.02)) per class, run on the real samples of "
                  "../shared/realdata by tests/reference/make_boundary_iou_api.py",
        "glue": "per class: bands of (gt == c) and (pred == c) from mask_to_boundary; I and U counted where gt != "
                "255, summed over images; 100 * I / U per class; mean over classes with U > 0",
        "predictions": {"shift7": "the label with ignore pixels set to 0, rolled 7 pixels right (np.roll, axis 1)",
                        "swap_left": "the label with ignore pixels set to 0, the left half (columns < W // 2) shifted "
                                     "to the next class id (c + 1) % C"},
        "values": values}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
