"""Per-image evaluation: one ground truth and one prediction in, record tables out.

Tables (columns -> 1-D arrays; the caller adds the `image` column):
  pixel    one row per class present in gt or pred: the standard counts, which every protocol
           records (other families read them), plus any family's additive per-class columns
  images   one row: height, width, n_valid (non-ignored pixels)
  ...      each family's own tables (harness.metrics.registry), e.g. `objects`, `fp_blobs`
Every column of `pixel` is additive over images; everything else is per row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.data.dataset import DatasetSpec, check_label_values
from harness.errors import UserError
from harness.evaluation.protocol import Protocol
from harness.evaluation.tables import TABLES  # noqa: F401  (the tables this module fills)
from harness.metrics.context import ImageContext
from harness.metrics.registry import FAMILIES


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
    ctx = ImageContext(gt=inputs.gt, pred=inputs.pred, ignore_index=dataset.ignore_index,
                       thing_mask=dataset.thing_mask, instances=inputs.instances, amodal=inputs.amodal)
    pixel = dict(ctx.counts())
    tables = {"pixel": pixel,
              "images": {"height": np.array([ctx.gt.shape[0]]), "width": np.array([ctx.gt.shape[1]]),
                         # every non-ignored gt pixel is in the label area of its class
                         "n_valid": np.array([int(pixel["label_area"].sum())])}}
    for name, family in FAMILIES.items():
        if name not in protocol.families:
            continue
        for table, columns in family.image_tables(ctx, protocol.families[name]).items():
            if table == "pixel":
                pixel.update(columns)  # additive per-class columns, in the counts' class order
            else:
                tables[table] = columns
    return tables
