"""Resampled images as weights, and the weighted sums a family's resampled summary is made of.

A bootstrap resample draws N of a model's N images with replacement; it is written as one row of
`counts` [B, N]: counts[b, i] = how often image i is drawn in resample b (rows of ones: every image
once, the point estimate). A family whose metrics are functions of sums over images (pixel counts
per class, hits and IoUs per bucket, blobs per image) computes every resample at once from these
sums: Σ_i counts[b, i] * (image i's sum) = counts @ M. The metric is then exactly the family's
summary of a dataset in which image i appears counts[b, i] times (harness.evaluation.aggregate's
weighted summary, which the tests compare it with), at the cost of one matrix product.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class Resampling:
    counts: np.ndarray                  # [B, N] float64, how often each image is drawn per resample
    images: Sequence[str]               # the N images, in the columns' order
    _rows: dict = field(default_factory=dict, repr=False)   # (what, id(table)) -> (table, row columns | sums)

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.float64)
        self.images = [str(image) for image in self.images]
        if self.counts.ndim != 2 or self.counts.shape[1] != len(self.images):
            raise ValueError(f"counts must be [B, {len(self.images)}], not {self.counts.shape}")

    @property
    def n_resamples(self) -> int:
        return self.counts.shape[0]

    def drawn(self) -> np.ndarray:
        """[B] images in each resample (the divisor of per-image rates)."""
        return self.counts.sum(axis=1)

    def rows(self, table) -> np.ndarray:
        """The column of `counts` of each row's image (a table with an `image` column)."""
        cached = self._cached("rows", table)
        if cached is not None:
            return cached
        import pandas as pd  # per dataset only (the metric workers never resample)

        rows = pd.Index(self.images).get_indexer(table["image"].astype(str)) if len(table) else \
            np.zeros(0, dtype=np.int64)
        if (rows < 0).any():
            raise ValueError(f"a record names image {table['image'].iloc[int(np.argmax(rows < 0))]!r}, which is "
                             "not among the resampled ones")
        return self._keep("rows", table, rows)

    def _cached(self, what: str, table):
        """What was computed for this very table (the table is kept with it, so its id is not reused)."""
        entry = self._rows.get((what, id(table)))
        return entry[1] if entry is not None and entry[0] is table else None

    def _keep(self, what: str, table, value):
        self._rows[(what, id(table))] = (table, value)
        return value

    def sums(self, table, values: np.ndarray) -> np.ndarray:
        """[B, k]: Σ over rows of counts[:, row's image] * values[row] (values [rows, k])."""
        values = np.asarray(values, dtype=np.float64).reshape(len(table), -1)
        rows, n = self.rows(table), len(self.images)
        per_image = np.stack([np.bincount(rows, weights=column, minlength=n) for column in values.T], axis=1) \
            if values.shape[1] else np.zeros((n, 0))
        return self.counts @ per_image

    def class_sums(self, table, columns: Sequence[str], num_classes: int) -> dict[str, np.ndarray]:
        """{column: [B, C]}: each column of a per-image x class table (`image`, `class`, counts) summed
        over the resampled images, class by class (cost B x rows, not B x N x C). Every count column
        of the table is summed in the same pass and kept, so that the next family asking (standard,
        then boundary, from the same pixel table) gets its sums without a second pass."""
        sums = self._cached("class_sums", table)
        if sums is None or not set(columns) <= set(sums):
            every = [c for c in table.columns if c not in ("image", "class")]
            sums = self._keep("class_sums", table, self._class_sums(table, every, num_classes))
        return {c: sums[c] for c in columns}

    def _class_sums(self, table, columns: list[str], num_classes: int) -> dict[str, np.ndarray]:
        out = {c: np.zeros((self.n_resamples, num_classes)) for c in columns}
        if not len(table) or not columns:
            return out
        values = np.ascontiguousarray(table[columns].to_numpy(dtype=np.float64))
        cls = table["class"].to_numpy(dtype=np.int64)
        image = self.rows(table)
        counts_t = np.ascontiguousarray(self.counts.T)  # [N, B]: gathering rows is contiguous
        order = np.argsort(cls, kind="stable")
        for rows in np.split(order, np.flatnonzero(np.diff(cls[order])) + 1):
            block = counts_t[image[rows]].T @ values[rows]  # [B, k]
            for j, column in enumerate(columns):
                out[column][:, cls[rows[0]]] = block[:, j]
        return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (an empty bucket in a resample)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)
