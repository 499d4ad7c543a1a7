"""The boundary family against beyond-iou's own evaluator (Bernhard et al., WACV 2024), run by
tests/reference/make_beyond_iou.py on the real samples (outputs in tests/reference/beyond_iou.json):
every per-class value and every class mean."""
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers.data import score_reference_predictions

REFERENCE = json.loads((Path(__file__).parent / "reference" / "beyond_iou.json").read_text())


def _ours(column: str) -> tuple[str, str]:
    """(per-class column, summary metric) of zeg-eval for one of beyond-iou's dataframe columns."""
    if column in ("boundary_IoU", "trimap_IoU"):
        return column, column
    if column == "IoU":
        return "IoU", "mIoU"
    if column.startswith(("FP_", "FN_")):      # FP_boundary_oU -> E_boundary_oU_FP
        side, kind, _ = column.split("_")
        name = f"E_{kind}_oU_{side}"
        return name, "m" + name
    return column, "m" + column                # E_boundary_oU(_renormed)


@pytest.mark.parametrize("key", sorted(REFERENCE["values"]))
def test_equals_beyond_iou_on_the_real_samples(key, tmp_path, capsys):
    sample, kind = key.split("/")
    want = REFERENCE["values"][key]
    got = score_reference_predictions(sample, kind, {"standard": {}, "boundary": {}}, tmp_path, capsys)
    per_class = pd.read_csv(tmp_path / "run" / "per_class.csv").set_index("class")
    for column, mean in want["mean"].items():
        per_class_name, metric = _ours(column)
        assert got[metric] == pytest.approx(100 * mean, rel=1e-12, abs=1e-12), column
        ours = per_class[per_class_name].dropna()
        assert dict(ours) == pytest.approx({c: 100 * v for c, v in want["per_class"][column].items()},
                                           rel=1e-12, abs=1e-12), column
