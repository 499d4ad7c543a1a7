"""The occlusion family: how well objects are found as a function of how occluded they are.

Per object an occlusion level in [0, 1]:

* amodal (exact), when the dataset gives the object's amodal mask A (the whole object, hidden parts
  included) and V is its visible mask: level = 1 - |V ∩ A| / |A|  (= 1 - |V|/|A| when V ⊆ A, as
  in KINS / COCOA / D2SA's occlusion rate);
* proxy otherwise (a PROXY, stated as such in `occlusion_source`), from the visible masks of one
  label map: with V the object's pixels and O the pixels of OTHER objects inside V's bounding box,
  level = O / (V + O) = 1 - V / Â, the amodal formula with the amodal mask estimated as
  Â = V ∪ (other objects inside V's box): an occluder cutting into an object leaves a hole or a
  notch in the object's box that the occluder fills. Background (non-object) pixels in the box
  are not occlusion. Exact when the occluders lie inside the visible box and the object would
  fill them; it misses occlusion that shrinks the box (an end cut off) and counts neighbours
  that merely reach into the box.

Also per object: `fragments`, the number of 8-connected pieces of the visible mask (an object split
by an occluder has several). Definitions and their limits: docs/metrics_objects.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cc3d
import cv2
import numpy as np

from harness.metrics.buckets import RIGHT_CLOSED, in_bucket
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
from harness.metrics.objects import ObjectMap
from harness.metrics.size import SPLIT_COLUMNS, object_boxes, object_rates, object_stats, split_masks

if TYPE_CHECKING:
    import pandas as pd


def _occlusion_buckets():
    # occlusion level in [0, 1]; a bucket holds lo < level <= hi, "none" holds level == 0
    return {"occ_none": (None, 0.0), "occ_le25": (0.0, 0.25), "occ_le50": (0.25, 0.5), "occ_gt50": (0.5, 1.0)}


@dataclass(frozen=True)
class OcclusionConfig:
    buckets: dict = field(default_factory=_occlusion_buckets)
    hit_threshold: float = 0.5
    connectivity: int = 8   # of the components that make objects (without instances) and of fragments

    def __post_init__(self):
        check_buckets(self, "buckets", low=0, high=1)
        check_number(self, "hit_threshold", low=0, low_open=True, high=1)
        check_choice(self, "connectivity", (4, 8))


OCCLUSION_COLUMNS = ("occlusion", "occlusion_source", "occlusion_proxy", "fragments")


def box_proxy(ids: np.ndarray, n: int, area: np.ndarray | None = None,
              boxes: np.ndarray | None = None) -> np.ndarray:
    """Proxy occlusion (n,) of objects 1..n: O / (V + O), V = own pixels, O = pixels of other
    objects inside the object's bounding box (1 - V / Â with the amodal estimate Â = V + O).

    One integral image of the object occupancy, then O(1) per object.
    """
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if area is None:
        area = np.bincount(ids.ravel(), minlength=n + 1)[1 : n + 1]
    if boxes is None:
        boxes = object_boxes(ids, n)
    integral = cv2.integral((ids > 0).astype(np.uint8), sdepth=cv2.CV_64F)
    x0, y0, x1, y1 = boxes.T
    occupied = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]  # V + O
    other = occupied - area
    return np.where(occupied > 0, other / np.maximum(occupied, 1), 0.0)


def fragment_counts(ids: np.ndarray, n: int, connectivity: int = 8) -> np.ndarray:
    """Number of `connectivity`-connected pieces of each object's visible mask (n,) int64."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lab = ids.astype(np.uint16 if n < 2**16 else np.uint32, copy=False)
    cc, m = cc3d.connected_components(lab, connectivity=connectivity, return_N=True)
    owner = np.zeros(m + 1, dtype=np.int64)
    owner[cc.ravel()] = lab.ravel()
    return np.bincount(owner[1:], minlength=n + 1)[1:].astype(np.int64)


