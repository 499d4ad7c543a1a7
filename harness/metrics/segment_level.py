"""The segment-level family: mIoU^K and its worst case (Wang et al., "Revisiting Evaluation Metrics
for Semantic Segmentation", NeurIPS 2023), as their code computes them (JDTLosses, commit af6c1f6,
metrics/miouk_metric.py, mIoUKMetric with threshold 0).

Every ground-truth segment of an image counts, stuff and crowd regions included:
* segments: each instance of the dataset's instance map (its class: the majority of its labelled
  pixels), and, per class, the class's labelled pixels outside every instance as one segment (a
  stuff region, a crowd region, unlabelled instance pixels: one segment per class per image, as
  COCO panoptic files have them). Without an instance map every class region of an image is one
  segment; mIoU^K then equals the image-level mIoU_C. Pixels whose ground truth is the ignore value
  are dropped;
* per segment k of class c in image i: I_k = |P_c ∩ S_k|, FN_k = |S_k| - I_k, and the image's false
  positives of class c (FP_ic = |P_c| - |P_c ∩ G_c|) shared by area over the class's whole label
  area in the image, FP_k = |S_k| / |G_ic| x FP_ic; IoU_k = I_k / (I_k + FN_k + FP_k);
* mIoUK = mean over classes (with at least one segment) of the mean IoU_k of the class's segments;
  mIoUK_worst<q> = per class the mean of its n = max(1, int(q / 100 x N_c)) lowest IoU_k, then the
  mean over classes.

zeg-eval's own object IoU (the size family's `object_IoU` and `class_mean_object_IoU`) differs: its
objects are the thing instances or components only, and it shares a class's false positives over the
class's objects' area instead of its whole label area. A predicted pixel holding the ignore value
belongs to no class (as in the standard family).

Per image the family records one row per segment (`segments`: class, area, iou).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.metrics.family import Family, FamilySummary, MetricInfo, SummaryInputs, check_number
from harness.metrics.histogram import label_counts
from harness.metrics.image_level import class_means, resampled_class_mean

SOURCE = "Wang et al., NeurIPS 2023 (JDTLosses af6c1f6, miouk_metric.py)"


@dataclass(frozen=True)
class SegmentLevelConfig:
    worst_fraction: float = 0.1   # the worst 10% of each class's segments

    def __post_init__(self):
        check_number(self, "worst_fraction", low=0, low_open=True, high=1)

    @property
    def percent(self) -> float:
        return round(100 * self.worst_fraction, 6)


def segment_rows(gt: np.ndarray, pred: np.ndarray, instances: np.ndarray | None, ignore_index: int,
                 label_area: np.ndarray, class_fp: np.ndarray,
                 intersect: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One image's segments (see the module docstring): class, area and IoU of each.

    label_area, class_fp (and intersect, |P_c ∩ G_c|): the image's per-class counts, dense over the
    class ids (the standard counts). Without instances every class region is a segment, and its
    values are these counts themselves; with instances, only the instances' pixels are visited."""
    label_area = np.asarray(label_area, dtype=np.int64)
    class_fp = np.asarray(class_fp, dtype=np.float64)
    num_classes = len(label_area)
    valid = gt != ignore_index
    if intersect is None:
        intersect = label_counts(gt[valid & (pred == gt)], num_classes)
    if instances is None or not instances.any():
        present = np.flatnonzero(label_area)
        return _rows(present, label_area[present], intersect[present], label_area, class_fp)
    inside = valid & (instances > 0)
    labels = gt[inside].astype(np.int64)
    ids, segment = np.unique(instances[inside], return_inverse=True)
    n = ids.size
    area = np.bincount(segment, minlength=n)
    votes = label_counts(segment * num_classes + labels, n * num_classes).reshape(n, num_classes)
    cls = votes.argmax(axis=1)  # an instance's class: the majority of its labelled pixels
    hits = np.bincount(segment, weights=pred[inside].astype(np.int64) == cls[segment], minlength=n)
    # per class, its labelled pixels outside every instance: one segment (stuff, crowd, unlabelled)
    rest_area = label_area - label_counts(labels, num_classes)
    rest_hits = intersect - label_counts(labels[pred[inside] == labels], num_classes)
    rest = np.flatnonzero(rest_area)
    return _rows(np.concatenate([cls, rest]), np.concatenate([area, rest_area[rest]]),
                 np.concatenate([hits, rest_hits[rest]]), label_area, class_fp)


