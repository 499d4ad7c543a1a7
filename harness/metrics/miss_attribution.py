"""Where a missed object went: the predictions on the pixels of the objects a model misses, by size
bucket and zero-shot split, in the spirit of TIDE's error attribution (Bolya et al., ECCV 2020) for
detection, here for segmentation. zeg-eval's own definitions; no peer computes them.

Objects are the size family's (instances where given, else connected components, at this family's
connectivity; a hit has pixel recall >= hit_threshold). For every object the family records how many
of its pixels were predicted as each value (`object_predictions`: object, class, area, hit, pred,
pixels). For the missed objects (not hits) of a bucket, each as one vote:

* miss_still_correct@b: mean share of the missed object's pixels predicted as its own class (what
  recall it kept, below the threshold);
* miss_to_background@b: ... predicted as a stuff class (a class not among the dataset's things; 0 when
  the dataset names no things);
* miss_to_other_object@b: ... predicted as another thing class (every other class without things);
* miss_to_ignore@b: ... predicted as the ignore value (a model that abstains);
  these four add up to 100 in every bucket with a missed object;
* miss_to_seen_unseen@b: for missed objects of unseen classes, the mean share predicted as a seen class
  (the zero-shot failure: an unseen object taken for a seen one);
* missed@b: the number of missed objects; every share also per split (miss_to_background_unseen@b, ...).

Per class (per_class.csv): `most_confused_with`, the class that received most of the class's object
pixels that were not predicted as the class itself, and `confused_share`, that share of all its object
pixels (for an unseen class, the seen class it is most often taken for, when that is one). The whole
table (confusion.csv): every (class, other class) with the share of the class's object pixels predicted
as the other, and both classes' splits, so the unseen-into-seen confusion is one filter
(`confusion_table`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.metrics.buckets import bucket_masks
from harness.metrics.family import (
    COUNT,
    Family,
    FamilySummary,
    MetricInfo,
    SummaryInputs,
    check_buckets,
    check_choice,
    check_number,
)
from harness.metrics.histogram import label_counts
from harness.metrics.resampling import ratio
from harness.metrics.size import coco_buckets, split_masks

SHARES = ("miss_still_correct", "miss_to_background", "miss_to_other_object", "miss_to_ignore")


@dataclass(frozen=True)
class MissAttributionConfig:
    buckets: dict = field(default_factory=coco_buckets)    # object area in pixels: [lo, hi)
    hit_threshold: float = 0.5                               # hit = pixel recall >= this
    connectivity: int = 8

    def __post_init__(self):
        check_buckets(self, "buckets", low=0)
        check_number(self, "hit_threshold", low=0, low_open=True, high=1)
        check_choice(self, "connectivity", (4, 8))


def prediction_rows(pred: np.ndarray, ids: np.ndarray, classes: np.ndarray, area: np.ndarray, hit: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """One row per (object, predicted value) of one image: how many of the object's pixels hold it.

    ids: HxW object map (0 = none, k = object k); classes, area, hit: per object 1..n."""
    n = len(classes)
    top = int(pred.max(initial=0)) + 1
    # one histogram of (object, predicted value) over the whole map; row 0 (no object) is dropped
    key = ids.astype(np.int32) * np.int32(top) + pred.astype(np.int32)
    counts = label_counts(key, (n + 1) * top).reshape(n + 1, top)[1:]
    k, value = np.nonzero(counts)
    return {"object": k + 1, "class": np.asarray(classes, np.int64)[k], "area": np.asarray(area, np.int64)[k],
            "hit": np.asarray(hit, bool)[k], "pred": value, "pixels": counts[k, value]}


def per_object_shares(rows, num_classes: int, ignore_index: int, things: np.ndarray | None,
                      unseen: np.ndarray | None):
    """One row per object (image, object, class, area, hit) with the share (0..1) of its pixels that
    went to each place: the columns of SHARES and `to_seen` (a seen class other than its own)."""
    pred = rows["pred"].to_numpy(np.int64)
    cls = rows["class"].to_numpy(np.int64)
    pixels = rows["pixels"].to_numpy(np.float64)
    in_range = (pred >= 0) & (pred < num_classes)
    own = pred == cls
    is_ignore = pred == ignore_index
    thing = np.ones(len(pred), bool)  # without a things list every class is an object class
    if things is not None:
        thing[in_range] = np.asarray(things, bool)[pred[in_range]]
    other = in_range & ~own & thing
    background = in_range & ~own & ~thing
    seen = np.zeros(len(pred), bool)
    if unseen is not None:
        seen[in_range] = ~np.asarray(unseen, bool)[pred[in_range]]
    parts = {"miss_still_correct": own, "miss_to_background": background, "miss_to_other_object": other,
             "miss_to_ignore": is_ignore & ~own, "to_seen": seen & ~own}
    frame = rows[["image", "object", "class", "area", "hit"]].assign(
        **{name: np.where(mask, pixels, 0.0) for name, mask in parts.items()})
    objects = frame.groupby(["image", "object"], sort=True).agg(
        {"class": "first", "area": "first", "hit": "first", **{name: "sum" for name in parts}}).reset_index()
    for name in parts:
        objects[name] = objects[name] / objects["area"]
    return objects


def _selections(objects, cfg: MissAttributionConfig, unseen: np.ndarray | None) -> dict[tuple[str, str], np.ndarray]:
    """{(split suffix, bucket suffix): mask of the missed objects} for all objects and every bucket,
    over all classes and per zero-shot split."""
    missed = ~objects["hit"].to_numpy(bool)
    area = objects["area"].to_numpy(np.float64)
    buckets = {"": np.ones(len(objects), bool)}
    buckets.update({f"@{name}": mask for name, mask in bucket_masks(area, cfg.buckets).items()})
    splits = {"": np.ones(len(objects), bool)}
    splits.update({f"_{name}": mask for name, mask in split_masks(objects["class"].to_numpy(np.int64),
                                                                  unseen).items()})
    return {(split, bucket): missed & s & b for split, s in splits.items() for bucket, b in buckets.items()}


def attribution_summary(objects, cfg: MissAttributionConfig, unseen: np.ndarray | None) -> dict[str, float]:
    """The scalars of the module docstring from `per_object_shares`."""
    out: dict[str, float] = {}
    for (split, bucket), sel in _selections(objects, cfg, unseen).items():
        n = int(sel.sum())
        out[f"missed{split}{bucket}"] = n
        for name in SHARES:
            out[f"{name}{split}{bucket}"] = 100 * float(objects[name].to_numpy()[sel].mean()) if n else math.nan
        if split == "_unseen":
            out[f"miss_to_seen_unseen{bucket}"] = 100 * float(objects["to_seen"].to_numpy()[sel].mean()) if n \
                else math.nan
    return out


def _confusion(rows, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(matrix [C, C] of object pixels of class c predicted as another class c', total object pixels [C])."""
    pred = rows["pred"].to_numpy(np.int64)
    cls = rows["class"].to_numpy(np.int64)
    pixels = rows["pixels"].to_numpy(np.float64)
    total = np.bincount(cls, weights=pixels, minlength=num_classes)[:num_classes]
    wrong = (pred != cls) & (pred >= 0) & (pred < num_classes)
    matrix = np.zeros((num_classes, num_classes))
    np.add.at(matrix, (cls[wrong], pred[wrong]), pixels[wrong])
    return matrix, total