def occlusion_rows(objects: ObjectMap, amodal: dict | None = None, connectivity: int = 8) -> dict[str, np.ndarray]:
    """Per object (same order as `size.object_rows`): occlusion (0..1), occlusion_source
    ("amodal" | "proxy"), occlusion_proxy (the box proxy, always computed), fragments.

    amodal: optional {key: HxW bool amodal mask}. The key is the object's id in the instance map
    (`objects.instance_ids`) when objects come from instances, else the object id k (1..n).
    Objects without a mask, or with an empty one, fall back to the proxy.
    """
    ids = objects.ids
    n = objects.n
    if objects.source == "components" and objects.connectivity == connectivity:
        fragments = np.ones(n, dtype=np.int64)  # a connected component is one piece by construction
    else:
        fragments = fragment_counts(ids, n, connectivity)
    proxy = box_proxy(ids, n, objects.areas(), objects.boxes())
    level = proxy.copy()
    source = np.full(n, "proxy", dtype="<U6")
    if amodal:
        keys = (objects.instance_ids if objects.source == "instances" and objects.instance_ids is not None
                else np.arange(1, n + 1))
        for k in range(n):
            mask = amodal.get(int(keys[k]))
            if mask is None:
                continue
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != ids.shape:
                raise ValueError(f"amodal mask of object {int(keys[k])} is {mask.shape}, labels are {ids.shape}")
            covered = ids[mask]
            amodal_area = covered.size
            if amodal_area == 0:
                continue
            visible = int(np.count_nonzero(covered == k + 1))
            level[k] = min(1.0, max(0.0, 1.0 - visible / amodal_area))
            source[k] = "amodal"
    return {"occlusion": level, "occlusion_source": source, "occlusion_proxy": proxy,
            "fragments": fragments}


def occlusion_summary(objects: pd.DataFrame, cfg: OcclusionConfig | None = None, unseen: np.ndarray | None = None
                      ) -> tuple[dict[str, float], pd.DataFrame]:
    """Dataset metrics by occlusion bucket from object rows carrying size and occlusion columns.

    Per bucket (lo < level <= hi; a bucket with lo None holds level <= hi, i.e. the unoccluded
    objects for occ_none): n_objects, object_recall (hit rate, %), object_IoU (mean object IoU,
    %), mean_occlusion (%), amodal_share (% of its objects whose level came from amodal masks).
    Also by fragments (frag_1: one piece, frag_2plus: split). Scalars: the same as name@bucket,
    plus occlusion_from_amodal_share (%), occlusion_source ("amodal", "proxy" or "mixed" in the
    table's `source` column) and mean_occlusion. Empty buckets give NaN and count 0.
    unseen (bool [C], optional): also every bucket over the objects of seen and of unseen classes
    (object_recall_unseen@occ_heavy, ...), rows with `split` seen / unseen (the others: all).
    """
    import pandas as pd  # per dataset only: scoring workers are forked before pandas is loaded

    cfg = cfg or OcclusionConfig()
    if objects is None or len(objects) == 0:
        level = iou = np.zeros(0)
        hit = np.zeros(0, bool)
        from_amodal = np.zeros(0, bool)
        frags = np.zeros(0, np.int64)
        cls = np.zeros(0, np.int64)
    else:
        missing = [c for c in ("occlusion", "occlusion_source", "fragments", "iou", "hit") if c not in objects]
        if missing:
            raise ValueError(f"object rows lack the columns {missing} (run occlusion_rows and size.object_rows)")
        level = objects["occlusion"].to_numpy(dtype=np.float64)
        iou = objects["iou"].to_numpy(dtype=np.float64)
        # hit at this family's threshold (the rows' `hit` uses the size family's)
        hit = (objects["recall"].to_numpy(dtype=np.float64) >= cfg.hit_threshold if "recall" in objects
               else objects["hit"].to_numpy(dtype=bool))
        from_amodal = objects["occlusion_source"].astype(str).to_numpy() == "amodal"
        frags = objects["fragments"].to_numpy(dtype=np.int64)
        cls = objects["class"].to_numpy(dtype=np.int64) if "class" in objects else None  # None: no split

    def stats(sel):
        n = int(sel.sum())
        amodal_n = int(from_amodal[sel].sum())
        return {"n_objects": n,
                "object_recall": 100 * float(hit[sel].mean()) if n else math.nan,
                "object_IoU": 100 * float(iou[sel].mean()) if n else math.nan,
                "mean_occlusion": 100 * float(level[sel].mean()) if n else math.nan,
                "amodal_share": 100 * amodal_n / n if n else math.nan,
                "source": "none" if n == 0 else "amodal" if amodal_n == n else "proxy" if amodal_n == 0 else "mixed"}

    selections = _occlusion_selections(level, frags, cfg)
    rows = [{"bucket_kind": "all", "bucket": "all", "lo": math.nan, "hi": math.nan, "split": "all",
             **stats(np.ones(level.size, bool))}]
    for (kind, name, lo, hi), sel in selections.items():
        rows.append({"bucket_kind": kind, "bucket": name, "lo": lo, "hi": hi, "split": "all", **stats(sel)})
    split_rows = [{"bucket_kind": kind, "bucket": name, "lo": lo, "hi": hi, "split": split,
                   **object_stats(hit, iou, sel & member)}
                  for split, member in (split_masks(cls, unseen) if cls is not None else {}).items()
                  for (kind, name, lo, hi), sel in selections.items()]
    table = pd.DataFrame(rows + split_rows)
    scalars: dict[str, float] = {"occlusion_from_amodal_share": float(rows[0]["amodal_share"]),
                                 "mean_occlusion": float(rows[0]["mean_occlusion"])}
    for row in rows[1:] + split_rows:
        split = "" if row["split"] == "all" else f"_{row['split']}"
        for col in SPLIT_COLUMNS:
            scalars[f"{col}{split}@{row['bucket']}"] = float(row[col])
    return scalars, table


