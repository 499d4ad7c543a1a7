"""Metrics of each model (point estimates, via harness.evaluation.aggregate) and paired bootstrap intervals.

Point estimates are what `harness.evaluation.aggregate.summarize` makes of the records, one metric family at a
time, so that a family whose code is missing or fails shows as absent instead of sinking the report.

Bootstrap (vectorised, paired): the images of all models are pooled into one sorted list of stems;
B resamples of that list are drawn once (seeded) as a weight matrix W [B, N] (how often each image
is drawn), and every model uses the same W, pairing by image stem. Nothing here knows a family:
each family's `resampled` (harness.metrics.family) turns W into its metrics, exactly the summary of
each resampled dataset (tested against the weighted summary of harness.evaluation.aggregate).
Metrics whose metadata has no interval (counts, iIoU, worst-k, ...) get none. As a safety net, a
metric's resampled value with every image once must equal its point estimate, else it shows "—".
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.evaluation.aggregate import summarize
from harness.evaluation.bootstrap import checked, draw_weights, resampled_metrics, with_point_row
from harness.metrics.registry import FAMILIES
from harness.metrics.resampling import Resampling
from harness.metrics.standard import COUNT_COLUMNS, per_class_metrics
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
        self._class_iou: dict[int, np.ndarray] = {}   # id(model) -> [B, C], kept by `distributions`

    def distributions(self, model: ModelRun, point: ModelMetrics) -> dict[str, np.ndarray]:
        """metric -> [B] resampled values: each family's `resampled` under the shared resamples, for
        the metrics its metadata gives an interval and whose every-image-once value equals the
        point estimate."""
        if self.n_boot == 0:
            return {}
        stems = model.images
        columns = pd.Index(self.stems).get_indexer(stems)
        # the last row draws every image once: the point estimate, checked below
        resampling = Resampling(with_point_row(self.weights[:, columns]), stems)
        dataset = model.run.dataset
        ok = [name for name in FAMILIES if point.families.get(name) == "ok"]
        out = resampled_metrics(model.tables, dataset, model.run.protocol, resampling, families=ok)
        # per-class IoU from the class sums the standard family just made (cached by the resampling)
        if len(model.tables["pixel"]) and set(COUNT_COLUMNS) <= set(model.tables["pixel"].columns):
            sums = resampling.class_sums(model.tables["pixel"], COUNT_COLUMNS, dataset.num_classes)
            with np.errstate(all="ignore"):
                self._class_iou[id(model)] = per_class_metrics(*(sums[c][:-1] for c in COUNT_COLUMNS))["IoU"]
        return checked(out, point.scalars)

    def class_iou(self, model: ModelRun) -> np.ndarray | None:
        """[B, C] per-class IoU (%) under the shared resamples: the standard family's per-class IoU
        of the summed counts (I / (P + L - I)) of each resampled dataset; None without resamples."""
        if self.n_boot == 0 or not len(model.tables["pixel"]):
            return None
        if id(model) in self._class_iou:
            return self._class_iou[id(model)]
        stems = model.images
        resampling = Resampling(self.weights[:, pd.Index(self.stems).get_indexer(stems)], stems)
        sums = resampling.class_sums(model.tables["pixel"], COUNT_COLUMNS, model.run.dataset.num_classes)
        with np.errstate(all="ignore"):
            return per_class_metrics(*(sums[c] for c in COUNT_COLUMNS))["IoU"]


def intervals(values: np.ndarray, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise percentile interval of [B, k] values (NaN where a column has no finite value)."""
    values = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(values, [(100 - level) / 2, 100 - (100 - level) / 2], axis=0)
    return lo, hi
