"""Each family's `resampled` (the report's bootstrap, every resample at once from weighted sums)
equals the family's own summary of the resampled dataset, built independently by repeating each
image's records (`aggregate.summarize(..., weights=)`), draw by draw; and every metric whose metadata
promises an interval gets one. On the generated sample (objects from components, amodal masks) and
on the real COCO panoptic sample (exact instances), with every family of protocols/all.yaml."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.realdata import write_real_dataset

from harness import cli
from harness.data.dataset import load_dataset
from harness.data.sample import SampleConfig, make_sample
from harness.evaluation.aggregate import class_info, class_sums, summarize
from harness.evaluation.protocol import load_protocol
from harness.metrics.family import SummaryInputs
from harness.metrics.registry import FAMILIES
from harness.metrics.resampling import Resampling
from harness.run.records import RecordSet, read_tables

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "all.yaml"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """{dataset: (dataset spec, {model: tables})} of two baselines on two datasets."""
    root = tmp_path_factory.mktemp("resampling")
    datasets = {"sample": make_sample(root / "sample", SampleConfig(n_images=8)),
                "coco_panoptic2": write_real_dataset("coco_panoptic2", root / "panoptic")}
    out = {}
    for name, data in datasets.items():
        run = root / f"run_{name}"
        assert cli.main(["run", str(PROTOCOL), "--data", str(data), "--model", "drop_small", "--model", "erode_2",
                         "--out", str(run), "--workers", "0"]) == 0
        tables = {m: read_tables(RecordSet(run, m)) for m in ("drop_small", "erode_2")}
        out[name] = (load_dataset(data), tables)
    return out


def _draws(stems: list[str], seed: int) -> np.ndarray:
    """Four resamples: three multinomial draws and one that leaves the first image out."""
    rng = np.random.default_rng(seed)
    n = len(stems)
    rows = [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(3)]
    rows.append(np.r_[0, np.full(n - 1, 1)] if n > 1 else np.ones(n))
    return np.array(rows, dtype=np.float64)


def _equal(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("dataset_name", ["sample", "coco_panoptic2"])
@pytest.mark.parametrize("model", ["drop_small", "erode_2"])
def test_resampled_equals_the_summary_of_the_repeated_records(scored, dataset_name, model):
    dataset, by_model = scored[dataset_name]
    tables = by_model[model]
    protocol = load_protocol(PROTOCOL)
    stems = sorted(tables["images"]["image"].astype(str))
    counts = _draws(stems, seed=len(stems))
    resampling = Resampling(counts, stems)
    inputs = SummaryInputs(pixel_sums=class_sums(tables["pixel"], dataset.num_classes), tables=tables,
                           n_images=len(stems), classes=class_info(dataset))
    compared = 0
    for b, row in enumerate(counts):
        weighted = summarize(tables, dataset, protocol, weights=pd.Series(row.astype(int), index=stems)).scalars
        for name, family in FAMILIES.items():
            values = family.resampled(inputs, protocol.families[name], resampling)
            for metric, value in values.items():
                if "@pct_" in metric:
                    continue  # percentile buckets keep the whole data's edges; a repeated dataset has its own
                assert _equal(float(value[b]), weighted[metric]), (name, metric, b, float(value[b]), weighted[metric])
                compared += 1
    assert compared > 4 * 60


@pytest.mark.parametrize("dataset_name", ["sample", "coco_panoptic2"])
def test_every_metric_with_an_interval_is_resampled(scored, dataset_name):
    dataset, by_model = scored[dataset_name]
    tables = by_model["erode_2"]
    protocol = load_protocol(PROTOCOL)
    stems = sorted(tables["images"]["image"].astype(str))
    resampling = Resampling(np.ones((1, len(stems))), stems)
    inputs = SummaryInputs(pixel_sums=class_sums(tables["pixel"], dataset.num_classes), tables=tables,
                           n_images=len(stems), classes=class_info(dataset))
    point = summarize(tables, dataset, protocol).scalars
    for name, family in FAMILIES.items():
        cfg = protocol.families[name]
        promised = {m.name for m in family.metrics(cfg) if m.interval and m.name in point}
        resampled = family.resampled(inputs, cfg, resampling)
        assert promised <= set(resampled), (name, sorted(promised - set(resampled)))
        assert set(resampled) <= {m.name for m in family.metrics(cfg) if m.interval}, name
        for metric, values in resampled.items():  # every image once: the point estimate itself
            assert _equal(float(values[0]), point[metric]), (metric, float(values[0]), point[metric])
