"""The image-level family (mIoU_I, mIoU_C and their worst 10%) against Wang et al.'s own code
(JDTLosses' mIoUICMetric, its outputs in tests/reference/jdtlosses_miouic.json) on the real
samples, and against values computed by hand on tiny maps."""
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.data import score_reference_predictions

from harness.metrics.image_level import image_level_summary, worst_count

REFERENCE = json.loads((Path(__file__).parent / "reference" / "jdtlosses_miouic.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCE["values"]))
def test_equals_jdtlosses_on_the_real_samples(key, tmp_path, capsys):
    sample, kind = key.split("/")
    got = score_reference_predictions(sample, kind, {"image_level": {}}, tmp_path, capsys)
    for metric, value in REFERENCE["values"][key].items():
        assert got[metric] == pytest.approx(value, rel=1e-6), metric


def test_by_hand_on_three_images():
    # image a: classes 0 (IoU 1.0) and 1 (IoU 0.5); image b: class 1 (IoU 0.25); image c: class 2 (0.0)
    image = np.array(["a", "a", "b", "c"], dtype=object)
    cls = np.array([0, 1, 1, 2])
    iou = np.array([1.0, 0.5, 0.25, 0.0])
    scalars, per_class = image_level_summary(image, cls, iou, num_classes=4, percent=10)
    assert scalars["mIoU_I"] == pytest.approx(100 * (0.75 + 0.25 + 0.0) / 3)
    assert scalars["mIoU_C"] == pytest.approx(100 * (1.0 + 0.375 + 0.0) / 3)
    assert scalars["mIoU_I_worst10"] == 0.0                     # max(1, int(0.3)) = 1 image: c
    assert scalars["mIoU_C_worst10"] == pytest.approx(100 * (1.0 + 0.25 + 0.0) / 3)
    assert np.isnan(per_class[3]) and per_class[1] == pytest.approx(37.5)


def test_worst_count_floors_as_wang_et_al():
    assert [worst_count(n, 10) for n in (1, 9, 10, 19, 20, 30)] == [1, 1, 1, 1, 2, 3]
