"""Metrics of each model (point estimates, via harness.evaluation.aggregate) and paired bootstrap intervals.

Point estimates are what `harness.evaluation.aggregate.summarize` makes of the records, one metric family at a
time, so that a family whose code is missing or fails shows as absent instead of sinking the report.

Bootstrap (vectorised, paired): the images of all models are pooled into one sorted list of stems;
B resamples of that list are drawn once (seeded) as a weight matrix W [B, N] (how often each image
is drawn), and every model uses the same W, pairing by image stem. Each metric is accumulated as
the family does it, with weights instead of one-per-image:

* pixel-count metrics (standard, boundary): the per-image x class count matrix M [N, C*k] gives the
  resampled dataset sums W @ M = [B, C, k], handed to the family's own summary function;
* object metrics (size, occlusion): per-image sums of hit / IoU / count per bucket, W @ M, then the
  ratio of sums (a mean over the resampled objects);
* blob rates: blobs per bucket summed with W, divided by the number of resampled images.

A bootstrap metric is kept only where its value at W = 1 (every image once) equals the family's
point estimate, so a drift between this module and a family's definitions drops the interval
(shown as "—") instead of showing a wrong one. Metrics with no interval: counts, iIoU, worst-k.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.evaluation.aggregate import summarize
from harness.metrics import standard
from harness.metrics.buckets import LEFT_CLOSED, RIGHT_CLOSED, bucket_masks
from harness.metrics.registry import FAMILIES
from harness.report.runs import ModelRun

FAMILY_ORDER = tuple(FAMILIES)  # the registry's order


@dataclass
class ModelMetrics:
    scalars: dict = field(default_factory=dict)      # metric -> value
    family_of: dict = field(default_factory=dict)    # metric -> family
    families: dict = field(default_factory=dict)     # family -> "ok" | "not in protocol" | "failed: ..."
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_bucket: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_images: int = 0


def point_estimates(model: ModelRun) -> ModelMetrics:
    run = model.run
    out = ModelMetrics(n_images=len(model.tables["images"]))
    out.scalars["n_images"] = out.n_images
    out.family_of["n_images"] = "run"
    per_class = None
    buckets = []
    for family in FAMILY_ORDER:
        if family not in run.protocol.families:
            out.families[family] = "not in protocol"
            continue
        protocol = dataclasses.replace(run.protocol, families={family: run.protocol.families[family]})
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                s = summarize(model.tables, run.dataset, protocol)
        except Exception as exc:  # a family still being written, or records without its columns
            out.families[family] = f"failed: {type(exc).__name__}: {exc}"[:300]
            continue
        out.families[family] = "ok"
        for k, v in s.scalars.items():
            if k == "n_images":
                continue
            out.scalars[k] = float(v)
            out.family_of[k] = family
        pc = s.per_class
        per_class = pc if per_class is None else per_class.merge(
            pc[["class_id"] + [c for c in pc.columns if c not in per_class.columns]], on="class_id")
        if len(s.per_bucket):
            buckets.append(s.per_bucket)
    out.per_class = per_class if per_class is not None else pd.DataFrame({"class_id": [], "class": []})
    out.per_bucket = pd.concat(buckets, ignore_index=True) if buckets else pd.DataFrame()
    return out


# ----------------------------------------------------------------------------------------------
# bootstrap


def draw_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """W [B, n] float64: W[b, i] = how often image i is drawn in resample b (multinomial, rows sum to n)."""
    rng = np.random.default_rng(seed)
    if n == 0 or n_boot == 0:
        return np.zeros((n_boot, n))
    idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int64)
    idx += (np.arange(n_boot, dtype=np.int64) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _image_index(frame: pd.DataFrame, stems: list[str]) -> np.ndarray:
    pos = pd.Index(stems).get_indexer(frame["image"].astype(str))
    if (pos < 0).any():
        raise ValueError("records hold an image missing from the images table")
    return pos


def _class_sums(w: np.ndarray, img: np.ndarray, cls: np.ndarray, values: np.ndarray, num_classes: int) -> np.ndarray:
    """sums[b, c, :] = Σ_rows of class c  w[b, image of the row] * values[row]: W @ M for the sparse
    per-image x class count matrix M, done class by class (cost B x rows x k, not B x N x C x k)."""
    out = np.zeros((w.shape[0], num_classes, values.shape[1]))
    if not len(cls):
        return out
    wt = np.ascontiguousarray(w.T)  # [N, B]: gathering rows is contiguous
    order = np.argsort(cls, kind="stable")
    cls_sorted = cls[order]
    bounds = np.flatnonzero(np.diff(cls_sorted)) + 1
    for rows in np.split(order, bounds):
        out[:, cls[rows[0]], :] = wt[img[rows]].T @ values[rows]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class Bootstrap:
    """Metric distributions [B] of every model over the same resamples of the pooled image list."""

    def __init__(self, models: list[ModelRun], n_boot: int = 1000, seed: int = 0):
        self.n_boot = n_boot
        self.seed = seed
        stems = set()
        for m in models:
            stems.update(m.images)
        self.stems = sorted(stems)
        self.weights = draw_weights(len(self.stems), n_boot, seed)
        self.ones = np.ones((1, len(self.stems)))
        self._cache: dict = {}

    def _index(self, model: ModelRun, table: str, stems: list[str]) -> np.ndarray:
        key = (id(model), table)
        if key not in self._cache:
            self._cache[key] = _image_index(model.tables[table], stems)
        return self._cache[key]

    def distributions(self, model: ModelRun, point: ModelMetrics) -> dict[str, np.ndarray]:
        """metric -> [B] resampled values, for the metrics whose W = 1 value matches the point estimate."""
        if self.n_boot == 0:
            return {}
        stems = model.images
        cols = pd.Index(self.stems).get_indexer(stems)
        w = np.vstack([self.weights[:, cols], self.ones[:, cols]])  # last row: every image once
        out: dict[str, np.ndarray] = {}
        fams = model.run.protocol.families
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            if point.families.get("standard") == "ok" or point.families.get("boundary") == "ok":
                out.update(self._pixel(model, point, stems, w, fams))
            if point.families.get("size") == "ok":
                out.update(self._objects(model, stems, w, fams["size"].buckets, "objects", LEFT_CLOSED, "area"))
                out.update(self._objects(model, stems, w, fams["size"].relative_buckets, "objects", LEFT_CLOSED,
                                         "rel_area"))
                if len(model.tables["objects"]):  # percentile buckets at the edges of the full data
                    from harness.metrics import size as size_mod

                    pct = size_mod.percentile_buckets(model.tables["objects"]["area"].to_numpy(dtype=np.float64),
                                                      fams["size"].percentiles)
                    out.update(self._objects(model, stems, w, pct, "objects", LEFT_CLOSED, "area", with_all=False))
                out.update(self._blobs(model, stems, w, fams["size"]))
            occluded = model.tables.get("occlusion_objects")
            if point.families.get("occlusion") == "ok" and occluded is not None and "occlusion" in occluded.columns:
                cfg = fams["occlusion"]
                out.update(self._objects(model, stems, w, cfg.buckets, "occlusion_objects", RIGHT_CLOSED, "occlusion",
                                         with_all=False))
                # fragments: frag_1 = one piece (<= 1), frag_2plus = two or more (>= 2), as the family's summary
                frag = {"frag_1": (None, 1.5), "frag_2plus": (1.5, None)}
                out.update(self._objects(model, stems, w, frag, "occlusion_objects", LEFT_CLOSED, "fragments",
                                         with_all=False))
        kept = {}
        for name, values in out.items():
            ref = point.scalars.get(name)
            if ref is None:
                continue
            at_one = values[-1]
            same = (math.isnan(ref) and math.isnan(at_one)) or (
                math.isfinite(ref) and math.isfinite(at_one) and abs(at_one - ref) <= 1e-6 * max(1.0, abs(ref)))
            if same:
                kept[name] = values[:-1]
        return kept

    def _pixel(self, model, point, stems, w, fams) -> dict:
        run = model.run
        pixel = model.tables["pixel"]
        columns = [c for c in pixel.columns if c not in ("image", "class")]
        if not columns:
            return {}
        sums = _class_sums(w, self._index(model, "pixel", stems), pixel["class"].to_numpy(dtype=np.int64),
                           np.ascontiguousarray(pixel[columns].to_numpy(dtype=np.float64)), run.dataset.num_classes)
        by_col = {c: sums[:, :, j] for j, c in enumerate(columns)}
        unseen = run.dataset.unseen_mask if run.dataset.unseen else None
        out = {}
        if point.families.get("standard") == "ok" and all(c in by_col for c in standard.COUNT_COLUMNS):
            beta = fams["standard"].beta
            res = standard.summary(*(by_col[c] for c in standard.COUNT_COLUMNS), unseen, beta)
            out.update({k: np.asarray(v, dtype=np.float64) for k, v in res.items()})
        if point.families.get("boundary") == "ok":
            try:
                from harness.metrics import boundary

                bsums = {k: v for k, v in by_col.items() if k not in standard.COUNT_COLUMNS}
                res = boundary.summary(bsums, unseen)
                out.update({k: np.asarray(v, dtype=np.float64) for k, v in res.items()
                            if np.ndim(v) == 1 and np.shape(v)[0] == w.shape[0]})
            except Exception:  # the family's summary may not take batches: no intervals, values stay
                pass
        return out

    def _objects(self, model, stems, w, buckets, table, rule, column, with_all=True) -> dict:
        obj = model.tables[table]
        if not len(obj) or column not in obj.columns:
            return {}
        img = self._index(model, table, stems)
        values = obj[column].to_numpy(dtype=np.float64)
        # each family's table holds `hit` at that family's own threshold
        hit = obj["hit"].to_numpy(dtype=np.float64) if "hit" in obj else None
        iou = obj["iou"].to_numpy(dtype=np.float64) if "iou" in obj else None
        masks = bucket_masks(values, buckets, rule)
        if with_all:
            masks = {"": np.ones(len(obj), bool), **{f"@{k}": v for k, v in masks.items()}}
        else:
            masks = {f"@{k}": v for k, v in masks.items()}
        n = len(stems)
        blocks = []
        for sel in masks.values():
            blocks.append(np.bincount(img[sel], minlength=n).astype(np.float64))
            blocks.append(np.bincount(img[sel], weights=hit[sel], minlength=n) if hit is not None else np.zeros(n))
            blocks.append(np.bincount(img[sel], weights=iou[sel], minlength=n) if iou is not None else np.zeros(n))
        sums = w @ np.stack(blocks, axis=1)  # [B+1, 3 * buckets]
        out = {}
        for j, suffix in enumerate(masks):
            count, hits, ious = sums[:, 3 * j], sums[:, 3 * j + 1], sums[:, 3 * j + 2]
            if hit is not None:
                out[f"object_recall{suffix}"] = 100 * _ratio(hits, count)
            if iou is not None:
                out[f"object_IoU{suffix}"] = 100 * _ratio(ious, count)
        return out

    def _blobs(self, model, stems, w, cfg) -> dict:
        blobs = model.tables["fp_blobs"]
        n = len(stems)
        total = w.sum(axis=1)
        if not len(blobs):
            blobs = pd.DataFrame({"image": pd.Series(dtype=str), "area": pd.Series(dtype=float),
                                  "rel_area": pd.Series(dtype=float)})
        img = _image_index(blobs, stems) if not len(model.tables["fp_blobs"]) else self._index(model, "fp_blobs", stems)
        masks = {"": np.ones(len(blobs), bool)}
        for kind_buckets, col in ((cfg.buckets, "area"), (cfg.relative_buckets, "rel_area")):
            vals = blobs[col].to_numpy(dtype=np.float64)
            masks.update({f"@{k}": v for k, v in bucket_masks(vals, kind_buckets).items()})
        m = np.stack([np.bincount(img[sel], minlength=n).astype(np.float64) for sel in masks.values()], axis=1)
        sums = w @ m
        return {f"fp_blobs_per_image{suffix}": _ratio(sums[:, j], total) for j, suffix in enumerate(masks)}


def interval(values: np.ndarray, level: float = 95.0) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [(100 - level) / 2, 100 - (100 - level) / 2])
    return float(lo), float(hi)
