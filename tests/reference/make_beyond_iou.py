"""Writes tests/reference/beyond_iou.json: beyond-iou's own evaluator (Bernhard et al., WACV 2024;
beyond_iou.Evaluator with the settings of its eval.py defaults and the boundary family's: ignore 255,
boundary_width 0.01, boundary_and_trimap_iou_d 0.02, boundary_implementation 'exact') run on the real
samples of ../shared/realdata, for tests/test_metrics_beyond_iou.py. Nothing of beyond-iou is copied:
the script imports it from a checkout given on the command line, at the commit the output records.

    git clone https://github.com/mxbh/beyond-iou /tmp/beyond-iou   # tested at bfd2d7c
    .venv/bin/python tests/reference/make_beyond_iou.py /tmp/beyond-iou

Inputs: each sample's label maps as zeg-eval reads them (harness.data.dataset) and the `shift7` and
`swap_left` predictions of tests/helpers/data.py, as uint8 maps (what its loader's cv2.imread gives).
Outputs: per class (beyond-iou's Result.dataframe, fractions) and its `mean` row.
"""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from helpers.data import reference_prediction  # noqa: E402
from helpers.realdata import write_real_dataset  # noqa: E402

from harness.data.dataset import load_dataset  # noqa: E402

OUT = HERE / "beyond_iou.json"
SAMPLES = ("coco_panoptic2", "coco_stuff10", "ade20k3")
COLUMNS = ("boundary_IoU", "trimap_IoU", "E_boundary_oU", "E_extent_oU", "E_segment_oU", "FP_boundary_oU",
           "FN_boundary_oU", "FP_extent_oU", "FN_extent_oU", "FP_segment_oU", "FN_segment_oU",
           "E_boundary_oU_renormed", "E_extent_oU_renormed", "IoU")


def _clean(value: float):
    return None if not math.isfinite(value) else float(value)


def main(checkout: str) -> None:
    checkout = Path(checkout).resolve()
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    sys.path.insert(0, str(checkout))
    from beyond_iou import Evaluator  # their code, from the checkout

    values = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SAMPLES:
            dataset = load_dataset(write_real_dataset(name, Path(tmp) / name))
            for kind in ("shift7", "swap_left"):
                pairs = []
                for stem in dataset.stems():
                    gt = dataset.load_label(stem).astype(np.int64)
                    pred = reference_prediction(gt, dataset.num_classes, kind)
                    pairs.append((pred.astype(np.uint8), gt.astype(np.uint8)))
                evaluator = Evaluator(class_names=list(dataset.classes), ignore_index=255, boundary_width=0.01,
                                      boundary_and_trimap_iou_d=0.02, boundary_implementation="exact")
                with redirect_stdout(io.StringIO()):  # it prints its whole table
                    frame = evaluator.evaluate(pairs).dataframe
                per_class = {column: {cls: _clean(frame.loc[cls, column]) for cls in dataset.classes
                                      if math.isfinite(frame.loc[cls, column])} for column in COLUMNS}
                mean = {column: _clean(frame.loc["mean", column]) for column in COLUMNS}
                values[f"{name}/{kind}"] = {"mean": mean, "per_class": per_class}
                print(name, kind, {k: round(v, 6) for k, v in mean.items() if v is not None})
    OUT.write_text(json.dumps({
        "source": f"mxbh/beyond-iou at commit {commit}, beyond_iou.Evaluator(class_names, ignore_index=255, "
                  "boundary_width=0.01, boundary_and_trimap_iou_d=0.02, boundary_implementation='exact')"
                  ".evaluate(pairs).dataframe, run on the real samples of ../shared/realdata by "
                  "tests/reference/make_beyond_iou.py",
        "units": "fractions (zeg-eval reports percent)",
        "predictions": {"shift7": "the label with ignore pixels set to 0, rolled 7 pixels right (np.roll, axis 1)",
                        "swap_left": "the label with ignore pixels set to 0, the left half (columns < W // 2) shifted "
                                     "to the next class id (c + 1) % C"},
        "values": values}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
