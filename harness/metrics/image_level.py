"""The image-level family: mIoU per image and per class, and their worst cases (Wang et al.,
"Revisiting Evaluation Metrics for Semantic Segmentation", NeurIPS 2023).

Dataset mIoU sums counts over all images, so large images and frequent classes dominate it.
These metrics average IoUs computed image by image instead, as Wang et al.'s code computes them
(JDTLosses, commit af6c1f6, metrics/miouic_metric.py, the multi-class case):

* per image i: pixels whose ground truth is the ignore value are dropped; for every class c present
  in the image's ground truth, IoU_ic = |P_c ∩ G_c| / |P_c ∪ G_c| (classes only predicted do not
  count); an image with no labelled pixel is skipped;
* mIoU_I = mean over images of the image's mean IoU_ic over its classes;
* mIoU_C = mean over classes of the class's mean IoU_ic over the images whose ground truth holds it
  (classes in no image's ground truth are left out);
* worst-case forms over the worst q% (q = 100 x worst_fraction): mIoU_I_worst<q> = the mean of the
  n = max(1, int(q / 100 x N)) lowest image values; mIoU_C_worst<q> = per class the mean of its
  max(1, int(q / 100 x N_c)) lowest values, then the mean over classes.

Wang et al.'s code treats two-class (binary) datasets differently (the foreground class only);
zeg-eval always uses the multi-class definition above. A predicted pixel holding the ignore value
belongs to no class (as in the standard family).

Per image the family records one row per class of the ground truth (`image_classes`: class, iou),
so every value can be recomputed or resampled from the records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.metrics.family import (
    Family,
    FamilySummary,
    MetricInfo,
    SummaryInputs,
    check_number,
)
from harness.metrics.resampling import ratio
from harness.metrics.standard import nanmean_classes

SOURCE = "Wang et al., NeurIPS 2023 (JDTLosses af6c1f6, miouic_metric.py)"


@dataclass(frozen=True)
class ImageLevelConfig:
    worst_fraction: float = 0.1   # the worst 10% of images (of each class's images for mIoU_C)

    def __post_init__(self):
        check_number(self, "worst_fraction", low=0, low_open=True, high=1)

    @property
    def percent(self) -> float:
        return round(100 * self.worst_fraction, 6)


def image_class_iou(intersect: np.ndarray, pred_area: np.ndarray, label_area: np.ndarray) -> np.ndarray:
    """IoU (0..1) of each class present in one image's ground truth: I / (P + L - I)."""
    i, p, l = (np.asarray(a, dtype=np.float64) for a in (intersect, pred_area, label_area))
    return i / (p + l - i)


def worst_count(n: int, percent: float) -> int:
    """How many of n values the worst `percent`% holds: max(1, floor(percent / 100 * n)), as Wang et al."""
    return max(1, int(percent / 100 * n))


