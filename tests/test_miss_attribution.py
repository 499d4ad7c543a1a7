"""Where missed objects went (the miss_attribution family), computed by hand on one tiny image with a
stuff class, seen and unseen thing classes and an abstaining prediction."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.cli import read_json, zeg_eval_inprocess
from helpers.data import write_dataset, write_predictions

CLASSES = ["sky", "person", "dog", "cat"]   # sky is stuff; dog is unseen


@pytest.fixture
def run(tmp_path, capsys):
    gt = np.zeros((10, 10), np.uint8)
    gt[1:4, 1:4] = 1      # person A: 9 pixels
    gt[6:9, 6:9] = 2      # dog B: 9 pixels
    gt[1:3, 7:9] = 3      # cat C: 4 pixels
    pred = np.zeros_like(gt)
    # A: person on 3 pixels, sky on 4, dog on 2 -> recall 3/9, missed
    pred[1, 1:4] = 1
    pred[3, 2:4] = 2
    # B: dog on 1 pixel, cat on 6, the ignore value on 2 -> recall 1/9, missed
    pred[6:8, 6:9] = 3
    pred[8, 6] = 2
    pred[8, 7:9] = 255
    pred[1:3, 7:9] = 3    # C: all cat, a hit
    data = write_dataset(tmp_path / "data", {"im": gt}, CLASSES, things=["person", "dog", "cat"], unseen=["dog"])
    preds = write_predictions(tmp_path / "pred", {"im": pred})
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "ma", "families": {"miss_attribution": {}}}))
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", f"m={preds}",
                                    "--out", tmp_path / "run", "--workers", "0")
    assert rc == 0, err
    return read_json(tmp_path / "run" / "summary.json")["m"], pd.read_csv(tmp_path / "run" / "per_class.csv")


def test_confusion_table_by_hand(run, tmp_path):
    table = pd.read_csv(tmp_path / "run" / "confusion.csv")
    got = sorted(zip(table["class"], table["predicted_as"], table["pixels"], table["share"].round(9)))
    # person's 9 object pixels: sky 4, dog 2; dog's 9: cat 6 (2 were the ignore value, no class)
    assert got == sorted([("person", "sky", 4, round(100 * 4 / 9, 9)), ("person", "dog", 2, round(100 * 2 / 9, 9)),
                          ("dog", "cat", 6, round(100 * 6 / 9, 9))])
    unseen_into_seen = table[(table["split"] == "unseen") & (table["predicted_split"] == "seen")]
    assert list(zip(unseen_into_seen["class"], unseen_into_seen["predicted_as"])) == [("dog", "cat")]
    assert set(table["model"]) == {"m"} and set(table["condition"]) == {"clean"}
    person = table[table["class"] == "person"]
    assert list(person["predicted_as"]) == ["sky", "dog"]  # largest share first


def test_shares_of_missed_objects_by_hand(run):
    s, _ = run
    assert s["missed"] == 2 and s["missed@small"] == 2 and s["missed@large"] == 0
    assert s["miss_still_correct"] == pytest.approx(100 * (3 / 9 + 1 / 9) / 2)
    assert s["miss_to_background"] == pytest.approx(100 * (4 / 9 + 0) / 2)
    assert s["miss_to_other_object"] == pytest.approx(100 * (2 / 9 + 6 / 9) / 2)
    assert s["miss_to_ignore"] == pytest.approx(100 * (0 + 2 / 9) / 2)
    parts = ("miss_still_correct", "miss_to_background", "miss_to_other_object", "miss_to_ignore")
    assert sum(s[p] for p in parts) == pytest.approx(100)
    assert s["miss_to_background@small"] == s["miss_to_background"] and s["miss_to_background@large"] is None


def test_unseen_objects_taken_for_seen_classes(run):
    s, _ = run
    assert s["missed_unseen"] == 1 and s["missed_seen"] == 1
    assert s["miss_to_seen_unseen"] == pytest.approx(100 * 6 / 9)   # cat is seen; the ignore value is no class
    assert s["miss_to_other_object_unseen"] == pytest.approx(100 * 6 / 9)
    assert s["miss_to_background_seen"] == pytest.approx(100 * 4 / 9)


def test_most_confused_class(run):
    _, per_class = run
    row = per_class.set_index("class")
    assert row.loc["person", "most_confused_with"] == "sky" and row.loc["person", "confused_share"] == pytest.approx(
        100 * 4 / 9)
    assert row.loc["dog", "most_confused_with"] == "cat" and row.loc["dog", "confused_share"] == pytest.approx(
        100 * 6 / 9)
    assert row.loc["cat", "confused_share"] == 0 and pd.isna(row.loc["sky", "confused_share"])