def _occlusion_selections(level: np.ndarray, fragments: np.ndarray, cfg: OcclusionConfig) -> dict[tuple, np.ndarray]:
    """{(bucket kind, name, lo, hi): mask} of the occlusion buckets (lo < level <= hi) and the fragment
    buckets (frag_1: one piece, frag_2plus: two or more)."""
    out = {("occlusion", name, math.nan if lo is None else float(lo), math.inf if hi is None else float(hi)):
           in_bucket(level, lo, hi, RIGHT_CLOSED) for name, (lo, hi) in cfg.buckets.items()}
    out[("fragments", "frag_1", 1.0, 1.0)] = fragments <= 1
    out[("fragments", "frag_2plus", 2.0, math.inf)] = fragments >= 2
    return out


# ---------------------------------------------------------------------------------------------
# the family

# The object columns the occlusion table carries beside its own (from size.object_rows).
OBJECT_COLUMNS = ("object", "class", "area", "recall", "iou", "hit")


class OcclusionFamily(Family):
    """Objects found, by occlusion level (amodal masks where given, else a box proxy) and fragments.

    Its objects are made with its own connectivity and hit threshold; when they equal the size
    family's, the image context hands both families the same object rows (computed once)."""

    name = "occlusion"
    config_type = OcclusionConfig
    tables = ("occlusion_objects",)

    def image_tables(self, ctx, cfg: OcclusionConfig) -> dict:
        objects = ctx.objects(cfg.connectivity)
        rows = ctx.object_rows(cfg.connectivity, cfg.hit_threshold)
        table = {c: rows[c] for c in OBJECT_COLUMNS}
        table.update(occlusion_rows(objects, ctx.amodal, connectivity=cfg.connectivity))
        return {"occlusion_objects": table}

    def summarize(self, inputs: SummaryInputs, cfg: OcclusionConfig) -> FamilySummary:
        scalars, table = occlusion_summary(inputs.tables.get("occlusion_objects"), cfg, inputs.classes.unseen)
        return FamilySummary(scalars=scalars, per_bucket=table)

    def resampled(self, inputs: SummaryInputs, cfg: OcclusionConfig, resampling) -> dict[str, np.ndarray]:
        """object_recall@<bucket> and object_IoU@<bucket> of the occlusion and fragment buckets."""
        objects = inputs.tables.get("occlusion_objects")
        if objects is None or not len(objects):
            return {}
        selections = _occlusion_selections(objects["occlusion"].to_numpy(dtype=np.float64),
                                           objects["fragments"].to_numpy(dtype=np.int64), cfg)
        # hit at this family's threshold, as occlusion_summary
        hit = objects["recall"].to_numpy(dtype=np.float64) >= cfg.hit_threshold
        return object_rates(resampling, objects, hit.astype(np.float64),
                            {f"@{name}": sel for (_, name, _, _), sel in selections.items()}, inputs.classes.unseen)

    def metrics(self, cfg: OcclusionConfig) -> tuple[MetricInfo, ...]:
        info = [MetricInfo("occlusion_from_amodal_share", self.name, better=None, interval=False,
                           definition="share of objects whose occlusion level comes from an amodal mask"),
                MetricInfo("mean_occlusion", self.name, better=None, interval=False,
                           definition="mean occlusion level of the objects (1 - visible / amodal area)")]
        for bucket in list(cfg.buckets) + ["frag_1", "frag_2plus"]:
            info += [MetricInfo(f"object_recall@{bucket}", self.name,
                                definition=f"share of the objects of bucket {bucket} hit (pixel recall >= "
                                f"{cfg.hit_threshold:g})"),
                     MetricInfo(f"object_IoU@{bucket}", self.name, definition=f"mean object IoU in bucket {bucket}"),
                     MetricInfo(f"n_objects@{bucket}", self.name, unit=COUNT, better=None, interval=False,
                                definition=f"objects in bucket {bucket}")]
            for split in ("seen", "unseen"):
                info += [MetricInfo(f"object_recall_{split}@{bucket}", self.name,
                                    definition=f"object_recall@{bucket} of the objects of {split} classes"),
                         MetricInfo(f"object_IoU_{split}@{bucket}", self.name,
                                    definition=f"object_IoU@{bucket} of the objects of {split} classes"),
                         MetricInfo(f"n_objects_{split}@{bucket}", self.name, unit=COUNT, better=None, interval=False,
                                    definition=f"objects of {split} classes in bucket {bucket}")]
        return tuple(info)
