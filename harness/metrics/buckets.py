"""Bucket membership: the one place that says which values a bucket [lo, hi] holds.

Two rules, one per kind of quantity:

* `left_closed` (sizes: pixel areas, shares of the image): lo <= v < hi, as COCO's area ranges;
  an open end (None) is -inf / +inf;
* `right_closed` (occlusion levels in [0, 1]): lo < v <= hi, so that level 0 (unoccluded) falls in
  the bucket whose low end is None (v <= hi) and not in (0, 0.25].
"""
from __future__ import annotations

import numpy as np

LEFT_CLOSED, RIGHT_CLOSED = "left_closed", "right_closed"


def in_bucket(values: np.ndarray, lo, hi, rule: str = LEFT_CLOSED) -> np.ndarray:
    """Bool mask of the values inside the bucket (lo, hi) under `rule` (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    low = -np.inf if lo is None else float(lo)
    high = np.inf if hi is None else float(hi)
    if rule == LEFT_CLOSED:
        return (values >= low) & (values < high)
    if rule == RIGHT_CLOSED:
        return values <= high if lo is None else (values > low) & (values <= high)
    raise ValueError(f"unknown bucket rule {rule!r}")


def bucket_masks(values: np.ndarray, buckets: dict, rule: str = LEFT_CLOSED) -> dict[str, np.ndarray]:
    """{bucket name: mask} for every bucket of a {name: (lo, hi)} mapping."""
    return {name: in_bucket(values, lo, hi, rule) for name, (lo, hi) in buckets.items()}
