"""The size family: how well each ground-truth object is found, by object size.

Per image (pure, numpy): `object_rows` gives one row per ground-truth object (area, box, pixel
recall, IoU with the class's false positives apportioned by area, hit), `fp_blob_rows` one row per
predicted blob that overlaps no ground truth of its class. Per dataset: `size_summary` buckets the
object rows by absolute area (COCO), relative area and dataset percentiles and reports percentages.

Conventions (details and references in docs/metrics_objects.md):
* buckets are half-open [lo, hi) on the object's visible, non-ignored pixel count at label
  resolution; COCO's small/medium/large edges 32² and 96² by default;
* object IoU follows mIoU^K of Wang et al. 2023: IoU_k = TP_k / (|G_k| + FP_c |G_k| / Σ_j |G_j|),
  the image's false positives of class c shared among the class's objects in proportion to area;
* hit = pixel recall >= hit_threshold (0.5);
* iIoU is cityscapesScripts': TP and FN weighted by mean class object area / object area, FP
  every false-positive pixel of the class, unweighted; mean over the instance classes whose
  denominator is not 0 (see `iiou`);
* ratios are reported in percent (like mmseg); counts and per-image rates are plain numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from harness.metrics.buckets import bucket_masks, in_bucket
from harness.metrics.family import (
    COUNT,
    PER_IMAGE,
    PIXELS,
    Family,
    FamilySummary,
    MetricInfo,
    SummaryInputs,
    check_buckets,
    check_choice,
    check_number,
)
from harness.metrics.histogram import label_counts
from harness.metrics.objects import ObjectMap, components
from harness.metrics.resampling import ratio

if TYPE_CHECKING:
    import pandas as pd


def coco_buckets():
    """COCO's area ranges in pixels (small < 32², medium < 96², large), the default size buckets."""
    return {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, None)}


def _relative_buckets():
    # share of the image's area (H*W at label resolution)
    return {"rel_tiny": (0.0, 0.001), "rel_small": (0.001, 0.01), "rel_medium": (0.01, 0.1), "rel_large": (0.1, None)}


@dataclass(frozen=True)
class SizeConfig:
    buckets: dict = field(default_factory=coco_buckets)          # area in pixels: [lo, hi)
    relative_buckets: dict = field(default_factory=_relative_buckets)  # share of image: [lo, hi)
    percentiles: tuple = (100 / 3, 200 / 3)                         # dataset percentiles of object area
    hit_threshold: float = 0.5                                      # hit = pixel recall >= this
    worst_fraction: float = 0.1                                     # mean IoU of the worst 10% objects
    connectivity: int = 8

    def __post_init__(self):
        check_buckets(self, "buckets", low=0)
        check_buckets(self, "relative_buckets", low=0, high=1)
        ps = self.percentiles
        if not isinstance(ps, (tuple, list)) or any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in ps) \
                or any(not 0 < p < 100 for p in ps) or any(b <= a for a, b in zip(ps, ps[1:])):
            raise ValueError(f"percentiles must be increasing numbers inside (0, 100), not {ps!r}")
        check_number(self, "hit_threshold", low=0, low_open=True, high=1)
        check_number(self, "worst_fraction", low=0, low_open=True, high=1)
        check_choice(self, "connectivity", (4, 8))


OBJECT_COLUMNS = ("object", "class", "area", "rel_area", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1",
                  "tp", "recall", "fp_share", "iou", "hit")
FP_BLOB_COLUMNS = ("class", "area", "rel_area")


# ----------------------------------------------------------------------------------------------
# per image


def object_boxes(ids: np.ndarray, n: int) -> np.ndarray:
    """Boxes (n, 4) int64 as x0, y0, x1, y1 (inclusive-exclusive) of objects 1..n of `ids`."""
    return ObjectMap(ids=ids, classes=np.zeros(n, np.int64), source="components").boxes()


