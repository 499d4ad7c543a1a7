"""Per-image record tables: their names, and how the tables of many images are joined.

Every per-image evaluation returns {table: {column: 1-D array}}; a table's rows for several images
are their rows one after the other, with an `image` column first.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.metrics.registry import family_tables

if TYPE_CHECKING:
    import pandas as pd

# `pixel`: one row per class present in an image (additive counts); `images`: one row per image,
# written last (it commits a chunk of records); between them the families' own tables.
TABLES = ("pixel",) + family_tables() + ("images",)

# Incremented by any code change that changes what is recorded for the same inputs, so that a
# rerun never reuses records made by other code (harness.run.identity).
RECORDS_VERSION = 2


def concat_tables(items) -> dict[str, dict[str, np.ndarray]]:
    """Per-image tables [(image, {table: {column: array}})] -> per table, every image's rows
    concatenated, with an `image` column first. A table without rows is {"image": []}."""
    items = list(items)
    out = {}
    for table in TABLES:
        parts = [(image, columns) for image, columns in ((im, t.get(table) or {}) for im, t in items)
                 if columns and len(next(iter(columns.values())))]
        if not parts:
            out[table] = {"image": np.array([], dtype=object)}
            continue
        names = list(parts[0][1])
        for image, columns in parts:
            if list(columns) != names:  # every image of a run has the same columns (one protocol)
                raise ValueError(f"table '{table}' of image '{image}' has columns {list(columns)}, not {names}")
        counts = [len(columns[names[0]]) for _, columns in parts]
        merged = {"image": np.repeat(np.array([image for image, _ in parts], dtype=object), counts)}
        for name in names:
            merged[name] = np.concatenate([columns[name] for _, columns in parts])
        out[table] = merged
    return out


def tables_to_frames(items) -> dict[str, pd.DataFrame]:
    """Per-image tables [(image, {table: {column: array}})] -> one DataFrame per table, with `image`."""
    import pandas as pd

    return {table: pd.DataFrame(columns) for table, columns in concat_tables(items).items()}
