"""Aggregation over the records of a whole run."""
import numpy as np
import pytest
from helpers.data import write_dataset, write_predictions, write_protocol

from harness.run.command import run_from_args


def test_overall_iiou_counts_false_positives_of_images_without_the_class(tmp_path):
    a = np.zeros((4, 4), np.uint8)
    a[1:3, 1:3] = 1                      # one 'obj' of 4 px, predicted exactly
    b = np.zeros((4, 4), np.uint8)       # no 'obj' at all...
    pred_b = b.copy()
    pred_b[0, :2] = 1                    # ...but 2 px predicted as 'obj'
    data = write_dataset(tmp_path / "data", {"a": a, "b": b}, ["bg", "obj"], things=["obj"])
    pred = write_predictions(tmp_path / "pred", {"a": a, "b": pred_b})
    protocol = write_protocol(tmp_path / "p.yaml", {"standard": {}, "size": {}})
    _, summary = run_from_args(protocol, data, [f"m={pred}"], tmp_path / "run")
    # Cityscapes iIoU of 'obj': weight 1 (its only object), iTP = 4, iFN = 0, FP = 2 (image b) -> 4/6
    assert summary["m"]["iIoU"] == pytest.approx(100 * 4 / 6)
    assert summary["m"]["object_IoU"] == pytest.approx(100)  # per-object IoU apportions only its own image's FP