def object_rows(gt: np.ndarray, pred: np.ndarray, objects: ObjectMap, ignore_index: int,
                hit_threshold: float = 0.5, class_fp: tuple[np.ndarray, np.ndarray] | None = None
                ) -> dict[str, np.ndarray]:
    """One row per object of `objects` (in object order 1..n).

    Columns: object (1..n), class, area (pixels of the object), rel_area (area / (H*W)),
    bbox_x0, bbox_y0, bbox_x1, bbox_y1 (inclusive-exclusive), tp (object pixels predicted as its
    class), recall = tp / area, fp_share = FP_c * area / Σ areas of the image's class-c objects
    where FP_c = #(pred == c, gt != c, gt != ignore), iou = tp / (area + fp_share),
    hit = recall >= hit_threshold. Fractions are 0..1 here; summaries turn them into percent.
    class_fp: optional (classes, FP_c) of this image, e.g. the standard family's pred_area -
    intersect, which counts exactly these pixels; computed here when not given.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if pred.shape != gt.shape or objects.ids.shape != gt.shape:
        raise ValueError(f"gt {gt.shape}, pred {pred.shape} and objects {objects.ids.shape} differ in shape")
    n = objects.n
    classes = np.asarray(objects.classes, dtype=np.int64)
    if n == 0:
        out = {c: np.zeros(0, dtype=np.int64) for c in OBJECT_COLUMNS}
        for c in ("rel_area", "recall", "fp_share", "iou"):
            out[c] = np.zeros(0, dtype=np.float64)
        out["hit"] = np.zeros(0, dtype=bool)
        return out
    ids = objects.ids
    flat_ids = ids.ravel()
    boxes = objects.boxes()  # first: the statistics that give the boxes give the areas too
    area = objects.areas()
    g = gt.ravel()
    p = pred.ravel()
    # TP: object pixels whose prediction equals the object's class. A component's pixels all have
    # gt == its class, so there pred == gt suffices; an instance may hold pixels of other classes.
    if objects.source == "components":
        tp_mask = p == g
    else:
        lut = np.empty(n + 1, dtype=np.int64)
        lut[0] = -1
        lut[1:] = classes
        tp_mask = p == lut[flat_ids]
    tp = label_counts(np.where(tp_mask, flat_ids, 0), n + 1)[1:]  # bin 0 (no object) is dropped
    # FP per class of the objects: pred == c on non-ignored pixels whose gt is not c.
    top = int(classes.max()) + 1
    fp = np.zeros(top, dtype=np.float64)
    if class_fp is not None:
        fp_classes, fp_counts = (np.asarray(a, dtype=np.int64) for a in class_fp)
        inside = (fp_classes >= 0) & (fp_classes < top)
        fp[fp_classes[inside]] = fp_counts[inside]
    else:
        fp_pix = p[(p != g) & (g != ignore_index)]
        fp[:] = label_counts(fp_pix, top)
    class_area = np.bincount(classes, weights=area, minlength=top)
    fp_share = fp[classes] * area / class_area[classes]
    recall = tp / area
    iou = tp / (area + fp_share)
    h, w = gt.shape
    return {"object": np.arange(1, n + 1, dtype=np.int64), "class": classes.copy(), "area": area,
            "rel_area": area / float(h * w), "bbox_x0": boxes[:, 0], "bbox_y0": boxes[:, 1],
            "bbox_x1": boxes[:, 2], "bbox_y1": boxes[:, 3], "tp": tp, "recall": recall,
            "fp_share": fp_share, "iou": iou, "hit": recall >= hit_threshold}


def fp_blob_rows(gt: np.ndarray, pred: np.ndarray, ignore_index: int, connectivity: int = 8,
                 thing_mask=None) -> dict[str, np.ndarray]:
    """Predicted blobs that overlap no ground-truth pixel of their class.

    Predicted pixels lying on ignore ground truth are removed first (they count nowhere, as in
    mIoU), and so are predicted pixels holding `ignore_index` or a negative value; the remaining
    prediction is split into `connectivity`-connected components per class. A blob is a false
    positive when none of its pixels has gt == its class (overlap, not mere adjacency).
    thing_mask (optional bool [num_classes]) keeps only blobs of those classes, to match objects
    extracted with the same mask. Columns: class, area (pixels), rel_area (area / (H*W)).
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if pred.shape != gt.shape:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} differ in shape")
    valid = (gt != ignore_index) & (pred != ignore_index) & (pred >= 0)
    cc, comp_cls = components(pred, valid, connectivity)
    m = comp_cls.size
    area = label_counts(cc, m + 1)[1:]
    touched = label_counts(np.where(pred == gt, cc, 0), m + 1)[1:] > 0
    keep = ~touched
    if thing_mask is not None:
        tm = np.asarray(thing_mask, dtype=bool)
        keep &= (comp_cls < tm.size) & tm[np.clip(comp_cls, 0, max(tm.size - 1, 0))]
    h, w = gt.shape
    return {"class": comp_cls[keep], "area": area[keep], "rel_area": area[keep] / float(h * w)}


