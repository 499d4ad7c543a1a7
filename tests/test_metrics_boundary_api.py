"""boundary_IoU_padded against boundary-iou-api's own band (mask_to_boundary, run by
tests/reference/make_boundary_iou_api.py on the real samples; outputs in
tests/reference/boundary_iou_api.json), and the border convention by hand on a tiny map."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.data import score_reference_predictions

from harness.metrics import boundary as B

REFERENCE = json.loads((Path(__file__).parent / "reference" / "boundary_iou_api.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCE["values"]))
def test_equals_boundary_iou_api_on_the_real_samples(key, tmp_path, capsys):
    sample, kind = key.split("/")
    want = REFERENCE["values"][key]
    got = score_reference_predictions(sample, kind, {"boundary": {}}, tmp_path, capsys)
    assert got["boundary_IoU_padded"] == pytest.approx(want["boundary_IoU_padded"], rel=1e-12)
    # and the beyond-iou convention is a different number (the border matters on real photos)
    assert abs(got["boundary_IoU"] - got["boundary_IoU_padded"]) > 0.1
    per_class = pd.read_csv(tmp_path / "run" / "per_class.csv")
    row = per_class[per_class["model"] == "m"].set_index("class")["boundary_IoU_padded"].dropna()
    assert dict(row) == pytest.approx(want["per_class"], rel=1e-12)


def test_the_border_is_a_boundary_by_hand():
    # 12x12, d = max(1, round(0.02 * 16.97)) = 1 (default ratio); class 1 fills the left 4 columns
    gt = np.zeros((12, 12), np.int64)
    gt[:, :4] = 1
    pred = gt.copy()
    pred[:, 3] = 0  # class 1 one column too thin
    counts = B.image_class_counts(gt, pred, np.array([0, 1]), 255, B.BoundaryConfig())
    # beyond-iou: class 1's band is its column 3 only (12 px), the prediction's column 2 (12 px)
    assert counts["bnd_biou_intersect"][1] == 0 and counts["bnd_biou_union"][1] == 24
    # padded: the gt band adds rows 0 and 11 and column 0: columns 0 and 3 (24) + rows 0, 11 of columns 1-2 (4) = 28;
    # the prediction's band: columns 0 and 2 (24) + rows 0, 11 of column 1 (2) = 26; in both: column 0 (12) and
    # rows 0, 11 of columns 1 and 2 (4) = 16; union 28 + 26 - 16 = 38
    assert counts["bnd_biou_padded_intersect"][1] == 16
    assert counts["bnd_biou_padded_union"][1] == 38
