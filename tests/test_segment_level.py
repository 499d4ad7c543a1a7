"""The segment-level family (mIoU^K and its worst 10%) against Wang et al.'s own code (JDTLosses'
mIoUKMetric, its outputs in tests/reference/jdtlosses_miouk.json, written by make_jdtlosses_miouk.py
next to it) on the real samples, and against values computed by hand on tiny maps."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.cli import read_json, zeg_eval_inprocess
from helpers.data import reference_prediction, score_reference_predictions
from helpers.realdata import write_real_dataset

from harness.data.dataset import load_dataset
from harness.data.imageio import write_label_png
from harness.metrics.segment_level import segment_level_summary, segment_rows

REFERENCE = json.loads((Path(__file__).parent / "reference" / "jdtlosses_miouk.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCE["values"]))
def test_equals_jdtlosses_on_the_real_samples(key, tmp_path, capsys):
    sample, kind = key.split("/")
    got = score_reference_predictions(sample, kind, {"segment_level": {}}, tmp_path, capsys)
    for metric, value in REFERENCE["values"][key].items():
        assert got[metric] == pytest.approx(value, rel=1e-6), metric


def test_segments_by_hand():
    # classes 0 and 1, 255 ignore; instances 1 and 2 of class 1; the class-1 pixels outside them,
    # (0,4) and (2,4), are one more segment (a crowd), and class 0's region is one segment
    gt = np.array([[1, 1, 0, 0, 1],
                   [1, 1, 0, 1, 1],
                   [0, 0, 0, 255, 1]])
    inst = np.array([[1, 1, 0, 0, 0],
                     [1, 1, 0, 2, 2],
                     [0, 0, 0, 0, 0]])
    pred = np.array([[1, 1, 1, 0, 1],
                     [1, 0, 0, 1, 0],
                     [0, 0, 0, 1, 1]])
    # label areas: class 0 six pixels, class 1 eight; false positives on labelled pixels:
    # class 1 predicted at (0,2) (gt 0): 1; class 0 predicted at (1,1), (1,4) (gt 1): 2
    rows = segment_rows(gt, pred, inst, 255, label_area=np.array([6, 8]), class_fp=np.array([2, 1]))
    got = sorted(zip(rows["class"].tolist(), rows["area"].tolist(), rows["iou"].tolist()))
    want = sorted([(0, 6, 5 / (6 + 6 / 6 * 2)),     # class 0: 5 of 6 predicted, all of FP_0
                   (1, 4, 3 / (4 + 4 / 8 * 1)),     # instance 1: 3 of 4, FP share 4/8
                   (1, 2, 1 / (2 + 2 / 8 * 1)),     # instance 2: 1 of 2, FP share 2/8
                   (1, 2, 2 / (2 + 2 / 8 * 1))])    # the crowd: 2 of 2, FP share 2/8
    assert [(c, a) for c, a, _ in got] == [(c, a) for c, a, _ in want]
    assert [v for _, _, v in got] == pytest.approx([v for _, _, v in want], rel=1e-12)


def test_summary_by_hand_and_worst_count():
    # class 0: segments 1.0, 0.5 (mean 0.75); class 1: 0.2 (one segment); class 2: none
    scalars, per_class = segment_level_summary(np.array([0, 0, 1]), np.array([1.0, 0.5, 0.2]), 3, 10)
    assert scalars["mIoUK"] == pytest.approx(100 * (0.75 + 0.2) / 2)
    # worst 10%: max(1, int(0.2)) = 1 segment per class: 0.5 and 0.2
    assert scalars["mIoUK_worst10"] == pytest.approx(100 * (0.5 + 0.2) / 2)
    assert np.isnan(per_class[2]) and per_class[0] == pytest.approx(75)


def test_without_instances_it_is_mIoU_C(tmp_path, capsys):
    """One segment per class region of each image: mIoU^K equals the image-level mIoU_C."""
    data = write_real_dataset("ade20k3", tmp_path / "data")
    dataset = load_dataset(data)
    preds = tmp_path / "pred"
    preds.mkdir()
    for stem in dataset.stems():
        write_label_png(preds / f"{stem}.png", reference_prediction(dataset.load_label(stem).astype(np.int64),
                                                           dataset.num_classes, "shift7"))
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "sl", "families": {"segment_level": {}, "image_level": {}}}))
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", f"m={preds}",
                                    "--out", tmp_path / "run", "--workers", "0")
    assert rc == 0, err
    got = read_json(tmp_path / "run" / "summary.json")["m"]
    assert got["mIoUK"] == pytest.approx(got["mIoU_C"], rel=1e-12)
