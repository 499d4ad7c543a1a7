"""How a model's metrics fall under image conditions: the run folder's robustness tables.

Definitions (per metric m, model f, corruption c, severity s; P = m's value, clean: severity 0):

* error E (Hendrycks & Dietterich, ICLR 2019, who use the top-1 error): E = 100 - P for a percentage
  where higher is better (the error of mIoU, of object recall, ...), E = P where lower is better
  (false-positive shares, error breakdowns); counts and descriptive metrics have none;
* mean performance under corruption mPC = mean over corruptions and severities of P_{c,s}, and
  relative performance rPC = mPC / P_clean (Michaelis et al., "Benchmarking Robustness in Object
  Detection", 2019, who call rPC the relative robustness);
* Corruption Error CE_c = sum_s E^f_{c,s} / sum_s E^ref_{c,s}, mean Corruption Error mCE = mean over
  corruptions of CE_c, and relative CE_c = sum_s (E^f_{c,s} - E^f_clean) / sum_s (E^ref_{c,s} -
  E^ref_clean) (Hendrycks & Dietterich; their reference f is AlexNet, here any model of the run,
  named by the protocol's `robustness.reference`). Given as ratios, as they give them (x100 in their
  tables).

mPC, rPC and mCE aggregate the ImageNet-C corruptions present in the run (corruption
`imagenet_c`); each other transform (resolution, jpeg, blur, noise) is summarised on its own over its
levels. Every size bucket and zero-shot split is a metric of its own (object_recall_unseen@small), so
each gets all of the above; `robustness.csv` says a metric's base, split and bucket in columns.

The difference clean - corrupted of each metric has a paired bootstrap interval: one set of image
resamples per model, used for its clean and every corrupted condition (harness.evaluation.bootstrap).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from harness.conditions.spec import CLEAN, IMAGENET_C
from harness.metrics.family import PERCENT, MetricInfo

IMAGENET_C_GROUP = "imagenet_c"
LONG_COLUMNS = ["model", "condition", "corruption", "severity", "metric", "base_metric", "split", "bucket", "value",
                "clean", "difference", "difference_lo", "difference_hi", "relative"]
SUMMARY_COLUMNS = ["model", "metric", "base_metric", "split", "bucket", "corruption", "measure", "value"]
_PARTS = re.compile(r"^(?P<base>[^@]+?)(?:_(?P<split>seen|unseen))?(?:@(?P<bucket>.+))?$")


# ---------------------------------------------------------------------------------------------
# the formulas (arrays in, numbers out)


def has_error(info: MetricInfo | None) -> bool:
    """Whether a metric has an error in Hendrycks & Dietterich's sense: a percentage with a direction."""
    return info is not None and info.unit == PERCENT and info.better is not None


def metric_error(value, info: MetricInfo | None):
    """Hendrycks & Dietterich's error of a metric value: 100 - value for a percentage where higher is
    better, the value where lower is better, NaN otherwise (counts, descriptive metrics)."""
    value = np.asarray(value, dtype=np.float64)
    if not has_error(info):
        return np.full_like(value, np.nan)
    return 100.0 - value if info.better == "higher" else value


