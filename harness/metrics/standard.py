"""The standard family: mmseg `IoUMetric` semantics, plus the zero-shot seen/unseen split.

Accumulation (mmseg 1.x `IoUMetric.intersect_and_union` / `total_area_to_metrics`): per image, pixels
whose label is the ignore value are dropped; per class the areas of intersection, union, prediction
and label are summed over the whole dataset, and only then turned into ratios. A class absent from
both ground truth and prediction has 0/0 = NaN and is skipped by the class means (nanmean); a class
predicted but absent from the ground truth has IoU 0 and counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics.family import (
    Family,
    FamilySummary,
    MetricInfo,
    SummaryInputs,
    check_number,
)
from harness.metrics.histogram import byte_pair_counts

COUNT_COLUMNS = ("intersect", "pred_area", "label_area")


@dataclass(frozen=True)
class StandardConfig:
    beta: float = 1.0  # F-score beta, as mmseg's IoUMetric

    def __post_init__(self):
        check_number(self, "beta", low=0, low_open=True)


def image_class_counts(gt: np.ndarray, pred: np.ndarray, ignore_index: int) -> dict[str, np.ndarray]:
    """Per-class pixel counts of one image, for the classes present in `gt` or `pred` only.

    gt, pred: non-negative integer maps of equal shape; gt pixels equal to `ignore_index` are dropped
    (from both). Returns columns `class`, `intersect` = |P_c ∩ G_c|, `pred_area` = |P_c|,
    `label_area` = |G_c| (all int64, one row per class present), so the record and the cost do not
    grow with the classes of the dataset. Union is pred_area + label_area - intersect.
    """
    if gt.size and max(int(gt.max()), int(pred.max())) < 256 and min(int(gt.min()), int(pred.min())) >= 0:
        # ids fit a byte: one 256x256 histogram of (gt, pred) pairs, with the ignore row dropped after
        confusion = byte_pair_counts(gt, pred)
        if 0 <= ignore_index < 256:
            confusion[ignore_index] = 0
        label_area, pred_area = confusion.sum(1), confusion.sum(0)
        classes = np.flatnonzero((label_area > 0) | (pred_area > 0))
        intersect = np.diag(confusion)
    else:
        valid = gt != ignore_index
        g = gt[valid].astype(np.intp, copy=False)
        p = pred[valid].astype(np.intp, copy=False)
        # Compact the ids present to 0..k-1 with a lookup table (O(pixels), no sort), so the
        # confusion histogram is k x k for the k classes present, not C x C for the dataset's.
        size = int(max(g.max(initial=0), p.max(initial=0))) + 1
        present = (np.bincount(g, minlength=size) > 0) | (np.bincount(p, minlength=size) > 0)
        present_ids = np.flatnonzero(present)
        lut = np.zeros(size, dtype=np.intp)
        lut[present_ids] = np.arange(present_ids.size)
        k = present_ids.size
        small = np.bincount(lut[g] * k + lut[p], minlength=k * k).reshape(k, k)
        label_area, pred_area, intersect = (np.zeros(size, np.int64) for _ in range(3))
        label_area[present_ids], pred_area[present_ids], intersect[present_ids] = small.sum(1), small.sum(0), np.diag(small)
        classes = present_ids
    # A prediction equal to the ignore value belongs to no class (mmseg counts it nowhere); its
    # pixels still count in the label area of their ground-truth class.
    classes = classes[classes != ignore_index]
    return {"class": classes.astype(np.int64), "intersect": intersect[classes].astype(np.int64),
            "pred_area": pred_area[classes].astype(np.int64), "label_area": label_area[classes].astype(np.int64)}


def per_class_metrics(intersect, pred_area, label_area, beta: float = 1.0) -> dict[str, np.ndarray]:
    """Per-class ratios in percent from dataset-summed counts (arrays of shape [..., C]).

    IoU = I / (P + L - I); Acc = Recall = I / L; Dice = 2I / (P + L); Precision = I / P;
    Fscore = (1 + beta²) Precision Recall / (beta² Precision + Recall)  (mmseg's definitions).
    0/0 gives NaN (class absent from both), as in mmseg.
    """
    i, p, l = (np.asarray(a, dtype=np.float64) for a in (intersect, pred_area, label_area))
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = i / (p + l - i)
        recall = i / l
        precision = i / p
        dice = 2 * i / (p + l)
        fscore = (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
    return {"IoU": 100 * iou, "Acc": 100 * recall, "Dice": 100 * dice, "Fscore": 100 * fscore,
            "Precision": 100 * precision, "Recall": 100 * recall}


def nanmean_classes(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean over the class axis (last) skipping NaN classes; `mask` selects a subset (e.g. unseen)."""
    values = np.asarray(values, dtype=np.float64)
    if mask is not None:
        values = values[..., np.asarray(mask, dtype=bool)]
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summary(intersect, pred_area, label_area, unseen_mask=None, beta: float = 1.0) -> dict[str, np.ndarray]:
    """Dataset metrics from summed counts [..., C]: aAcc, mIoU, mAcc, mDice, mFscore, mPrecision,
    mRecall and, when `unseen_mask` (bool [C]) marks at least one class, mIoU_seen, mIoU_unseen, hIoU.

    aAcc = Σ_c I_c / Σ_c L_c (overall pixel accuracy over non-ignored pixels).
    """
    per_class = per_class_metrics(intersect, pred_area, label_area, beta)
    i = np.asarray(intersect, dtype=np.float64)
    l = np.asarray(label_area, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"aAcc": 100 * i.sum(-1) / l.sum(-1)}
    for name in ("IoU", "Acc", "Dice", "Fscore", "Precision", "Recall"):
        out["m" + name] = nanmean_classes(per_class[name])
    if unseen_mask is not None and np.any(unseen_mask):
        unseen_mask = np.asarray(unseen_mask, dtype=bool)
        seen = nanmean_classes(per_class["IoU"], ~unseen_mask)
        unseen = nanmean_classes(per_class["IoU"], unseen_mask)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where((seen + unseen) > 0, 2 * seen * unseen / (seen + unseen), np.nan)
        out.update(mIoU_seen=seen, mIoU_unseen=unseen, hIoU=h)
    return out


# ---------------------------------------------------------------------------------------------
# the family


class StandardFamily(Family):
    """mmseg's IoUMetric (its per-class counts are the pixel table's key columns, written for
    every protocol: other families read them), with the seen/unseen split of zero-shot papers."""

    name = "standard"
    config_type = StandardConfig

    def summarize(self, inputs: SummaryInputs, cfg: StandardConfig) -> FamilySummary:
        counts = [inputs.pixel_sums[c] for c in COUNT_COLUMNS]
        unseen = inputs.classes.unseen
        scalars = {k: float(v) for k, v in summary(*counts, unseen, cfg.beta).items()}
        per_class = dict(per_class_metrics(*counts, cfg.beta))
        per_class["pixels"] = inputs.pixel_sums["label_area"]
        return FamilySummary(scalars=scalars, per_class=per_class)

    def resampled(self, inputs: SummaryInputs, cfg: StandardConfig, resampling) -> dict[str, np.ndarray]:
        sums = resampling.class_sums(inputs.tables["pixel"], COUNT_COLUMNS, inputs.classes.num_classes)
        return summary(*(sums[c] for c in COUNT_COLUMNS), inputs.classes.unseen, cfg.beta)

    def metrics(self, cfg: StandardConfig) -> tuple[MetricInfo, ...]:
        mmseg = "mmseg IoUMetric (dataset-summed counts, nanmean over classes)"
        info = [MetricInfo("aAcc", self.name, definition="pixel accuracy: Σ_c I_c / Σ_c L_c over non-ignored pixels",
                           source=mmseg),
                MetricInfo("mIoU", self.name, definition="mean over classes of I_c / (P_c + L_c - I_c)", source=mmseg)]
        for name, formula in (("mAcc", "I_c / L_c"), ("mDice", "2 I_c / (P_c + L_c)"),
                              ("mFscore", f"F-beta (beta = {cfg.beta:g}) of precision and recall"),
                              ("mPrecision", "I_c / P_c"), ("mRecall", "I_c / L_c")):
            info.append(MetricInfo(name, self.name, definition=f"mean over classes of {formula}", source=mmseg))
        info += [MetricInfo("mIoU_seen", self.name, definition="mIoU over the seen classes", source="ZegCLIP (Zhou et al., CVPR 2023)"),
                 MetricInfo("mIoU_unseen", self.name, definition="mIoU over the unseen classes",
                            source="ZegCLIP (Zhou et al., CVPR 2023)"),
                 MetricInfo("hIoU", self.name, definition="harmonic mean of mIoU_seen and mIoU_unseen",
                            source="ZegCLIP (Zhou et al., CVPR 2023); Xian et al. 2019")]
        return tuple(info)
