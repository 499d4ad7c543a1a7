"""Per-image evaluation: one ground truth and one prediction in, record tables out.

Tables (columns -> 1-D arrays; the caller adds the `image` column):
  pixel    one row per class present in gt or pred: standard counts (+ boundary counts)
  objects  one row per ground-truth object: size columns (+ occlusion columns)
  fp_blobs one row per predicted blob that touches no ground truth of its class
  images   one row: height, width, n_valid (non-ignored pixels)
Every column of `pixel` is additive over images; everything else is per row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.data.dataset import DatasetSpec, check_label_values
from harness.errors import UserError
from harness.metrics import boundary, occlusion, size, standard
from harness.metrics import objects as objects_mod
from harness.evaluation.protocol import Protocol

from harness.evaluation.tables import TABLES  # noqa: F401  (the tables this module fills)


@dataclass
class ImageInputs:
    gt: np.ndarray                       # HxW integer train ids, ignore = dataset.ignore_index
    pred: np.ndarray                     # HxW predicted ids
    instances: np.ndarray | None = None  # HxW instance ids (0 = none)
    amodal: dict | None = None           # instance id -> HxW bool amodal mask


def check_prediction(pred: np.ndarray, gt: np.ndarray, dataset: DatasetSpec, path) -> np.ndarray:
    """A prediction must have the label's size and hold class ids only."""
    if pred.shape != gt.shape:
        raise UserError(f"prediction is {pred.shape[1]}x{pred.shape[0]} (WxH) but its label is "
                        f"{gt.shape[1]}x{gt.shape[0]}", path)
    # The ignore value is allowed in predictions too (mmseg drops those pixels only via the gt).
    check_label_values(pred, dataset.num_classes, dataset.ignore_index, path, what="prediction")
    return pred


def evaluate_image(inputs: ImageInputs, dataset: DatasetSpec, protocol: Protocol) -> dict[str, dict[str, np.ndarray]]:
    gt, pred, ignore = inputs.gt, inputs.pred, dataset.ignore_index
    families = protocol.families
    pixel = standard.image_class_counts(gt, pred, ignore)
    tables = {"pixel": pixel, "objects": {}, "fp_blobs": {},
              "images": {"height": np.array([gt.shape[0]]), "width": np.array([gt.shape[1]]),
                         # every non-ignored gt pixel is in the label area of its class
                         "n_valid": np.array([int(pixel["label_area"].sum())])}}
    if "boundary" in families:
        pixel.update(boundary.image_class_counts(gt, pred, pixel["class"], ignore, families["boundary"]))
    if "size" in families or "occlusion" in families:
        size_cfg = families.get("size") or size.SizeConfig()
        connectivity = size_cfg.connectivity
        objects = objects_mod.extract_objects(gt, ignore, instances=inputs.instances,
                                              thing_mask=dataset.thing_mask, connectivity=connectivity)
        class_fp = (pixel["class"], pixel["pred_area"] - pixel["intersect"])
        rows = size.object_rows(gt, pred, objects, ignore, hit_threshold=size_cfg.hit_threshold, class_fp=class_fp)
        if "occlusion" in families:
            rows.update(occlusion.occlusion_rows(objects, inputs.amodal))
        tables["objects"] = rows
        if "size" in families:
            tables["fp_blobs"] = size.fp_blob_rows(gt, pred, ignore, connectivity=connectivity,
                                                   thing_mask=dataset.thing_mask)
    return tables