def mean_performance(values) -> float:
    """mPC: the mean of a metric over corruptions x severities (NaN values, e.g. an empty bucket, skipped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def relative_performance(clean: float, values) -> float:
    """rPC = mPC / P_clean (Michaelis et al. 2019); NaN when the clean value is 0 or missing."""
    mpc = mean_performance(values)
    return mpc / clean if clean and math.isfinite(clean) and math.isfinite(mpc) else math.nan


def corruption_error(errors, reference_errors) -> float:
    """CE_c = sum_s E_s / sum_s E^ref_s over the severities both have (Hendrycks & Dietterich 2019)."""
    e, r = _paired(errors, reference_errors)
    return float(e.sum() / r.sum()) if e.size and r.sum() > 0 else math.nan


def relative_corruption_error(errors, clean_error: float, reference_errors, reference_clean_error: float) -> float:
    """Relative CE_c = sum_s (E_s - E_clean) / sum_s (E^ref_s - E^ref_clean) (Hendrycks & Dietterich 2019):
    how much of the clean-to-corrupted drop is the model's, against the reference's drop."""
    e, r = _paired(errors, reference_errors)
    denominator = (r - reference_clean_error).sum()
    if not e.size or not math.isfinite(clean_error) or not math.isfinite(reference_clean_error) or denominator <= 0:
        return math.nan
    return float((e - clean_error).sum() / denominator)


def mean_over_corruptions(values) -> float:
    """mCE (or relative mCE): the mean of per-corruption CEs (those that are defined)."""
    return mean_performance(values)


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def metric_parts(metric: str) -> tuple[str, str, str]:
    """(base metric, split, bucket) of a metric name: object_recall_unseen@small -> (object_recall,
    unseen, small); mIoU -> (mIoU, '', '')."""
    m = _PARTS.match(metric)
    if m is None:
        return metric, "", ""
    return m["base"], m["split"] or "", m["bucket"] or ""


# ---------------------------------------------------------------------------------------------
# the tables


def long_table(values: pd.DataFrame, intervals: dict | None = None) -> pd.DataFrame:
    """robustness.csv: `values` (model, condition, corruption, severity, metric, value; the clean
    condition included) with each row's clean value, the difference clean - value, its interval
    (`intervals`: {(model, condition, metric): (lo, hi)}) and value / clean."""
    if not len(values):
        return pd.DataFrame(columns=LONG_COLUMNS)
    clean = values[values["condition"] == CLEAN].set_index(["model", "metric"])["value"]
    out = values.copy()
    out["clean"] = clean.reindex(pd.MultiIndex.from_frame(out[["model", "metric"]])).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["difference"] = out["clean"] - out["value"]
        out["relative"] = np.where(out["clean"] != 0, out["value"] / out["clean"], np.nan)
    keys = zip(out["model"], out["condition"], out["metric"])
    spans = [(intervals or {}).get(k, (math.nan, math.nan)) for k in keys]
    out["difference_lo"] = [lo for lo, _ in spans]
    out["difference_hi"] = [hi for _, hi in spans]
    is_clean = out["condition"] == CLEAN
    out.loc[is_clean, ["difference_lo", "difference_hi"]] = 0.0
    parts = [metric_parts(m) for m in out["metric"]]
    out["base_metric"], out["split"], out["bucket"] = ([p[i] for p in parts] for i in range(3))
    return out[LONG_COLUMNS].reset_index(drop=True)


def summary_table(long: pd.DataFrame, infos: dict[str, MetricInfo], reference: str | None) -> pd.DataFrame:
    """robustness_summary.csv: per (model, metric) and per corruption (each transform, and
    `imagenet_c` over the ImageNet-C corruptions present): mPC and rPC; with a reference model
    also CE and relative CE (per corruption) and mCE and relative mCE (imagenet_c)."""
    rows = []
    corrupted = long[long["condition"] != CLEAN]
    for (model, metric), frame in corrupted.groupby(["model", "metric"], sort=False):
        info = infos.get(metric)
        clean_value = float(frame["clean"].iloc[0])
        parts = metric_parts(metric)
        ref = None
        if reference is not None and reference != model:
            ref = long[(long["model"] == reference) & (long["metric"] == metric)]

        def add(corruption, measure, value):
            rows.append([model, metric, *parts, corruption, measure, value])

        ces, relative_ces = [], []
        for corruption, group in frame.groupby("corruption", sort=False):
            add(corruption, "mPC", mean_performance(group["value"]))
            add(corruption, "rPC", relative_performance(clean_value, group["value"]))
            if ref is None or not has_error(info):
                continue  # no reference, or no error for this metric (counts)
            ce, rce = _corruption_errors(group, ref, corruption, clean_value, info)
            add(corruption, "CE", ce)
            add(corruption, "relative_CE", rce)
            if corruption in IMAGENET_C:
                ces.append(ce)
                relative_ces.append(rce)
        imagenet = frame[frame["corruption"].isin(IMAGENET_C)]
        if len(imagenet):
            add(IMAGENET_C_GROUP, "mPC", mean_performance(imagenet["value"]))
            add(IMAGENET_C_GROUP, "rPC", relative_performance(clean_value, imagenet["value"]))
            if ces:
                add(IMAGENET_C_GROUP, "mCE", mean_over_corruptions(ces))
                add(IMAGENET_C_GROUP, "relative_mCE", mean_over_corruptions(relative_ces))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _corruption_errors(group: pd.DataFrame, ref: pd.DataFrame, corruption: str, clean_value: float,
                       info: MetricInfo | None) -> tuple[float, float]:
    ref_levels = ref[ref["corruption"] == corruption].set_index("severity")["value"]
    ref_clean = ref[ref["condition"] == CLEAN]["value"]
    levels = group.set_index("severity")["value"]
    paired = ref_levels.reindex(levels.index)  # the same severities, in the same order
    errors, ref_errors = metric_error(levels.to_numpy(), info), metric_error(paired.to_numpy(), info)
    ce = corruption_error(errors, ref_errors)
    ref_clean_error = float(metric_error(ref_clean.iloc[0], info)) if len(ref_clean) else math.nan
    rce = relative_corruption_error(errors, float(metric_error(clean_value, info)), ref_errors, ref_clean_error)
    return ce, rce