def _rows(cls: np.ndarray, area: np.ndarray, hits: np.ndarray, label_area: np.ndarray,
          class_fp: np.ndarray) -> dict[str, np.ndarray]:
    """IoU_k = I_k / (|S_k| + |S_k| / |G_c| x FP_c) of each segment (I_k + FN_k = |S_k|)."""
    cls = np.asarray(cls, dtype=np.int64)
    area = np.asarray(area, dtype=np.int64)
    fp = area / label_area[cls] * class_fp[cls]
    return {"class": cls, "area": area, "iou": np.asarray(hits, dtype=np.float64) / (area + fp)}


def segment_level_summary(cls: np.ndarray, iou: np.ndarray, num_classes: int,
                          percent: float) -> tuple[dict[str, float], np.ndarray]:
    """mIoUK, mIoUK_worst<q> (percent) and the per-class mean segment IoU [C] (NaN for a class with no
    segment) from every segment's (class, iou)."""
    per_class, worst = class_means(cls, iou, num_classes, percent)
    q = f"{percent:g}"
    scalars = {"mIoUK": 100 * float(np.nanmean(per_class)) if np.isfinite(per_class).any() else math.nan,
               f"mIoUK_worst{q}": 100 * float(np.mean(worst)) if worst else math.nan}
    return scalars, 100 * per_class


class SegmentLevelFamily(Family):
    """mIoU^K and its worst case over every ground-truth segment (see the module docstring)."""

    name = "segment_level"
    config_type = SegmentLevelConfig
    tables = ("segments",)

    def image_tables(self, ctx, cfg: SegmentLevelConfig) -> dict:
        counts = ctx.counts()
        size = int(counts["class"].max(initial=-1)) + 1  # every class of the ground truth or the prediction
        dense = {}
        for column in ("label_area", "pred_area", "intersect"):
            dense[column] = np.zeros(size, np.int64)
            dense[column][counts["class"]] = counts[column]
        return {"segments": segment_rows(ctx.gt, ctx.pred, ctx.instances, ctx.ignore_index, dense["label_area"],
                                         dense["pred_area"] - dense["intersect"], dense["intersect"])}

    def summarize(self, inputs: SummaryInputs, cfg: SegmentLevelConfig) -> FamilySummary:
        rows = inputs.tables.get("segments")
        cls = rows["class"].to_numpy() if rows is not None and len(rows) else np.zeros(0, np.int64)
        iou = rows["iou"].to_numpy() if rows is not None and len(rows) else np.zeros(0)
        scalars, per_class = segment_level_summary(cls, iou, inputs.classes.num_classes, cfg.percent)
        return FamilySummary(scalars=scalars, per_class={"IoU_K": per_class})

    def resampled(self, inputs: SummaryInputs, cfg: SegmentLevelConfig, resampling) -> dict[str, np.ndarray]:
        """mIoUK (its worst case has no interval): per class the weighted mean of its segments' IoU."""
        rows = inputs.tables.get("segments")
        if rows is None or not len(rows):
            return {}
        return {"mIoUK": resampled_class_mean(resampling, rows, inputs.classes.num_classes)}

    def metrics(self, cfg: SegmentLevelConfig) -> tuple[MetricInfo, ...]:
        q = f"{cfg.percent:g}"
        return (MetricInfo("mIoUK", self.name, definition="mean over classes of the mean IoU of the class's ground-truth "
                           "segments (instances, and per class the pixels outside them), the image's false positives "
                           "of the class shared by area over its label area", source=SOURCE),
                MetricInfo(f"mIoUK_worst{q}", self.name, interval=False,
                           definition=f"per class the mean of its worst {q}% segment IoUs, then the mean over classes",
                           source=SOURCE))
