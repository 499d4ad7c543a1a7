"""The interface every metric family implements, in the spirit of detectron2's `DatasetEvaluator`
(a per-image pass, then a dataset summary) and torchmetrics' `Metric` (per-image state that can be
merged: here, record rows that are concatenated or summed).

A family is one module with one `Family` subclass and one entry in `harness.metrics.registry`:

* `config_type`: its parameters, a frozen dataclass whose `__post_init__` rejects values out of range;
* `image_tables(ctx, cfg)`: one image's record rows, computed from the shared `ImageContext` (which
  caches intermediates such as the standard counts and the object map, so two families never
  compute them twice). Columns of the `pixel` table must be additive over images;
* `summarize(inputs, cfg)`: dataset metrics from every image's records;
* `resampled(inputs, cfg, resampling)`: the metrics that have an interval, under B resamples of the
  images at once (harness.metrics.resampling), each exactly the summary of the resampled dataset;
  the report's bootstrap is this call and nothing family-specific;
* `metrics(cfg)`: what each metric is (unit, direction, interval, definition, source), for reports.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from harness.metrics.resampling import Resampling

if TYPE_CHECKING:
    import pandas as pd


PERCENT, COUNT, PER_IMAGE, PIXELS = "%", "count", "per image", "pixels"


@dataclass(frozen=True)
class MetricInfo:
    """What one summary metric is. `better` is "higher", "lower" or None (descriptive only)."""
    name: str
    family: str
    unit: str = PERCENT
    better: str | None = "higher"
    interval: bool = True     # a bootstrap interval over images is meaningful
    definition: str = ""
    source: str = ""          # the paper or tool whose definition it follows

    @property
    def is_count(self) -> bool:
        return self.unit in (COUNT, PIXELS)


@dataclass(frozen=True)
class ClassInfo:
    """What a summary needs to know of the dataset's classes."""
    names: tuple[str, ...]
    unseen: np.ndarray | None = None   # bool [C], None when the dataset has no seen/unseen split
    things: np.ndarray | None = None   # bool [C], the classes that make objects (None: every class)
    instance_sizes: np.ndarray | None = None  # float [C], the iIoU weights' table (None: the data mean)
    ignore_index: int = 255

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass
class SummaryInputs:
    """Every image's records, as a family's summary reads them.

    pixel_sums: each column of the pixel table summed over images, a dense [C] int64 array per
    column; tables: the other record tables (one DataFrame each, with an `image` column);
    n_images: the images evaluated."""
    pixel_sums: dict[str, np.ndarray]
    tables: dict[str, pd.DataFrame]
    n_images: int
    classes: ClassInfo


@dataclass
class FamilySummary:
    scalars: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, np.ndarray] = field(default_factory=dict)  # column -> [C]
    per_bucket: pd.DataFrame | None = None                          # one row per bucket
    confusion: pd.DataFrame | None = None   # one row per (class, class it was predicted as): confusion.csv


class Family:
    """Base class of a metric family (see the module docstring)."""

    name: ClassVar[str]
    config_type: ClassVar[type]
    tables: ClassVar[tuple[str, ...]] = ()   # record tables (besides `pixel` columns) it writes rows to

    def image_tables(self, ctx, cfg) -> dict[str, dict[str, np.ndarray]]:
        """ctx: the image's harness.metrics.context.ImageContext (not imported here: the context
        reads the standard family, which is a Family)."""
        return {}

    def summarize(self, inputs: SummaryInputs, cfg) -> FamilySummary:
        raise NotImplementedError

    def resampled(self, inputs: SummaryInputs, cfg, resampling: Resampling) -> dict[str, np.ndarray]:
        """{metric: [B] values}, one per resample, for the metrics whose MetricInfo has an interval.
        `inputs.tables` holds the pixel table per image. None by default (no intervals)."""
        return {}

    def metrics(self, cfg) -> tuple[MetricInfo, ...]:
        return ()


# ---------------------------------------------------------------------------------------------
# checks shared by the families' config dataclasses (they raise ValueError("<field>: <why>"))


def check_number(cfg, name: str, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, not {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, not {value!r}")


def check_choice(cfg, name: str, choices) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or value not in choices or type(value) is not type(choices[0]):
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")


def check_buckets(cfg, name: str, low=None, high=None) -> None:
    """A bucket mapping {name: (lo, hi)}: numbers or None (open end), lo <= hi, within [low, high]."""
    buckets = getattr(cfg, name)
    if not isinstance(buckets, dict) or not buckets:
        raise ValueError(f"{name} must map at least one bucket name to [low, high]")
    for bucket, edges in buckets.items():
        if not isinstance(bucket, str) or not bucket:
            raise ValueError(f"{name}: bucket names must be non-empty strings, not {bucket!r}")
        if not isinstance(edges, (tuple, list)) or len(edges) != 2:
            raise ValueError(f"{name}.{bucket} must be [low, high]")
        for edge in edges:
            if edge is not None and (isinstance(edge, bool) or not isinstance(edge, (int, float))
                                     or math.isnan(edge)):
                raise ValueError(f"{name}.{bucket}: edges must be numbers or null, not {edge!r}")
            if edge is not None and ((low is not None and edge < low) or (high is not None and edge > high)):
                raise ValueError(f"{name}.{bucket}: edges must lie in [{low}, {high}], not {edge!r}")
        lo, hi = edges
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{name}.{bucket}: low {lo} is above high {hi}")
        if lo is None and hi is None:
            raise ValueError(f"{name}.{bucket}: at least one edge must be a number")


def config_fields(cfg) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
