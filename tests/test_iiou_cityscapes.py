"""iIoU equals cityscapesScripts' own evaluator (cityscapesscripts 2.3.0 from PyPI, its
evalPixelLevelSemanticLabeling run here on files written in the Cityscapes layout), overall and per
size bucket, on two real samples and two predictions each.

How the samples become Cityscapes files (the evaluator is generic apart from its label table):
* labels: each class gets a label id, thing classes first (1..T); an instance is label_id * 1000 + k
  (k >= 1) in a 32-bit TIFF; the ignore value becomes id 0, a label with ignoreInEval;
  the label table of the evaluator module is replaced by these labels (hasInstances = thing);
* instances: COCO panoptic's instance maps as they are; for COCO-Stuff, which has none, the
  8-connected components of each thing class, found here with OpenCV (zeg-eval's own default);
* avgClassSize: the mean area of each thing class's instances over the sample, computed here
  (zeg-eval's default weights: the data mean);
* iIoU@<bucket>: the evaluator run again with only the bucket's instances in the instance maps
  (the others' pixels keep their class id, as stuff pixels do).
numpy 2 removed `np.in1d`, which the evaluator calls: the test puts `np.isin` in its place.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers.realdata import write_real_dataset
from PIL import Image

from harness import cli
from harness.data.dataset import load_dataset
from harness.data.imageio import write_label_png

pytestmark = pytest.mark.slow  # the peer's evaluator in Python, twice per bucket

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, None)}


@pytest.fixture(scope="module")
def cityscapes():
    if not hasattr(np, "in1d"):
        np.in1d = np.isin  # removed in numpy 2.4; the evaluator still calls it
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as evaluator

    return evaluator


def _label_ids(dataset) -> tuple[np.ndarray, list]:
    """class id -> label id (things 1..T, then stuff), and the evaluator's Label list."""
    from cityscapesscripts.helpers.labels import Label

    things = dataset.thing_mask if dataset.thing_mask is not None else np.ones(dataset.num_classes, bool)
    order = list(np.flatnonzero(things)) + list(np.flatnonzero(~things))
    ids = np.zeros(dataset.num_classes, np.int64)
    ids[order] = np.arange(1, dataset.num_classes + 1)
    labels = [Label("void", 0, 255, "void", 0, False, True, (0, 0, 0))]
    labels += [Label(dataset.classes[c], int(ids[c]), int(c), "thing" if things[c] else "stuff", 1 if things[c] else 2,
                     bool(things[c]), False, (0, 0, 0)) for c in range(dataset.num_classes)]
    return ids, labels


def _instances(dataset, stem: str, gt: np.ndarray) -> np.ndarray:
    """Instance index map (0 = none, 1..n) of one image: the dataset's own, or 8-connected components
    of each thing class (found with OpenCV, independently of zeg-eval)."""
    given = dataset.load_instances(stem)
    if given is not None:
        return given.astype(np.int64)
    out = np.zeros(gt.shape, np.int64)
    things = dataset.thing_mask
    for c in np.unique(gt):
        if c == dataset.ignore_index or (things is not None and not things[c]):
            continue
        n, comp = cv2.connectedComponents((gt == c).astype(np.uint8), connectivity=8)
        out[comp > 0] = comp[comp > 0] + out.max()
    return out


