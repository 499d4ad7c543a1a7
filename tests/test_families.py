"""The family interface: each family honours its own parameters, shares the per-image context,
summarises weighted records as a dataset with repeated images, and describes every metric it gives."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data.dataset import DatasetSpec
from harness.evaluation.aggregate import summarize
from harness.evaluation.evaluate import ImageInputs, evaluate_image
from harness.evaluation.protocol import Protocol, family_config, load_protocol
from harness.evaluation.tables import tables_to_frames
from harness.metrics import objects as objects_mod
from harness.metrics.registry import FAMILIES

DATASET = DatasetSpec(root=Path("."), name="t", classes=("bg", "a", "b"), unseen=("b",))


def _protocol(**families) -> Protocol:
    return Protocol(name="t", families={k: family_config(k, v) for k, v in families.items()})


def test_occlusion_uses_its_own_connectivity():
    # Two pixels of class 1 touching at a corner (the rest unlabelled): one 8-connected object,
    # two 4-connected ones.
    gt = np.full((4, 4), 255, np.uint8)
    gt[1, 1] = gt[2, 2] = 1
    protocol = _protocol(standard={}, size={"connectivity": 8}, occlusion={"connectivity": 4})
    tables = evaluate_image(ImageInputs(gt=gt, pred=gt.copy()), DATASET, protocol)
    assert len(tables["objects"]["area"]) == 1 and tables["objects"]["area"].tolist() == [2]
    assert tables["occlusion_objects"]["area"].tolist() == [1, 1]
    assert tables["occlusion_objects"]["fragments"].tolist() == [1, 1]


def test_occlusion_fragments_of_an_instance_at_its_connectivity():
    # One instance of two diagonal pixels: one fragment 8-connected, two 4-connected.
    gt = np.full((4, 4), 255, np.uint8)
    gt[1, 1] = gt[2, 2] = 1
    instances = np.zeros((4, 4), np.uint16)
    instances[1, 1] = instances[2, 2] = 7
    for connectivity, fragments in ((8, 1), (4, 2)):
        protocol = _protocol(standard={}, occlusion={"connectivity": connectivity})
        tables = evaluate_image(ImageInputs(gt=gt, pred=gt.copy(), instances=instances), DATASET, protocol)
        assert tables["occlusion_objects"]["fragments"].tolist() == [fragments]


def test_occlusion_hit_uses_its_own_threshold():
    gt = np.full((4, 8), 255, np.uint8)
    gt[:, :4] = 1            # one object of 16 pixels
    pred = gt.copy()
    pred[:, :2] = 0          # half of it found: recall 0.5
    protocol = _protocol(standard={}, size={"hit_threshold": 0.5}, occlusion={"hit_threshold": 0.75})
    tables = evaluate_image(ImageInputs(gt=gt, pred=pred), DATASET, protocol)
    assert tables["objects"]["hit"].tolist() == [True]
    assert tables["occlusion_objects"]["hit"].tolist() == [False]


def test_objects_are_extracted_once_when_families_share_them(monkeypatch):
    calls = []
    real = objects_mod.extract_objects

    def counting(*args, **kwargs):
        calls.append(kwargs.get("connectivity"))
        return real(*args, **kwargs)

    monkeypatch.setattr("harness.metrics.context.extract_objects", counting)
    gt = np.zeros((6, 6), np.uint8)
    gt[1:3, 1:3] = 1
    evaluate_image(ImageInputs(gt=gt, pred=gt.copy()), DATASET, _protocol(standard={}, size={}, occlusion={}))
    assert calls == [8]
    calls.clear()
    evaluate_image(ImageInputs(gt=gt, pred=gt.copy()), DATASET,
                   _protocol(standard={}, size={}, occlusion={"connectivity": 4}))
    assert sorted(calls) == [4, 8]


def _random_image(rng, h=24, w=32):
    gt = rng.integers(0, 3, (h // 4, w // 4)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.03] = 255
    pred = gt.copy()
    pred[rng.random(gt.shape) < 0.2] = rng.integers(0, 3)
    pred[pred == 255] = 0
    return gt, pred


def _equal_scalars(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        if isinstance(a[k], float) and np.isnan(a[k]):
            assert np.isnan(b[k]), k
        else:
            assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-12), k


def test_weighted_summary_is_the_summary_of_repeated_images():
    rng = np.random.default_rng(3)
    protocol = _protocol(**{name: {} for name in FAMILIES})
    images = {f"im{i}": _random_image(rng) for i in range(4)}
    evaluated = {stem: evaluate_image(ImageInputs(gt=g, pred=p), DATASET, protocol) for stem, (g, p) in images.items()}
    weights = pd.Series({"im0": 2, "im1": 0, "im2": 1, "im3": 3})
    weighted = summarize(tables_to_frames(evaluated.items()), DATASET, protocol, weights=weights)
    # the same dataset written out: im0 twice, im2 once, im3 three times
    repeated = [(f"{stem}#{k}", evaluated[stem]) for stem, n in weights.items() for k in range(n)]
    plain = summarize(tables_to_frames(repeated), DATASET, protocol)
    _equal_scalars(weighted.scalars, plain.scalars)
    assert weighted.scalars["n_images"] == 6


def test_weights_must_be_counts():
    protocol = _protocol(standard={})
    gt, pred = _random_image(np.random.default_rng(0))
    tables = tables_to_frames([("a", evaluate_image(ImageInputs(gt=gt, pred=pred), DATASET, protocol))])
    with pytest.raises(ValueError, match="non-negative integers"):
        summarize(tables, DATASET, protocol, weights=pd.Series({"a": 0.5}))


@pytest.mark.parametrize("name", ["small_targets", "occlusion", "boundary", "all"])
def test_every_summary_metric_has_metadata(name):
    protocol = load_protocol(Path(__file__).resolve().parents[1] / "protocols" / f"{name}.yaml")
    rng = np.random.default_rng(1)
    evaluated = [(f"im{i}", evaluate_image(ImageInputs(gt=g, pred=p), DATASET, protocol))
                 for i, (g, p) in enumerate(_random_image(rng) for _ in range(3))]
    summary = summarize(tables_to_frames(evaluated), DATASET, protocol)
    described = {info.name: info for family, cfg in protocol.families.items()
                 for info in FAMILIES[family].metrics(cfg)}
    missing = sorted(set(summary.scalars) - set(described) - {"n_images"})
    assert not missing
    for info in described.values():
        assert info.definition and info.better in ("higher", "lower", None)
        assert not (info.is_count and info.interval), info.name