# ----------------------------------------------------------------------------------------------
# per dataset


def percentile_buckets(areas: np.ndarray, percentiles) -> dict[str, tuple]:
    """Buckets [lo, hi) of object area between dataset percentiles (numpy's linear method).

    Names are pct_<a>-<b> with the percentiles rounded to integers (pct_0-33, pct_33-67,
    pct_67-100 by default); the first bucket starts at 0 and the last is open-ended. With no
    objects every edge is NaN and every bucket empty.
    """
    ps = [float(p) for p in percentiles]
    if any(b <= a for a, b in zip(ps, ps[1:])) or any(not 0 < p < 100 for p in ps):
        raise ValueError(f"percentiles must be increasing and inside (0, 100), got {percentiles}")
    areas = np.asarray(areas, dtype=np.float64)
    edges = list(np.percentile(areas, ps)) if areas.size else [math.nan] * len(ps)
    bounds = [0.0] + ps + [100.0]
    lows = [0.0] + edges
    highs = edges + [None]
    return {f"pct_{bounds[i]:.0f}-{bounds[i + 1]:.0f}": (lows[i], highs[i]) for i in range(len(bounds) - 1)}


def worst_mean(values: np.ndarray, fraction: float) -> float:
    """Mean of the max(1, floor(fraction * n)) smallest values (Wang et al. 2023's count); NaN when empty."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan
    k = max(1, math.floor(fraction * values.size + 1e-9))
    return float(np.mean(np.partition(values, k - 1)[:k]))


def _per_class(cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes present, sorted; index of each row's class in them)."""
    return np.unique(np.asarray(cls, dtype=np.int64), return_inverse=True)