def _predictions(gt: np.ndarray, num_classes: int, ignore: int) -> dict[str, np.ndarray]:
    """Two deterministic predictions: the ground truth shifted; shifted and with classes swapped on the
    right half. The ignore value becomes class 0 (a prediction names a class)."""
    shifted = np.roll(gt, (4, -7), axis=(0, 1)).astype(np.int64)
    swapped = np.roll(gt, 3, axis=0).astype(np.int64)
    half = swapped[:, gt.shape[1] // 2:]
    swapped[:, gt.shape[1] // 2:] = np.where(half == ignore, half, (half + 1) % num_classes)
    return {name: np.where(p == ignore, 0, p).astype(np.uint16) for name, p in
            (("shifted", shifted), ("swapped", swapped))}


def _cityscapes_iiou(evaluator, labels, files, size_table, monkeypatch) -> float:
    from cityscapesscripts.helpers import labels as labels_module

    monkeypatch.setattr(evaluator, "labels", labels)
    monkeypatch.setattr(evaluator, "id2label", {label.id: label for label in labels})
    monkeypatch.setattr(evaluator, "name2label", {label.name: label for label in labels})
    categories = {}
    for label in labels:
        categories.setdefault(label.category, []).append(label)
    monkeypatch.setattr(evaluator, "category2labels", categories)
    assert labels_module.labels is not labels  # only the evaluator's view is replaced
    args = evaluator.args
    monkeypatch.setattr(args, "avgClassSize", size_table)
    monkeypatch.setattr(args, "JSONOutput", False)
    monkeypatch.setattr(args, "quiet", True)
    monkeypatch.setattr(args, "evalPixelAccuracy", False)
    monkeypatch.setattr(args, "evalInstLevelScore", True)
    result = evaluator.evaluateImgLists([str(p) for p, _ in files], [str(g) for _, g in files], args)
    return 100 * result["averageScoreInstClasses"]


@pytest.mark.parametrize("sample, weights", [("coco_panoptic2", "data mean"), ("coco_stuff10", "data mean"),
                                             ("coco_panoptic2", "table")])
def test_iiou_equals_cityscapesscripts(sample, weights, cityscapes, tmp_path, monkeypatch, capsys):
    data = write_real_dataset(sample, tmp_path / "data")
    dataset = load_dataset(data)
    if weights == "table":  # a dataset's own table of class sizes (as Cityscapes' avgClassSize)
        spec = yaml.safe_load((data / "dataset.yaml").read_text())
        spec["instance_sizes"] = {name: 500.0 + 37.0 * i for i, name in enumerate(dataset.things)}
        (data / "dataset.yaml").write_text(yaml.safe_dump(spec))
        dataset = load_dataset(data)
    ids, labels = _label_ids(dataset)
    stems = dataset.stems()
    gts = {s: dataset.load_label(s) for s in stems}
    instances = {s: _instances(dataset, s, gts[s]) for s in stems}
    # mean instance area of each class over the sample: the weights' table (zeg-eval: the data mean)
    areas: dict[int, list] = {}
    for s in stems:
        for k in np.unique(instances[s][instances[s] > 0]):
            mask = instances[s] == k
            cls = int(np.bincount(gts[s][mask][gts[s][mask] != dataset.ignore_index]).argmax())
            areas.setdefault(cls, []).append(int(mask.sum()))
    size_table = dataset.instance_sizes or {dataset.classes[c]: float(np.mean(a)) for c, a in areas.items()}

    city = tmp_path / "cityscapes"
    city.mkdir()
    preds = {s: _predictions(gts[s], dataset.num_classes, dataset.ignore_index) for s in stems}
    to_id = np.append(ids, 0)  # the ignore value (last index after the remap below) -> void id 0

    def label_image(labels_map):
        index = np.where(labels_map == dataset.ignore_index, dataset.num_classes, labels_map)
        return to_id[index].astype(np.uint16)

    expected = {}
    for name in ("shifted", "swapped"):
        pred_dir = tmp_path / "pred" / name
        pred_dir.mkdir(parents=True)
        for s in stems:
            write_label_png(pred_dir / f"{s}.png", preds[s][name])
            Image.fromarray(label_image(preds[s][name])).save(city / f"{s}_{name}_pred.png")
        expected[name] = {}
        for bucket, (lo, hi) in [("", (0, None))] + list(BUCKETS.items()):
            files = []
            for s in stems:
                # TIFF: instance ids label_id * 1000 + k pass 16 bits with 80 thing classes
                gt_path = city / f"{s}_{bucket or 'all'}_gtFine_labelIds.tif"
                Image.fromarray(label_image(gts[s])).save(gt_path)
                inst = label_image(gts[s]).astype(np.int64)  # stuff pixels and dropped instances: their id
                for k in np.unique(instances[s][instances[s] > 0]):
                    mask = instances[s] == k
                    if lo <= mask.sum() and (hi is None or mask.sum() < hi):
                        inst[mask] = inst[mask] * 1000 + int(k)
                Image.fromarray(inst.astype(np.int32)).save(str(gt_path).replace("labelIds", "instanceIds"))
                files.append((city / f"{s}_{name}_pred.png", gt_path))
            expected[name][bucket] = _cityscapes_iiou(cityscapes, labels, files, size_table, monkeypatch)
            monkeypatch.undo()

    for name in ("shifted", "swapped"):
        out = tmp_path / f"run_{name}"
        rc = cli.main(["run", str(ROOT / "protocols" / "small_targets.yaml"), "--data", str(data),
                       "--predictions", f"{name}={tmp_path / 'pred' / name}", "--out", str(out), "--workers", "0"])
        assert rc == 0, capsys.readouterr().err
        got = json.loads((out / "summary.json").read_text())[name]
        for bucket, reference in expected[name].items():
            metric = f"iIoU@{bucket}" if bucket else "iIoU"
            assert not math.isnan(reference) or math.isnan(got[metric])
            if not math.isnan(reference):
                assert got[metric] == pytest.approx(reference, rel=1e-9, abs=1e-9), (name, metric, got[metric],
                                                                                      reference)
    # the figures the note quotes: what Cityscapes gives and zeg-eval now gives
    print(sample, weights, {n: {b or "all": round(float(v), 2) for b, v in e.items()} for n, e in expected.items()})
