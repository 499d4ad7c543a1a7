"""How the report writes a number: one rule per unit, shared by the page and the paper tables.

The unit comes from the metric's `MetricInfo` (harness.metrics.family): counts are integers, rates
per image three decimals, percentages two. A value that rounds to zero is written without a sign
(never `-0.00`), and so is a delta that rounds to zero (never `+0.00`). Counts and descriptive
constants of the data (n_objects, mean occlusion) have no delta: every model on the same data
shares them.
"""
from __future__ import annotations

import math

from harness.metrics.family import COUNT, PER_IMAGE, PIXELS, MetricInfo


def digits(info: MetricInfo) -> int:
    """Decimals shown for a metric of this unit."""
    if info.unit in (COUNT, PIXELS):
        return 0
    return 3 if info.unit == PER_IMAGE else 2


def has_delta(info: MetricInfo) -> bool:
    """Counts, and descriptive metrics without a direction or an interval (a property of the data
    such as mean_occlusion), are the same for every model on the same data: no delta."""
    return not info.is_count and not (info.better is None and not info.interval)


def fixed(x: float, n: int) -> str:
    """x with n decimals and thousands separators; a value that rounds to zero has no sign."""
    text = f"{x:,.{n}f}"
    if float(text.replace(",", "")) == 0:
        text = f"{0:.{n}f}"
    return text


def value_text(value, info: MetricInfo) -> str:
    """A metric's value: `absent` (the family was not computed), `n/a` (undefined), else the number."""
    if value is None:
        return "absent"
    if not math.isfinite(value):
        return "n/a"
    if info.is_count and not float(value).is_integer():
        return fixed(value, 1)   # a mean count (e.g. per resample) keeps one decimal
    return fixed(value, digits(info))


def delta_text(delta, info: MetricInfo) -> str:
    """model - baseline with its sign; `0.00` (no sign) where it rounds to zero."""
    if delta is None:
        return ""
    if not math.isfinite(delta):
        return "n/a"
    text = fixed(abs(delta), digits(info))
    if float(text.replace(",", "")) == 0:
        return text
    return ("+" if delta > 0 else "-") + text


def interval_text(lo: float, hi: float, info: MetricInfo, signed: bool = False) -> str:
    """`[lo, hi]`; empty without an interval. signed: both ends as deltas (with their signs)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if signed:
        return f"[{delta_text(lo, info)}, {delta_text(hi, info)}]"
    return f"[{value_text(lo, info)}, {value_text(hi, info)}]"


def rounds_to_zero(delta, info: MetricInfo) -> bool:
    """The delta as shown is zero (then it is never emphasised, whatever its interval)."""
    return delta is None or not math.isfinite(delta) or float(fixed(abs(delta), digits(info)).replace(",", "")) == 0


def data_number(value) -> str:
    """Full-precision value for data attributes (what the tests and the sorting read): '' for none,
    'nan' for a missing number."""
    if value is None:
        return ""
    return "nan" if not math.isfinite(value) else repr(float(value))
