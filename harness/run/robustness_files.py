"""A run's robustness tables (robustness.csv, robustness_summary.csv) from its summaries and records.

The formulas and table layouts are harness.evaluation.robustness's; this module gathers their
inputs: each (model, condition)'s summary, the conditions' (corruption, severity), every metric's
metadata, and the paired bootstrap of clean - corrupted per model (its per-image records read once
per condition, one set of resamples per model).
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from harness.conditions.spec import CLEAN, Condition, named
from harness.errors import UserError
from harness.evaluation.bootstrap import (
    checked,
    draw_weights,
    percentile_interval,
    resampled_metrics,
    with_point_row,
)
from harness.evaluation.robustness import long_table, summary_table
from harness.files import atomic_write
from harness.metrics.registry import FAMILIES
from harness.metrics.resampling import Resampling
from harness.run import records

ROBUSTNESS = "robustness.csv"
ROBUSTNESS_SUMMARY = "robustness_summary.csv"


def _condition(name: str, known: dict[str, Condition]) -> Condition:
    if name in known:
        return known[name]
    try:
        return named(name)  # a condition an earlier run recorded: its name says (corruption, severity)
    except UserError:
        return Condition(name, "named")


def metric_infos(protocol) -> dict:
    return {m.name: m for name, cfg in protocol.families.items() for m in FAMILIES[name].metrics(cfg)}


def write_robustness(out, summaries: dict, protocol, dataset, stems: list[str]) -> None:
    """Both tables into the run folder, when some model has a condition besides clean."""
    import pandas as pd

    if not any(condition != CLEAN for _, condition in summaries):
        return
    known = {c.name: c for c in protocol.conditions}
    rows = []
    for (model, name), summary in summaries.items():
        condition = _condition(name, known)
        for metric, value in summary.scalars.items():
            if metric == "n_images":
                continue
            rows.append((model, name, condition.corruption, 0.0 if condition.is_clean else condition.severity,
                         metric, float(value) if value is not None else np.nan))
    values = pd.DataFrame(rows, columns=["model", "condition", "corruption", "severity", "metric", "value"])
    intervals = paired_intervals(out, summaries, protocol, dataset, stems) if protocol.robustness.bootstrap else {}
    long = long_table(values, intervals)
    reference = protocol.robustness.reference
    if reference is not None and reference not in set(values["model"]):
        print(f"zeg-eval: robustness.reference '{reference}' has no records in this run folder; no mCE",
              file=sys.stderr, flush=True)
        reference = None
    summary = summary_table(long, metric_infos(protocol), reference)
    for file, frame in ((ROBUSTNESS, long), (ROBUSTNESS_SUMMARY, summary)):
        atomic_write(out / file, lambda tmp, f=frame: f.to_csv(tmp, index=False))


def paired_intervals(out, summaries: dict, protocol, dataset, stems: list[str], level: float = 95.0) -> dict:
    """{(model, condition, metric): (lo, hi)}: the percentile interval of clean - corrupted over B
    resamples of the images, the same resamples for a model's clean and corrupted records (paired by
    image). Metrics whose metadata gives no interval get none."""
    settings = protocol.robustness
    stems = sorted(stems)
    counts = with_point_row(draw_weights(len(stems), settings.bootstrap, settings.seed))
    out_intervals = {}
    for model in sorted({m for m, _ in summaries}):
        conditions = [c for m, c in summaries if m == model]
        if CLEAN not in conditions:
            continue
        clean = _resampled(out, model, CLEAN, summaries, protocol, dataset, stems, counts)
        for condition in conditions:
            if condition == CLEAN:
                continue
            corrupted = _resampled(out, model, condition, summaries, protocol, dataset, stems, counts)
            for metric in clean.keys() & corrupted.keys():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out_intervals[(model, condition, metric)] = percentile_interval(clean[metric] - corrupted[metric],
                                                                                     level)
    return out_intervals


def _resampled(out, model, condition, summaries, protocol, dataset, stems, counts) -> dict[str, np.ndarray]:
    tables = records.read_tables(records.RecordSet(out, model, condition), images=stems, pixel_sums=False)
    order = tables["images"]["image"].astype(str).tolist()
    if sorted(order) != stems:
        return {}
    values = resampled_metrics(tables, dataset, protocol, Resampling(counts, stems))
    return checked(values, summaries[(model, condition)].scalars)