def most_confused(rows, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the other class that received most of its object pixels ('' when none) and that
    share (percent) of all its object pixels (NaN for a class without objects)."""
    matrix, total = _confusion(rows, num_classes)
    best = matrix.argmax(axis=1)
    share = np.where(total > 0, 100 * matrix[np.arange(num_classes), best] / np.where(total > 0, total, 1), np.nan)
    has = matrix.max(axis=1) > 0
    return np.where(has, best, -1), np.where(total > 0, np.where(has, share, 0.0), np.nan)


def confusion_table(rows, names: tuple[str, ...], unseen: np.ndarray | None):
    """One row per (class, other class it was predicted as) with object pixels of the class predicted so:
    `pixels`, and `share` = 100 * pixels / all object pixels of the class; with each class's zero-shot
    split (`split`, `predicted_split`: seen | unseen | all). The unseen-into-seen confusion is the rows
    with split == "unseen" and predicted_split == "seen". Sorted by class, then by share, largest first."""
    import pandas as pd  # summaries only: the metric workers never load pandas
    n = len(names)
    matrix, total = _confusion(rows, n)
    cls, pred = np.nonzero(matrix)
    split = np.where(np.asarray(unseen, bool), "unseen", "seen") if unseen is not None else np.full(n, "all")
    table = pd.DataFrame({"class_id": cls, "class": np.asarray(names, dtype=object)[cls], "split": split[cls],
                          "predicted_as": np.asarray(names, dtype=object)[pred], "predicted_split": split[pred],
                          "pixels": matrix[cls, pred].astype(np.int64), "share": 100 * matrix[cls, pred] / total[cls]})
    return table.sort_values(["class_id", "share"], ascending=[True, False], kind="stable").reset_index(drop=True)


class MissAttributionFamily(Family):
    """Where the pixels of missed objects went (see the module docstring)."""

    name = "miss_attribution"
    config_type = MissAttributionConfig
    tables = ("object_predictions",)

    def image_tables(self, ctx, cfg: MissAttributionConfig) -> dict:
        objects = ctx.objects(cfg.connectivity)
        rows = ctx.object_rows(cfg.connectivity, cfg.hit_threshold)
        return {"object_predictions": prediction_rows(ctx.pred, objects.ids, objects.classes, rows["area"],
                                                      rows["hit"])}

    def _objects(self, inputs: SummaryInputs):
        import pandas as pd  # per dataset only: scoring workers are forked before pandas is loaded

        rows = inputs.tables.get("object_predictions")
        if rows is None or not len(rows):
            rows = pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("image", object), ("object", np.int64),
                                                                   ("class", np.int64), ("area", np.int64),
                                                                   ("hit", bool), ("pred", np.int64),
                                                                   ("pixels", np.int64))})
        classes = inputs.classes
        return rows, per_object_shares(rows, classes.num_classes, classes.ignore_index, classes.things,
                                       classes.unseen)

    def summarize(self, inputs: SummaryInputs, cfg: MissAttributionConfig) -> FamilySummary:
        rows, objects = self._objects(inputs)
        scalars = attribution_summary(objects, cfg, inputs.classes.unseen)
        best, share = most_confused(rows, inputs.classes.num_classes)
        names = np.array(list(inputs.classes.names) + [""], dtype=object)
        return FamilySummary(scalars=scalars, per_class={"most_confused_with": names[best], "confused_share": share},
                             confusion=confusion_table(rows, inputs.classes.names, inputs.classes.unseen))

    def resampled(self, inputs: SummaryInputs, cfg: MissAttributionConfig, resampling) -> dict[str, np.ndarray]:
        """Every share: the mean over the resampled missed objects (ratios of weighted sums)."""
        _, objects = self._objects(inputs)
        if not len(objects):
            return {}
        columns: list[np.ndarray] = []
        named: dict[str, tuple[int, int]] = {}  # metric -> (column of its numerator, of its object count)
        for (split, bucket), sel in _selections(objects, cfg, inputs.classes.unseen).items():
            count = len(columns)
            columns.append(sel.astype(np.float64))
            shares = {f"{share}{split}{bucket}": share for share in SHARES}
            if split == "_unseen":
                shares[f"miss_to_seen_unseen{bucket}"] = "to_seen"
            for name, share in shares.items():
                named[name] = (len(columns), count)
                columns.append(sel * objects[share].to_numpy(np.float64))
        sums = resampling.sums(objects, np.stack(columns, axis=1))
        return {name: 100 * ratio(sums[:, j], sums[:, n]) for name, (j, n) in named.items()}

    def metrics(self, cfg: MissAttributionConfig) -> tuple[MetricInfo, ...]:
        where = {"miss_still_correct": "its own class (the recall it kept)",
                 "miss_to_background": "a stuff class", "miss_to_other_object": "another thing class",
                 "miss_to_ignore": "the ignore value"}
        info = []
        for bucket in [""] + [f"@{b}" for b in cfg.buckets]:
            scope = f" of bucket {bucket[1:]}" if bucket else ""
            for split, whose in (("", ""), ("_seen", " of seen classes"), ("_unseen", " of unseen classes")):
                info.append(MetricInfo(f"missed{split}{bucket}", self.name, unit=COUNT, better=None, interval=False,
                                       definition=f"objects{whose}{scope} that are not hit"))
                for name, to in where.items():
                    info.append(MetricInfo(f"{name}{split}{bucket}", self.name, better=None,
                                           definition=f"mean over the missed objects{whose}{scope} of the share of "
                                           f"their pixels predicted as {to}", source="after TIDE (Bolya et al., "
                                           "ECCV 2020); zeg-eval's definition"))
            info.append(MetricInfo(f"miss_to_seen_unseen{bucket}", self.name, better="lower",
                                   definition=f"mean over the missed objects of unseen classes{scope} of the share of "
                                   "their pixels predicted as a seen class", source="zeg-eval's definition"))
        return tuple(info)
