"""Aggregation: a model's per-image records in, its dataset metrics out (pure; no model needed).

Each family of the protocol summarises the same inputs (harness.metrics.family.SummaryInputs).
`weights` (optional) gives each image a non-negative integer multiplicity, as a bootstrap resample
does: the summary is then exactly the summary of a dataset in which image i appears weights[i]
times (additive pixel counts are multiplied, per-row tables repeat their rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.data.dataset import DatasetSpec
from harness.evaluation.protocol import Protocol
from harness.metrics.family import ClassInfo, SummaryInputs
from harness.metrics.registry import FAMILIES


@dataclass
class ModelSummary:
    scalars: dict          # metric name -> value (percent) or count
    per_class: pd.DataFrame  # one row per class of the dataset
    per_bucket: pd.DataFrame  # one row per (family, bucket kind, bucket)
    confusion: pd.DataFrame | None = None  # one row per (family, class, class predicted instead)


def class_sums(pixel: pd.DataFrame, num_classes: int) -> dict[str, np.ndarray]:
    """Every count column of the pixel table summed over images, as a dense [C] array per column."""
    columns = [c for c in pixel.columns if c not in ("image", "class")]
    sums = {c: np.zeros(num_classes, dtype=np.int64) for c in columns}
    if len(pixel):
        grouped = pixel.groupby("class")[columns].sum()
        index = grouped.index.to_numpy()
        for c in columns:
            sums[c][index] = grouped[c].to_numpy()
    return sums


def class_info(dataset: DatasetSpec) -> ClassInfo:
    return ClassInfo(names=tuple(dataset.classes), unseen=dataset.unseen_mask if dataset.unseen else None,
                     things=dataset.thing_mask, instance_sizes=dataset.instance_size_array,
                     ignore_index=dataset.ignore_index)


def apply_weights(tables: dict[str, pd.DataFrame], weights: pd.Series) -> dict[str, pd.DataFrame]:
    """The tables of a dataset in which image i appears weights[i] times (integer weights >= 0).

    Pixel counts are multiplied (they are additive); other tables repeat each image's rows, the
    k-th copy named '<image>#k'."""
    w = pd.Series(weights)
    if (w < 0).any() or not np.all(np.asarray(w) == np.round(np.asarray(w))):
        raise ValueError("weights must be non-negative integers (how often each image is drawn)")
    out = {}
    for name, frame in tables.items():
        if "image" not in frame.columns or not len(frame):
            out[name] = frame
            continue
        times = frame["image"].map(w).fillna(0).to_numpy(dtype=np.int64)
        if name == "pixel":
            counts = [c for c in frame.columns if c not in ("image", "class")]
            scaled = frame.copy()
            scaled[counts] = frame[counts].to_numpy(dtype=np.int64) * times[:, None]
            out[name] = scaled[times > 0].reset_index(drop=True)
        else:
            frame = frame.reset_index(drop=True)
            repeated = frame.loc[frame.index.repeat(times)]
            # the k-th copy of an image is another image (families may group rows by image)
            copy = repeated.groupby(level=0).cumcount().to_numpy()
            names = repeated["image"].astype(str).to_numpy(dtype=object)
            renamed = np.where(copy > 0, names + "#" + copy.astype(str).astype(object), names)
            out[name] = repeated.assign(image=renamed).reset_index(drop=True)
    return out


def summarize(tables: dict[str, pd.DataFrame], dataset: DatasetSpec, protocol: Protocol,
              weights: pd.Series | None = None) -> ModelSummary:
    """Dataset metrics of every family of the protocol. `tables` as harness.run.records.read_tables
    gives them (the pixel table may be summed per class already); `weights`: see the module docstring
    (they need the pixel table per image)."""
    if weights is not None:
        if "image" not in tables["pixel"].columns:
            raise ValueError("weighted summaries need the pixel table per image (read_tables(pixel_sums=False))")
        tables = apply_weights(tables, weights)
    classes = class_info(dataset)
    n_images = len(tables["images"])
    inputs = SummaryInputs(pixel_sums=class_sums(tables["pixel"], dataset.num_classes), tables=tables,
                           n_images=n_images, classes=classes)
    scalars: dict[str, float] = {"n_images": n_images}
    per_class = pd.DataFrame({"class_id": np.arange(dataset.num_classes), "class": list(dataset.classes),
                              "split": np.where(dataset.unseen_mask, "unseen", "seen") if dataset.unseen else "all"})
    buckets, confusions = [], []
    for name, family in FAMILIES.items():
        if name not in protocol.families:
            continue
        result = family.summarize(inputs, protocol.families[name])
        scalars.update(result.scalars)
        for column, values in result.per_class.items():
            per_class[column] = values
        if result.per_bucket is not None:
            buckets.append(result.per_bucket.assign(family=name))
        if result.confusion is not None:
            confusions.append(result.confusion.assign(family=name))
    per_bucket = pd.concat(buckets, ignore_index=True) if buckets else pd.DataFrame()
    confusion = pd.concat(confusions, ignore_index=True) if confusions else None
    return ModelSummary(scalars=scalars, per_class=per_class, per_bucket=per_bucket, confusion=confusion)
