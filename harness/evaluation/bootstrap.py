"""Paired bootstrap over images: resample weights, and every family's metrics under them.

B resamples of a model's N images are drawn once (seeded) as a weight matrix W [B, N] (how often each
image is drawn). Whatever is compared under the same W is paired by image: two models on the same
images (the report), or one model under two conditions (harness.evaluation.robustness). Nothing
here knows a family: each family's `resampled` (harness.metrics.family) turns W into its metrics,
each exactly the summary of the resampled dataset (tests/test_resampling.py holds them to the
weighted summary of harness.evaluation.aggregate).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from harness.evaluation.aggregate import class_info, class_sums
from harness.metrics.family import SummaryInputs
from harness.metrics.registry import FAMILIES
from harness.metrics.resampling import Resampling


def draw_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """W [B, n] float64: W[b, i] = how often image i is drawn in resample b (multinomial, rows sum to n)."""
    rng = np.random.default_rng(seed)
    if n == 0 or n_boot == 0:
        return np.zeros((n_boot, n))
    idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int64)
    idx += (np.arange(n_boot, dtype=np.int64) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def resampled_metrics(tables: dict, dataset, protocol, resampling: Resampling, families=None) -> dict[str, np.ndarray]:
    """metric -> [B] values under the resamples, for every metric whose metadata promises an
    interval, of the protocol's families (or only those named in `families`). `tables` are a model's
    records with the pixel table per image. A family that cannot resample these records (e.g.
    records without a column it needs) gives no values rather than failing the caller."""
    inputs = SummaryInputs(pixel_sums=class_sums(tables["pixel"], dataset.num_classes), tables=tables,
                           n_images=resampling.counts.shape[1], classes=class_info(dataset))
    out: dict[str, np.ndarray] = {}
    for name, family in FAMILIES.items():
        if name not in protocol.families or (families is not None and name not in families):
            continue
        cfg = protocol.families[name]
        with_interval = {m.name for m in family.metrics(cfg) if m.interval}
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                values = family.resampled(inputs, cfg, resampling)
        except Exception:  # noqa: BLE001 - see the docstring: no intervals for this family
            continue
        out.update({k: np.asarray(v, dtype=np.float64) for k, v in values.items() if k in with_interval})
    return out


def with_point_row(counts: np.ndarray) -> np.ndarray:
    """`counts` with one more row drawing every image once: its resampled value is the point
    estimate, which `checked` compares (a family whose resampled and summary disagree gets no
    interval rather than a wrong one)."""
    return np.vstack([counts, np.ones((1, counts.shape[1]))])


def checked(values: dict[str, np.ndarray], point: dict) -> dict[str, np.ndarray]:
    """The [B] values (the point row dropped) of the metrics whose point row equals `point`."""
    return {name: v[:-1] for name, v in values.items() if same_value(v[-1], point.get(name))}


def same_value(at_one: float, point: float | None) -> bool:
    if point is None:
        return False
    point = float(point)
    if math.isnan(point) or math.isnan(at_one):
        return math.isnan(point) and math.isnan(at_one)
    return abs(at_one - point) <= 1e-6 * max(1.0, abs(point))


def percentile_interval(values: np.ndarray, level: float = 95.0) -> tuple[float, float]:
    """The central `level`% percentile interval of the finite values (NaN, NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [(100 - level) / 2, 100 - (100 - level) / 2])
    return float(lo), float(hi)
