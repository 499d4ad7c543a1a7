"""Relative robustness (Michaelis et al. 2019) and Corruption Errors (Hendrycks & Dietterich 2019) on
numbers worked out by hand, and the tables that gather them."""
import math

import numpy as np
import pandas as pd
import pytest

from harness.evaluation.robustness import (
    corruption_error,
    long_table,
    mean_performance,
    metric_error,
    metric_parts,
    relative_corruption_error,
    relative_performance,
    summary_table,
)
from harness.metrics.family import COUNT, MetricInfo

MIOU = MetricInfo("mIoU", "standard")                       # %, higher is better
FP_SHARE = MetricInfo("mE_segment_oU", "boundary", better="lower")
COUNTED = MetricInfo("n_objects", "size", unit=COUNT, better=None)


def test_error_follows_the_direction_of_the_metric():
    assert metric_error(72.5, MIOU) == pytest.approx(27.5)
    assert metric_error(12.0, FP_SHARE) == pytest.approx(12.0)
    assert math.isnan(metric_error(40, COUNTED))
    assert math.isnan(metric_error(40, None))


def test_relative_performance_by_hand():
    # clean 90; corrupted 80, 60, 40 -> mPC 60, rPC 60 / 90
    assert mean_performance([80, 60, 40]) == 60
    assert relative_performance(90, [80, 60, 40]) == pytest.approx(2 / 3)
    assert relative_performance(90, [80, np.nan, 40]) == pytest.approx(60 / 90)  # an empty bucket is skipped
    assert math.isnan(relative_performance(0, [1, 2]))


def test_corruption_error_by_hand():
    # model mIoU 80, 60, 40 -> errors 20, 40, 60 (sum 120); reference 70, 50, 30 -> 30, 50, 70 (sum 150)
    errors = metric_error(np.array([80, 60, 40]), MIOU)
    reference = metric_error(np.array([70, 50, 30]), MIOU)
    assert corruption_error(errors, reference) == pytest.approx(120 / 150)
    # relative: model clean 90 (E 10): (10 + 30 + 50) = 90; reference clean 80 (E 20): (10 + 30 + 50) = 90
    assert relative_corruption_error(errors, 10.0, reference, 20.0) == pytest.approx(1.0)
    # a reference that does not degrade at all gives no relative CE (0 in the denominator)
    assert math.isnan(relative_corruption_error(errors, 10.0, np.array([20.0, 20.0, 20.0]), 20.0))


def test_metric_parts():
    assert metric_parts("object_recall_unseen@small") == ("object_recall", "unseen", "small")
    assert metric_parts("mIoU_unseen") == ("mIoU", "unseen", "")
    assert metric_parts("object_IoU@rel_tiny") == ("object_IoU", "", "rel_tiny")
    assert metric_parts("hIoU") == ("hIoU", "", "")


def _values(rows):
    return pd.DataFrame(rows, columns=["model", "condition", "corruption", "severity", "metric", "value"])


def test_summary_tables_by_hand():
    rows = []
    # model a: clean 90; gaussian_noise 80, 60; fog 70, 50; jpeg (a knob) 88
    # reference r: clean 80; gaussian_noise 60, 40; fog 70, 60; jpeg 79
    for model, clean, noise, fog, jpeg in (("a", 90, (80, 60), (70, 50), 88), ("r", 80, (60, 40), (70, 60), 79)):
        rows.append((model, "clean", "clean", 0, "mIoU", clean))
        for s, v in zip((1, 2), noise):
            rows.append((model, f"gaussian_noise-{s}", "gaussian_noise", s, "mIoU", v))
        for s, v in zip((1, 2), fog):
            rows.append((model, f"fog-{s}", "fog", s, "mIoU", v))
        rows.append((model, "jpeg-20", "jpeg", 20, "mIoU", jpeg))
    long = long_table(_values(rows), {("a", "fog-1", "mIoU"): (1.0, 3.0)})
    row = long[(long["model"] == "a") & (long["condition"] == "fog-1")].iloc[0]
    assert (row["clean"], row["difference"], row["difference_lo"], row["difference_hi"]) == (90, 20, 1.0, 3.0)
    assert row["relative"] == pytest.approx(70 / 90)
    clean_row = long[(long["model"] == "a") & (long["condition"] == "clean")].iloc[0]
    assert clean_row["difference"] == 0 and clean_row["relative"] == 1

    summary = summary_table(long, {"mIoU": MIOU}, reference="r")
    got = {(r.model, r.corruption, r.measure): r.value for r in summary.itertuples()}
    # mPC over the ImageNet-C corruptions only (the jpeg knob apart): (80 + 60 + 70 + 50) / 4 = 65
    assert got[("a", "imagenet_c", "mPC")] == pytest.approx(65)
    assert got[("a", "imagenet_c", "rPC")] == pytest.approx(65 / 90)
    assert got[("a", "jpeg", "rPC")] == pytest.approx(88 / 90)
    # CE noise: (20 + 40) / (40 + 60) = 0.6; fog: (30 + 50) / (30 + 40) = 8/7; mCE = mean
    assert got[("a", "gaussian_noise", "CE")] == pytest.approx(0.6)
    assert got[("a", "fog", "CE")] == pytest.approx(8 / 7)
    assert got[("a", "imagenet_c", "mCE")] == pytest.approx((0.6 + 8 / 7) / 2)
    # relative CE noise: ((20-10) + (40-10)) / ((40-20) + (60-20)) = 40 / 60; fog: (20 + 40) / (10 + 20) = 2
    assert got[("a", "gaussian_noise", "relative_CE")] == pytest.approx(40 / 60)
    assert got[("a", "imagenet_c", "relative_mCE")] == pytest.approx((40 / 60 + 2) / 2)
    # the reference has no CE against itself
    assert ("r", "imagenet_c", "mCE") not in got and ("r", "imagenet_c", "rPC") in got


def test_no_corruption_error_for_counts_or_without_reference():
    rows = [("a", "clean", "clean", 0, "n_objects", 10), ("a", "fog-1", "fog", 1, "n_objects", 10),
            ("r", "clean", "clean", 0, "n_objects", 10), ("r", "fog-1", "fog", 1, "n_objects", 10)]
    summary = summary_table(long_table(_values(rows)), {"n_objects": COUNTED}, reference="r")
    assert set(summary["measure"]) == {"mPC", "rPC"}
    summary = summary_table(long_table(_values(rows)), {"n_objects": COUNTED}, reference=None)
    assert "CE" not in set(summary["measure"])
