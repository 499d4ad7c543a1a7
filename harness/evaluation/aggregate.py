"""Aggregation: a model's per-image records in, its dataset metrics out (pure; no model needed)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.data.dataset import DatasetSpec
from harness.metrics import standard
from harness.evaluation.protocol import Protocol


@dataclass
class ModelSummary:
    scalars: dict          # metric name -> value (percent) or count
    per_class: pd.DataFrame  # one row per class of the dataset
    per_bucket: pd.DataFrame  # one row per (family, bucket kind, bucket)


def class_sums(pixel: pd.DataFrame, num_classes: int) -> dict[str, np.ndarray]:
    """Every count column of the pixel table summed over images, as a dense [C] array per column."""
    columns = [c for c in pixel.columns if c not in ("image", "class")]
    sums = {c: np.zeros(num_classes, dtype=np.int64) for c in columns}
    if len(pixel):
        grouped = pixel.groupby("class")[columns].sum()
        index = grouped.index.to_numpy()
        for c in columns:
            sums[c][index] = grouped[c].to_numpy()
    return sums


def summarize(tables: dict[str, pd.DataFrame], dataset: DatasetSpec, protocol: Protocol) -> ModelSummary:
    families = protocol.families
    unseen = dataset.unseen_mask if dataset.unseen else None
    sums = class_sums(tables["pixel"], dataset.num_classes)
    scalars: dict[str, float] = {}
    per_class = pd.DataFrame({"class_id": np.arange(dataset.num_classes), "class": list(dataset.classes),
                              "split": np.where(dataset.unseen_mask, "unseen", "seen") if dataset.unseen else "all"})
    buckets = []
    n_images = len(tables["images"])
    scalars["n_images"] = n_images
    if "standard" in families:
        i, p, l = (sums.get(c, np.zeros(dataset.num_classes, dtype=np.int64)) for c in standard.COUNT_COLUMNS)
        scalars.update({k: float(v) for k, v in standard.summary(i, p, l, unseen, families["standard"].beta).items()})
        for name, values in standard.per_class_metrics(i, p, l, families["standard"].beta).items():
            per_class[name] = values
        per_class["pixels"] = l
    if "boundary" in families:
        from harness.metrics import boundary

        bsums = {k: v for k, v in sums.items() if k not in standard.COUNT_COLUMNS}
        scalars.update({k: float(v) for k, v in boundary.summary(bsums, unseen).items()})
        for name, values in boundary.per_class_metrics(bsums).items():
            per_class[name] = values
    objects = tables["objects"]
    if "size" in families:
        from harness.metrics import size

        pixel = tables["pixel"]
        # Cityscapes' iIoU counts every false-positive pixel of a class, also in images where the
        # class has no object: per-class FP = prediction area - intersection, from the pixel records.
        pixel_fp = (pd.DataFrame({"class": pixel["class"], "fp": pixel["pred_area"] - pixel["intersect"]})
                    if {"pred_area", "intersect"} <= set(pixel.columns) else None)
        values, table = size.size_summary(objects, tables["fp_blobs"], n_images, families["size"], pixel_fp=pixel_fp)
        scalars.update(values)
        buckets.append(table.assign(family="size"))
    if "occlusion" in families:
        from harness.metrics import occlusion

        values, table = occlusion.occlusion_summary(objects, families["occlusion"])
        scalars.update(values)
        buckets.append(table.assign(family="occlusion"))
    per_bucket = pd.concat(buckets, ignore_index=True) if buckets else pd.DataFrame()
    return ModelSummary(scalars=scalars, per_class=per_class, per_bucket=per_bucket)