def mean_of_lowest(values: np.ndarray, percent: float | None) -> float:
    """Mean of all values (percent None) or of the worst_count lowest ones; NaN when empty."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if values.size == 0:
        return math.nan
    if percent is not None:
        values = values[: worst_count(values.size, percent)]
    return float(values.mean())


def class_means(cls: np.ndarray, values: np.ndarray, num_classes: int, percent: float) -> tuple[np.ndarray, list]:
    """Per class the mean of its rows' values ([C], NaN for a class with no row) and, for the classes
    with rows, the mean of their worst `percent`% (mean_of_lowest): Wang et al.'s class-level means."""
    cls = np.asarray(cls, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    per_class = np.full(num_classes, np.nan)
    worst = []
    for c in np.unique(cls):
        of_class = values[cls == c]
        per_class[c] = of_class.mean()
        worst.append(mean_of_lowest(of_class, percent))
    return per_class, worst


def resampled_class_mean(resampling, rows, num_classes: int) -> np.ndarray:
    """[B] percent: per class the resampled mean of its rows' `iou`, then the mean over the classes
    with rows (the resampled form of class_means' per-class values, averaged)."""
    sums = resampling.class_sums(rows.assign(one=1.0), ["iou", "one"], num_classes)
    return 100 * nanmean_classes(ratio(sums["iou"], sums["one"]))


def image_level_summary(image: np.ndarray, cls: np.ndarray, iou: np.ndarray, num_classes: int,
                        percent: float) -> tuple[dict[str, float], np.ndarray]:
    """Scalars (percent) and the per-class mean IoU [C] (NaN for classes in no ground truth) from the
    rows (image, class, iou) of every image (see the module docstring for the definitions)."""
    image = np.asarray(image)
    cls = np.asarray(cls, dtype=np.int64)
    iou = np.asarray(iou, dtype=np.float64)
    _, image_index = np.unique(image, return_inverse=True)
    per_image = (np.bincount(image_index, weights=iou) / np.bincount(image_index)) if iou.size else np.zeros(0)
    per_class, worst_class = class_means(cls, iou, num_classes, percent)
    q = f"{percent:g}"
    scalars = {"mIoU_I": 100 * mean_of_lowest(per_image, None),
               f"mIoU_I_worst{q}": 100 * mean_of_lowest(per_image, percent),
               "mIoU_C": 100 * float(np.nanmean(per_class)) if np.isfinite(per_class).any() else math.nan,
               f"mIoU_C_worst{q}": 100 * float(np.mean(worst_class)) if worst_class else math.nan}
    return scalars, 100 * per_class


class ImageLevelFamily(Family):
    """mIoU_I, mIoU_C and their worst-case forms (see the module docstring)."""

    name = "image_level"
    config_type = ImageLevelConfig
    tables = ("image_classes",)

    def image_tables(self, ctx, cfg: ImageLevelConfig) -> dict:
        counts = ctx.counts()
        present = counts["label_area"] > 0  # classes of the ground truth (ignore pixels dropped)
        iou = image_class_iou(counts["intersect"][present], counts["pred_area"][present], counts["label_area"][present])
        return {"image_classes": {"class": counts["class"][present], "iou": iou}}

    def summarize(self, inputs: SummaryInputs, cfg: ImageLevelConfig) -> FamilySummary:
        rows = inputs.tables.get("image_classes")
        if rows is None or not len(rows):
            image, cls, iou = np.array([], dtype=object), np.array([], dtype=np.int64), np.array([])
        else:
            image, cls, iou = rows["image"].to_numpy(), rows["class"].to_numpy(), rows["iou"].to_numpy()
        scalars, per_class = image_level_summary(image, cls, iou, inputs.classes.num_classes, cfg.percent)
        return FamilySummary(scalars=scalars, per_class={"IoU_C": per_class})

    def resampled(self, inputs: SummaryInputs, cfg: ImageLevelConfig, resampling) -> dict[str, np.ndarray]:
        """mIoU_I and mIoU_C (their worst-case forms have no interval): weighted sums of the rows."""
        rows = inputs.tables.get("image_classes")
        if rows is None or not len(rows):
            return {}
        iou = rows["iou"].to_numpy(dtype=np.float64)
        rows_of_image = rows.groupby("image")["iou"].transform("size").to_numpy(dtype=np.float64)
        # Σ_i w_i * (image i's mean IoU) and Σ_i w_i over the images with classes
        image_sums = resampling.sums(rows, np.stack([iou / rows_of_image, 1 / rows_of_image], axis=1))
        return {"mIoU_I": 100 * ratio(image_sums[:, 0], image_sums[:, 1]),
                "mIoU_C": resampled_class_mean(resampling, rows, inputs.classes.num_classes)}

    def metrics(self, cfg: ImageLevelConfig) -> tuple[MetricInfo, ...]:
        q = f"{cfg.percent:g}"
        return (MetricInfo("mIoU_I", self.name, definition="mean over images of the image's mean IoU over the classes "
                           "of its ground truth", source=SOURCE),
                MetricInfo("mIoU_C", self.name, definition="mean over classes of the class's mean IoU over the images "
                           "whose ground truth holds it", source=SOURCE),
                MetricInfo(f"mIoU_I_worst{q}", self.name, interval=False,
                           definition=f"mIoU_I over the worst {q}% of images", source=SOURCE),
                MetricInfo(f"mIoU_C_worst{q}", self.name, interval=False,
                           definition=f"per class the mean of its worst {q}% image IoUs, then the mean over classes",
                           source=SOURCE))