def _class_means(values: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Mean of `values` per class present (in class order)."""
    _, index = _per_class(cls)
    return np.bincount(index, weights=values) / np.bincount(index)


def iiou(cls: np.ndarray, area: np.ndarray, tp: np.ndarray, class_size: np.ndarray, class_fp: np.ndarray,
         instance_classes: np.ndarray) -> float:
    """Cityscapes' instance-level IoU (fraction), as cityscapesScripts computes it
    (evalPixelLevelSemanticLabeling: getInstanceIouScoreForLabel, then getScoreAverage).

    For every instance class c (`instance_classes`, ids): each object k of class c is weighted by
    w_k = class_size[c] / area_k; iTP_c = Σ w_k tp_k, iFN_c = Σ w_k (area_k - tp_k) over the given
    objects, FP_c = class_fp[c], every false-positive pixel of class c in the dataset, unweighted;
    iIoU_c = iTP_c / (iTP_c + iFN_c + FP_c), NaN when that denominator is 0. The mean over the
    classes that are not NaN: a class predicted where it is not, with no object among the given
    ones, scores 0. NaN when every class is NaN.
    """
    cls = np.asarray(cls, dtype=np.int64)
    area = np.asarray(area, dtype=np.float64)
    tp = np.asarray(tp, dtype=np.float64)
    n = len(class_fp)
    weight = np.asarray(class_size, dtype=np.float64)[cls] / area if cls.size else np.zeros(0)
    itp = np.bincount(cls, weights=weight * tp, minlength=n)
    ifn = np.bincount(cls, weights=weight * (area - tp), minlength=n)
    classes = np.asarray(instance_classes, dtype=np.int64)
    denominator = itp[classes] + ifn[classes] + np.asarray(class_fp, dtype=np.float64)[classes]
    scores = itp[classes][denominator > 0] / denominator[denominator > 0]
    return float(scores.mean()) if scores.size else math.nan


def _empty_objects() -> pd.DataFrame:
    import pandas as pd  # per dataset only: scoring workers are forked before pandas is loaded

    return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in ("class", "area", "rel_area", "tp", "recall",
                                                                    "fp_share", "iou", "hit")})


def size_summary(objects: pd.DataFrame, fp_blobs: pd.DataFrame, n_images: int, cfg: SizeConfig | None = None,
                 class_fp: np.ndarray | None = None, unseen: np.ndarray | None = None,
                 instance_classes: np.ndarray | None = None, class_size: np.ndarray | None = None
                 ) -> tuple[dict[str, float], pd.DataFrame]:
    """Dataset metrics from the object rows and fp-blob rows of all images.

    objects: concatenated `object_rows` (+ `image`); fp_blobs: concatenated `fp_blob_rows`;
    n_images: images evaluated (the divisor of fp_blobs_per_image).

    iIoU (`iiou`, cityscapesScripts' definition) needs, per class id: class_fp [C], every
    false-positive pixel of the class over the dataset (the standard counts' prediction area minus
    intersection; without it, the false positives the objects carry, Σ fp_share, which misses those
    in images without an object of the class); instance_classes (bool [C]), the classes it averages
    over (the dataset's things; None: every class); class_size [C], the weights' mean object area of
    each class (a dataset's table; None: the mean visible area of the class's objects in the data).
    iIoU@b is cityscapesScripts evaluated with only bucket b's objects as instances: the other
    objects' pixels keep their class in the pixel counts (a prediction of their class on them is no
    false positive), but they carry no weighted TP or FN.

    Scalars (percent unless a count): object_recall, object_IoU, iIoU, worst10_object_IoU,
    n_objects, fp_blobs_per_image, each also as name@bucket for the absolute buckets
    (@small ...), relative buckets (@rel_tiny ...) and percentile buckets (@pct_0-33 ...), plus
    class_mean_object_IoU (class mean of object IoU, overall) and the area edges of the percentile buckets
    (pct_edge@<p>). Table: one row per bucket (and one for
    all objects). Empty buckets give NaN ratios and zero counts.

    unseen (bool [C], optional): the zero-shot split. When it marks a class, every bucket is also
    summarised over the objects of seen and of unseen classes (object_recall_unseen@small, ...;
    `split_metrics`), as table rows whose `split` column says which; the other rows say "all".
    """
    import pandas as pd  # per dataset only: scoring workers are forked before pandas is loaded

    cfg = cfg or SizeConfig()
    if objects is None or len(objects) == 0:
        objects = _empty_objects()
    if fp_blobs is None or len(fp_blobs) == 0:
        fp_blobs = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in FP_BLOB_COLUMNS})
    cls = objects["class"].to_numpy(dtype=np.int64)
    area = objects["area"].to_numpy(dtype=np.float64)
    rel = objects["rel_area"].to_numpy(dtype=np.float64)
    tp = objects["tp"].to_numpy(dtype=np.float64)
    fp_share = objects["fp_share"].to_numpy(dtype=np.float64)
    iou = objects["iou"].to_numpy(dtype=np.float64)
    hit = objects["hit"].to_numpy(dtype=bool)
    recall = objects["recall"].to_numpy(dtype=np.float64)
    blob_area = fp_blobs["area"].to_numpy(dtype=np.float64)
    blob_rel = fp_blobs["rel_area"].to_numpy(dtype=np.float64)
    n_classes = max(len(class_fp) if class_fp is not None else 0,
                    len(instance_classes) if instance_classes is not None else 0,
                    len(class_size) if class_size is not None else 0, int(cls.max()) + 1 if cls.size else 0)
    if class_fp is None:
        class_fp = np.bincount(cls, weights=fp_share, minlength=n_classes)
    if class_size is None:
        count = np.bincount(cls, minlength=n_classes)
        class_size = np.bincount(cls, weights=area, minlength=n_classes) / np.maximum(count, 1)
    if instance_classes is None:
        instance_classes = np.ones(n_classes, bool)
    averaged = np.flatnonzero(instance_classes)
    frac = cfg.worst_fraction
    worst_name = f"worst{round(100 * frac, 6):g}_object_IoU"

    def stats(sel: np.ndarray, blob_sel: np.ndarray) -> dict:
        n = int(sel.sum())
        nb = int(blob_sel.sum())
        with np.errstate(invalid="ignore"):
            return {
                "n_objects": n,
                "n_classes": int(np.unique(cls[sel]).size),
                "object_recall": 100 * float(hit[sel].mean()) if n else math.nan,
                "object_IoU": 100 * float(iou[sel].mean()) if n else math.nan,
                # after Wang et al.'s mIoU^K, over zeg-eval's objects (segment_level has theirs)
                "class_mean_object_IoU": 100 * float(_class_means(iou[sel], cls[sel]).mean()) if n else math.nan,
                "mean_pixel_recall": 100 * float(recall[sel].mean()) if n else math.nan,
                "iIoU": 100 * iiou(cls[sel], area[sel], tp[sel], class_size, class_fp, averaged),
                worst_name: 100 * worst_mean(iou[sel], frac),
                "fp_blobs": nb,
                "fp_blobs_per_image": nb / n_images if n_images > 0 else math.nan,
            }

    rows = [{"bucket_kind": "all", "bucket": "all", "lo": math.nan, "hi": math.nan,
             **stats(np.ones(cls.size, bool), np.ones(blob_area.size, bool))}]
    pct = percentile_buckets(area, cfg.percentiles)
    for kind, buckets, obj_v, blob_v in (("absolute", cfg.buckets, area, blob_area),
                                         ("relative", cfg.relative_buckets, rel, blob_rel),
                                         ("percentile", pct, area, blob_area)):
        for name, (lo, hi) in buckets.items():
            nan_edges = (lo is not None and math.isnan(lo)) or (hi is not None and math.isnan(hi))
            sel = np.zeros(cls.size, bool) if nan_edges else in_bucket(obj_v, lo, hi)
            bsel = np.zeros(blob_v.size, bool) if nan_edges else in_bucket(blob_v, lo, hi)
            rows.append({"bucket_kind": kind, "bucket": name,
                         "lo": math.nan if lo is None else float(lo),
                         "hi": math.inf if hi is None else float(hi), **stats(sel, bsel)})
    for row in rows:
        row["split"] = "all"
    split_rows = []
    for split, member in split_masks(cls, unseen).items():
        for row in rows:
            if row["bucket_kind"] == "all":
                sel = np.ones(cls.size, bool)
            elif row["bucket_kind"] == "relative":
                sel = in_bucket(rel, *cfg.relative_buckets[row["bucket"]])
            else:
                lo, hi = (cfg.buckets if row["bucket_kind"] == "absolute" else pct)[row["bucket"]]
                nan_edges = (lo is not None and math.isnan(lo)) or (hi is not None and math.isnan(hi))
                sel = np.zeros(cls.size, bool) if nan_edges else in_bucket(area, lo, hi)
            split_rows.append({**{k: row[k] for k in ("bucket_kind", "bucket", "lo", "hi")}, "split": split,
                               **object_stats(hit, iou, sel & member)})
    table = pd.DataFrame(rows + split_rows)
    metric_cols = ["object_recall", "object_IoU", "iIoU", worst_name, "n_objects", "fp_blobs_per_image"]
    scalars: dict[str, float] = {}
    for row in rows:
        suffix = "" if row["bucket_kind"] == "all" else f"@{row['bucket']}"
        for col in metric_cols:
            scalars[f"{col}{suffix}"] = float(row[col])
    for row in split_rows:
        suffix = "" if row["bucket_kind"] == "all" else f"@{row['bucket']}"
        for col in SPLIT_COLUMNS:
            scalars[f"{col}_{row['split']}{suffix}"] = float(row[col])
    scalars["class_mean_object_IoU"] = float(rows[0]["class_mean_object_IoU"])
    for p, (name, (lo, _)) in zip(cfg.percentiles, list(pct.items())[1:]):
        scalars[f"pct_edge@{float(p):.0f}"] = float(lo)
    return scalars, table


SPLIT_COLUMNS = ("object_recall", "object_IoU", "n_objects")  # what is also given per zero-shot split


def split_masks(cls: np.ndarray, unseen: np.ndarray | None) -> dict[str, np.ndarray]:
    """{"seen": mask, "unseen": mask} of the objects (by class) when `unseen` marks a class, else {}."""
    if unseen is None or not np.any(unseen):
        return {}
    member = np.asarray(unseen, dtype=bool)[np.asarray(cls, dtype=np.int64)]
    return {"seen": ~member, "unseen": member}


def object_stats(hit: np.ndarray, iou: np.ndarray, sel: np.ndarray) -> dict:
    """n_objects, object_recall (hit rate, %) and object_IoU (mean, %) of the selected objects."""
    n = int(sel.sum())
    return {"n_objects": n, "object_recall": 100 * float(hit[sel].mean()) if n else math.nan,
            "object_IoU": 100 * float(iou[sel].mean()) if n else math.nan}


def _size_selections(rows: pd.DataFrame, cfg: SizeConfig, pct: dict) -> dict[str, np.ndarray]:
    """{"" (all rows), "@<bucket>": mask} for the absolute, relative and percentile buckets, as
    size_summary selects objects and blobs."""
    area = rows["area"].to_numpy(dtype=np.float64)
    out = {"": np.ones(len(rows), bool)}
    for buckets, values in ((cfg.buckets, area), (cfg.relative_buckets, rows["rel_area"].to_numpy(dtype=np.float64)),
                            (pct, area)):
        out.update({f"@{name}": mask for name, mask in bucket_masks(values, buckets).items()})
    return out


def object_rates(resampling, objects: pd.DataFrame, hit: np.ndarray, selections: dict,
                 unseen: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """object_recall<suffix> and object_IoU<suffix> (percent) under each resample: the hit rate and
    the mean IoU of the resampled objects of each selection (ratios of weighted sums); with `unseen`,
    also object_recall_<split><suffix> and object_IoU_<split><suffix> per zero-shot split."""
    splits = split_masks(objects["class"].to_numpy(dtype=np.int64), unseen)
    named = {("", suffix): sel for suffix, sel in selections.items()}
    named.update({(f"_{split}", suffix): sel & member for split, member in splits.items()
                  for suffix, sel in selections.items()})
    iou = objects["iou"].to_numpy(dtype=np.float64)
    columns = []
    for sel in named.values():
        columns += [sel, sel * hit, sel * iou]
    sums = resampling.sums(objects, np.stack(columns, axis=1).astype(np.float64)) if columns else None
    out = {}
    for j, (split, suffix) in enumerate(named):
        n, hits, ious = sums[:, 3 * j], sums[:, 3 * j + 1], sums[:, 3 * j + 2]
        out[f"object_recall{split}{suffix}"] = 100 * ratio(hits, n)
        out[f"object_IoU{split}{suffix}"] = 100 * ratio(ious, n)
    return out


# ---------------------------------------------------------------------------------------------
# the family

SIZE_METRICS = {  # name: (unit, better, interval, definition, source)
    "object_recall": ("%", "higher", True, "share of ground-truth objects hit (pixel recall >= hit_threshold)", ""),
    "object_IoU": ("%", "higher", True, "mean over objects of TP / (area + the class's false positives apportioned "
                   "by area); zeg-eval's object IoU", "after Wang et al., NeurIPS 2023 (mIoU^K)"),
    "iIoU": ("%", "higher", False, "mean over instance classes (non-zero denominator) of iTP / (iTP + iFN + FP): TP "
             "and FN weighted by the class's mean object area (the dataset's instance_sizes, else the data mean) over "
             "the object's area, FP every false-positive pixel of the class; in a bucket, only its objects are "
             "instances", "cityscapesScripts evalPixelLevelSemanticLabeling (Cordts et al., CVPR 2016)"),
    "n_objects": (COUNT, None, False, "ground-truth objects", ""),
    "fp_blobs_per_image": (PER_IMAGE, "lower", True, "predicted blobs touching no ground truth of their class, "
                           "per image", ""),
}


class SizeFamily(Family):
    """Objects found, by object size: recall, object IoU, iIoU, worst objects, false-positive blobs."""

    name = "size"
    config_type = SizeConfig
    tables = ("objects", "fp_blobs")

    def image_tables(self, ctx, cfg: SizeConfig) -> dict:
        rows = ctx.object_rows(cfg.connectivity, cfg.hit_threshold)
        blobs = fp_blob_rows(ctx.gt, ctx.pred, ctx.ignore_index, connectivity=cfg.connectivity,
                             thing_mask=ctx.thing_mask)
        return {"objects": rows, "fp_blobs": blobs}

    def summarize(self, inputs: SummaryInputs, cfg: SizeConfig) -> FamilySummary:

        sums = inputs.pixel_sums
        # Cityscapes' iIoU counts every false-positive pixel of a class, also in images where the
        # class has no object: per-class FP = prediction area - intersection, from the pixel records.
        scalars, table = size_summary(inputs.tables.get("objects"), inputs.tables.get("fp_blobs"), inputs.n_images,
                                      cfg, class_fp=sums["pred_area"] - sums["intersect"],
                                      unseen=inputs.classes.unseen, instance_classes=inputs.classes.things,
                                      class_size=inputs.classes.instance_sizes)
        return FamilySummary(scalars=scalars, per_bucket=table)

    def resampled(self, inputs: SummaryInputs, cfg: SizeConfig, resampling) -> dict[str, np.ndarray]:
        """object_recall, object_IoU and fp_blobs_per_image, overall and per bucket. The percentile
        buckets keep the edges of the whole data (the interval is conditional on them)."""
        objects = inputs.tables.get("objects")
        objects = objects if objects is not None and len(objects) else _empty_objects().assign(image=[])
        blobs = inputs.tables.get("fp_blobs")
        area = objects["area"].to_numpy(dtype=np.float64)
        pct = percentile_buckets(area, cfg.percentiles)
        out = object_rates(resampling, objects, objects["hit"].to_numpy(dtype=np.float64),
                           _size_selections(objects, cfg, pct), inputs.classes.unseen)
        if blobs is not None and len(blobs):
            selections = _size_selections(blobs, cfg, pct)
            per_blob = np.stack([sel.astype(np.float64) for sel in selections.values()], axis=1)
            counts = resampling.sums(blobs, per_blob)
        else:
            selections = _size_selections(objects.iloc[:0], cfg, pct)
            counts = np.zeros((resampling.n_resamples, len(selections)))
        drawn = resampling.drawn()
        for j, suffix in enumerate(selections):
            out[f"fp_blobs_per_image{suffix}"] = ratio(counts[:, j], drawn)
        return out

    def metrics(self, cfg: SizeConfig) -> tuple[MetricInfo, ...]:
        worst = f"worst{round(100 * cfg.worst_fraction, 6):g}_object_IoU"
        kinds = dict(SIZE_METRICS)
        kinds[worst] = ("%", "higher", False, f"mean object IoU of the worst {100 * cfg.worst_fraction:g}% of objects "
                        "(all classes pooled)", "")
        buckets = [""] + [f"@{b}" for b in list(cfg.buckets) + list(cfg.relative_buckets)
                          + list(percentile_buckets(np.zeros(0), cfg.percentiles))]
        info = []
        for suffix in buckets:
            where = f" (objects of bucket {suffix[1:]})" if suffix else ""
            for name, (unit, better, interval, definition, source) in kinds.items():
                info.append(MetricInfo(f"{name}{suffix}", self.name, unit=unit, better=better, interval=interval,
                                       definition=definition + where, source=source))
        for suffix in buckets:
            where = f" in bucket {suffix[1:]}" if suffix else ""
            for split in ("seen", "unseen"):
                info += [MetricInfo(f"object_recall_{split}{suffix}", self.name, definition=f"object_recall of the "
                                    f"objects of {split} classes{where}"),
                         MetricInfo(f"object_IoU_{split}{suffix}", self.name, definition=f"object_IoU of the objects "
                                    f"of {split} classes{where}"),
                         MetricInfo(f"n_objects_{split}{suffix}", self.name, unit=COUNT, better=None, interval=False,
                                    definition=f"objects of {split} classes{where}")]
        info.append(MetricInfo("class_mean_object_IoU", self.name, interval=False,
                               definition="mean over classes of the mean object_IoU of the class's objects (zeg-eval's "
                               "objects and false-positive shares; Wang et al.'s mIoU^K is segment_level's mIoUK)",
                               source="after Wang et al., NeurIPS 2023"))
        for p in cfg.percentiles:
            info.append(MetricInfo(f"pct_edge@{float(p):.0f}", self.name, unit=PIXELS, better=None, interval=False,
                                   definition=f"object area at the dataset's {float(p):g}th percentile"))
        return tuple(info)
