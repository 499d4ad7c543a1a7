"""Size family: objects, per-object rows, fp blobs and the dataset summary.

Expected values are worked out by hand in the comments (tiny maps), or by an independent formula.
"""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.data import REALDATA

from harness.metrics import standard
from harness.metrics.objects import ObjectMap, extract_objects
from harness.metrics.size import (
    SizeConfig,
    fp_blob_rows,
    object_rows,
    percentile_buckets,
    size_summary,
)

IGN = 255
REAL = REALDATA / "coco_panoptic_val2017_2"  # ../shared/realdata, read in place


def object_sets(obj: ObjectMap) -> set:
    """{(class, frozenset of (row, col))} of all objects, independent of their numbering."""
    out = set()
    for k in range(1, obj.n + 1):
        rows, cols = np.nonzero(obj.ids == k)
        out.add((int(obj.classes[k - 1]), frozenset(zip(rows.tolist(), cols.tolist()))))
    return out


def by_box(rows: dict, x0: int, y0: int) -> int:
    """Index of the row whose box starts at (x0, y0)."""
    hit = np.flatnonzero((rows["bbox_x0"] == x0) & (rows["bbox_y0"] == y0))
    assert hit.size == 1
    return int(hit[0])


def frame(rows: dict, image: str = "a") -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["image"] = image
    return df


# ---------------------------------------------------------------------------------------------
# extract_objects


def _components_map():
    gt = np.full((8, 8), IGN, np.uint8)
    gt[1, 1] = gt[2, 2] = 1          # A: class 1, touching only at a corner
    gt[5, 5] = gt[5, 6] = 1          # B: class 1
    gt[6:8, 0:3] = 2                 # C: class 2, 6 pixels
    gt[0, 5] = gt[0, 7] = 3          # D, E: class 3, separated by an ignore pixel
    return gt


def test_components_8_connected_diagonal_joins_and_ignore_excluded():
    gt = _components_map()
    obj = extract_objects(gt, IGN)
    assert obj.source == "components"
    assert obj.ids.dtype == np.int32 and obj.classes.dtype == np.int64
    assert obj.n == 5
    assert object_sets(obj) == {
        (1, frozenset({(1, 1), (2, 2)})),
        (1, frozenset({(5, 5), (5, 6)})),
        (2, frozenset((r, c) for r in (6, 7) for c in (0, 1, 2))),
        (3, frozenset({(0, 5)})),
        (3, frozenset({(0, 7)})),
    }
    assert not obj.ids[gt == IGN].any()
    # 4-connectivity splits the diagonal pair.
    assert extract_objects(gt, IGN, connectivity=4).n == 6


def test_components_different_classes_touching_stay_apart():
    gt = np.zeros((4, 4), np.int32)
    gt[:, 2:] = 1
    obj = extract_objects(gt, IGN)
    assert object_sets(obj) == {(0, frozenset((r, c) for r in range(4) for c in (0, 1))),
                                (1, frozenset((r, c) for r in range(4) for c in (2, 3)))}


def test_things_filter():
    gt = _components_map()
    obj = extract_objects(gt, IGN, thing_mask=np.array([False, True, False]))  # class 3 beyond the mask: not a thing
    assert obj.n == 2 and set(obj.classes.tolist()) == {1}
    assert not obj.ids[gt == 2].any()


def test_instances_majority_class_ignore_and_renumbering():
    gt = np.zeros((8, 8), np.uint8)
    inst = np.zeros((8, 8), np.uint16)
    # instance 3: three pixels of class 1 and one of class 2, in two separate pieces -> class 1, area 4
    inst[0, 0:3] = 3
    gt[0, 0:3] = 1
    inst[4, 4] = 3
    gt[4, 4] = 2
    # instance 7: class 2, four pixels of which one is ignore -> area 3
    inst[6, 0:4] = 7
    gt[6, 0:4] = 2
    gt[6, 3] = IGN
    # instance 9: only ignore pixels -> dropped
    inst[2, 6] = 9
    gt[2, 6] = IGN
    # instance 11: a tie 1 vs 2 -> smallest class id (1)
    inst[7, 6] = inst[7, 7] = 11
    gt[7, 6], gt[7, 7] = 2, 1
    obj = extract_objects(gt, IGN, instances=inst)
    assert obj.source == "instances"
    assert obj.instance_ids.tolist() == [3, 7, 11]
    assert obj.classes.tolist() == [1, 2, 1]
    assert obj.areas().tolist() == [4, 3, 2]
    assert obj.ids[0, 0] == 1 and obj.ids[4, 4] == 1 and obj.ids[6, 0] == 2 and obj.ids[7, 7] == 3
    assert obj.ids[6, 3] == 0 and obj.ids[2, 6] == 0
    # pixels outside every instance are no object, even where gt has a class
    assert obj.ids[3, 3] == 0
    # thing filter on instances: class 2 is not a thing -> instance 7 dropped
    things = extract_objects(gt, IGN, instances=inst, thing_mask=np.array([False, True, False]))
    assert things.instance_ids.tolist() == [3, 11] and things.n == 2


def test_instances_with_panoptic_scale_ids():
    gt = np.ones((4, 4), np.uint8)
    inst = np.zeros((4, 4), np.int64)
    inst[0, :] = 16757838                # panoptic-style ids (R + 256 G + 65536 B)
    inst[2, :2] = 3937500
    obj = extract_objects(gt, IGN, instances=inst)
    assert obj.instance_ids.tolist() == [3937500, 16757838]
    assert obj.ids[2, 0] == 1 and obj.ids[0, 3] == 2 and obj.areas().tolist() == [2, 4]


# ---------------------------------------------------------------------------------------------
# object_rows


def _rows_case():
    gt = np.zeros((8, 8), np.uint8)
    gt[0:2, 0:2] = 1          # object 1: area 4
    gt[4:7, 4:8] = 1          # object 2: area 12
    gt[7, 0] = IGN
    pred = gt.copy()
    pred[0, 0] = 0            # object 1: tp 3
    pred[4:7, 4:6] = 0        # object 2: 6 missed -> tp 6, recall exactly 0.5
    for r, c in ((2, 0), (2, 1), (3, 3), (0, 7)):
        pred[r, c] = 1        # 4 false-positive pixels of class 1 on gt 0
    pred[7, 0] = 1            # on ignore: not counted
    return gt, pred


def test_object_rows_apportioned_fp_iou_and_hit():
    gt, pred = _rows_case()
    obj = extract_objects(gt, IGN, thing_mask=np.array([False, True]))
    rows = object_rows(gt, pred, obj, IGN)
    assert rows["object"].tolist() == [1, 2]
    a, b = by_box(rows, 0, 0), by_box(rows, 4, 4)
    # boxes, inclusive-exclusive
    assert [rows[k][a] for k in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] == [0, 0, 2, 2]
    assert [rows[k][b] for k in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] == [4, 4, 8, 7]
    assert rows["area"][a] == 4 and rows["area"][b] == 12
    assert rows["rel_area"][b] == pytest.approx(12 / 64)
    assert rows["tp"][a] == 3 and rows["tp"][b] == 6
    assert rows["recall"][a] == pytest.approx(0.75) and rows["recall"][b] == pytest.approx(0.5)
    # FP_1 = 4 shared by area 4:12 -> 1 and 3
    assert rows["fp_share"][a] == pytest.approx(1.0) and rows["fp_share"][b] == pytest.approx(3.0)
    assert rows["iou"][a] == pytest.approx(3 / 5) and rows["iou"][b] == pytest.approx(6 / 15)
    assert rows["hit"].tolist() == [True, True]          # 0.5 >= 0.5
    strict = object_rows(gt, pred, obj, IGN, hit_threshold=0.6)
    assert strict["hit"][a] and not strict["hit"][b]
    # the FP pixels the standard family counts (pred_area - intersect) give the same rows
    counts = standard.image_class_counts(gt.astype(np.int32), pred.astype(np.int32), IGN)
    given = object_rows(gt, pred, obj, IGN, class_fp=(counts["class"], counts["pred_area"] - counts["intersect"]))
    for column, values in rows.items():
        np.testing.assert_array_equal(given[column], values, err_msg=column)


def test_object_rows_stuff_component():
    gt, pred = _rows_case()
    obj = extract_objects(gt, IGN)                       # class 0 makes an object too
    rows = object_rows(gt, pred, obj, IGN)
    k = int(np.flatnonzero(rows["class"] == 0)[0])
    # 64 - 16 (class 1) - 1 (ignore) = 47 pixels; 4 of them predicted 1 -> tp 43;
    # FP_0 = pred 0 on gt 1: 1 + 6 = 7, one class-0 object takes all of it.
    assert rows["area"][k] == 47 and rows["tp"][k] == 43
    assert rows["fp_share"][k] == pytest.approx(7)
    assert rows["iou"][k] == pytest.approx(43 / 54)


def test_object_rows_instances_use_object_class():
    gt = np.zeros((4, 4), np.uint8)
    inst = np.zeros((4, 4), np.uint16)
    inst[0, 0:3] = 5
    gt[0, 0:2] = 1
    gt[0, 2] = 2                       # majority 1; the class-2 pixel is still part of it
    pred = np.zeros((4, 4), np.uint8)
    pred[0, 0] = 1
    pred[0, 2] = 1                     # predicted as the object's class on a gt-2 pixel
    obj = extract_objects(gt, IGN, instances=inst)
    rows = object_rows(gt, pred, obj, IGN)
    assert rows["area"].tolist() == [3] and rows["tp"].tolist() == [2]
    # FP_1: pred 1 where gt != 1 -> (0, 2), shared by the only class-1 object
    assert rows["fp_share"].tolist() == [1.0]
    assert rows["iou"][0] == pytest.approx(2 / 4)


def test_object_rows_empty():
    gt = np.full((4, 4), IGN, np.uint8)
    rows = object_rows(gt, gt, extract_objects(gt, IGN), IGN)
    assert all(len(v) == 0 for v in rows.values())


# ---------------------------------------------------------------------------------------------
# fp blobs


def _blob_case():
    gt = np.zeros((8, 8), np.uint8)
    gt[5:8, 5:8] = 1
    gt[0, :] = IGN
    pred = gt.copy()
    pred[0, :] = 0
    pred[5, 5:8] = 0                                  # the true blob covers rows 6-7 only
    pred[2, 0] = pred[2, 1] = pred[3, 2] = 1          # one blob by 8-connectivity, area 3
    pred[4, 5] = 1                                    # next to gt class 1 but not on it: FP, area 1
    pred[0, 3] = pred[0, 4] = 1                       # on ignore only: gone
    pred[0, 6] = pred[1, 6] = 1                       # half on ignore: area 1
    pred[3, 7] = 2                                    # class 2, no gt of class 2: FP, area 1
    return gt, pred


def test_fp_blobs():
    gt, pred = _blob_case()
    rows = fp_blob_rows(gt, pred, IGN)
    got = sorted(zip(rows["class"].tolist(), rows["area"].tolist()))
    assert got == [(1, 1), (1, 1), (1, 3), (2, 1)]
    assert sorted(rows["rel_area"].tolist()) == pytest.approx(sorted(a / 64 for _, a in got))
    four = sorted(zip(*(fp_blob_rows(gt, pred, IGN, connectivity=4)[k].tolist() for k in ("class", "area"))))
    assert four == [(1, 1), (1, 1), (1, 1), (1, 2), (2, 1)]
    only1 = fp_blob_rows(gt, pred, IGN, thing_mask=np.array([False, True]))
    assert sorted(only1["area"].tolist()) == [1, 1, 3]


def test_fp_blobs_perfect_prediction_none():
    gt, _ = _blob_case()
    assert fp_blob_rows(gt, gt, IGN)["class"].size == 0


# ---------------------------------------------------------------------------------------------
# summary


def _object_frame(areas, ious=None, hits=None, classes=None, image="a"):
    n = len(areas)
    areas = np.asarray(areas, float)
    ious = np.ones(n) if ious is None else np.asarray(ious, float)
    hits = np.ones(n, bool) if hits is None else np.asarray(hits, bool)
    classes = np.ones(n, int) if classes is None else np.asarray(classes, int)
    return pd.DataFrame({"object": np.arange(1, n + 1), "class": classes, "area": areas,
                         "rel_area": areas / 1e6, "tp": areas * ious, "recall": ious, "fp_share": 0.0,
                         "iou": ious, "hit": hits, "image": image})


def test_bucket_edges_half_open_at_32_squared():
    gt = np.full((200, 200), IGN, np.uint8)
    gt[0:96, 0:96] = 1          # 9216 = 96²  -> large
    gt[0:95, 100:197] = 1       # 9215        -> medium
    gt[100:132, 0:32] = 1       # 1024 = 32²  -> medium
    gt[100:133, 40:71] = 1      # 33*31 = 1023 -> small
    obj = extract_objects(gt, IGN)
    rows = object_rows(gt, gt, obj, IGN)
    assert sorted(rows["area"].tolist()) == [1023, 1024, 9215, 9216]
    scalars, table = size_summary(frame(rows), pd.DataFrame(fp_blob_rows(gt, gt, IGN)), 1, SizeConfig())
    assert (scalars["n_objects@small"], scalars["n_objects@medium"], scalars["n_objects@large"]) == (1, 2, 1)
    assert scalars["object_recall@small"] == 100 and scalars["object_IoU@large"] == 100
    assert scalars["n_objects"] == 4
    absolute = table[table.bucket_kind == "absolute"].set_index("bucket")
    assert absolute.loc["medium", "lo"] == 1024 and absolute.loc["medium", "hi"] == 9216


def test_relative_bucket_edges():
    df = _object_frame([1, 2, 3, 4])
    df["rel_area"] = [0.0009, 0.001, 0.0999, 0.1]
    s, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig())
    assert (s["n_objects@rel_tiny"], s["n_objects@rel_small"], s["n_objects@rel_medium"],
            s["n_objects@rel_large"]) == (1, 1, 1, 1)


def test_recall_iou_worst_and_fp_blobs_per_bucket():
    # small: ious 0.2, 0.6 hits F, T; medium: 0.9 hit; large: none.
    df = _object_frame([100, 200, 2000], ious=[0.2, 0.6, 0.9], hits=[False, True, True])
    blobs = pd.DataFrame({"class": [1, 1, 2], "area": [5, 2000, 10000], "rel_area": [0.0, 0.0, 0.0],
                          "image": ["a", "b", "b"]})
    s, table = size_summary(df, blobs, 4, SizeConfig())
    assert s["object_recall@small"] == pytest.approx(50) and s["object_IoU@small"] == pytest.approx(40)
    assert s["object_recall@medium"] == pytest.approx(100) and s["object_IoU@medium"] == pytest.approx(90)
    assert s["object_recall"] == pytest.approx(200 / 3) and s["object_IoU"] == pytest.approx(170 / 3)
    assert s["n_objects@large"] == 0 and math.isnan(s["object_recall@large"]) and math.isnan(s["iIoU@large"])
    assert math.isnan(s["worst10_object_IoU@large"])
    assert s["fp_blobs_per_image@small"] == 0.25 and s["fp_blobs_per_image@medium"] == 0.25
    assert s["fp_blobs_per_image@large"] == 0.25 and s["fp_blobs_per_image"] == 0.75
    # worst 10% of 3 objects: max(1, floor(0.3)) = 1 object
    assert s["worst10_object_IoU"] == pytest.approx(20)
    assert {"bucket_kind", "bucket", "n_objects", "object_recall", "object_IoU", "iIoU",
            "worst10_object_IoU", "fp_blobs_per_image"} <= set(table.columns)


def test_seen_unseen_split_by_hand():
    """Every bucket also over the objects of seen and of unseen classes (class 2 is unseen)."""
    # small: class 1 (iou 0.2, miss), class 2 (iou 0.6, hit), class 2 (iou 0.4, miss); medium: class 2 (0.9, hit)
    df = _object_frame([100, 200, 300, 2000], ious=[0.2, 0.6, 0.4, 0.9], hits=[False, True, False, True],
                       classes=[1, 2, 2, 2])
    unseen = np.array([False, False, True])
    s, table = size_summary(df, None, 2, SizeConfig(), unseen=unseen)
    assert s["object_recall_unseen@small"] == pytest.approx(50) and s["object_IoU_unseen@small"] == pytest.approx(50)
    assert s["n_objects_unseen@small"] == 2 and s["n_objects_seen@small"] == 1
    assert s["object_recall_seen@small"] == 0 and s["object_IoU_seen@small"] == pytest.approx(20)
    assert s["object_recall_unseen"] == pytest.approx(200 / 3) and s["object_IoU_unseen"] == pytest.approx(190 / 3)
    assert s["n_objects_seen@medium"] == 0 and math.isnan(s["object_recall_seen@medium"])
    # the split rows do not change the pooled ones, and the table says which split a row is
    assert s["object_recall@small"] == pytest.approx(100 / 3)
    assert set(table["split"]) == {"all", "seen", "unseen"}
    unseen_small = table.query("split == 'unseen' and bucket == 'small'")
    assert len(unseen_small) == 1 and unseen_small["n_objects"].iloc[0] == 2
    # without unseen classes there is no split
    s, table = size_summary(df, None, 2, SizeConfig(), unseen=np.zeros(3, bool))
    assert not any("_unseen" in k or "_seen" in k for k in s) and set(table["split"]) == {"all"}


def test_worst_fraction():
    ious = np.arange(20) / 20                       # 0, 0.05, ... ; worst 10% of 20 = 2 -> (0 + 0.05) / 2
    s, _ = size_summary(_object_frame(np.full(20, 50), ious=ious), pd.DataFrame(), 1, SizeConfig())
    assert s["worst10_object_IoU"] == pytest.approx(2.5)
    ious = np.arange(29)[::-1] / 29                 # floor(2.9) = 2 -> (0 + 1/29) / 2, order irrelevant
    s, _ = size_summary(_object_frame(np.full(29, 50), ious=ious), pd.DataFrame(), 1, SizeConfig())
    assert s["worst10_object_IoU"] == pytest.approx(100 * (1 / 29) / 2)
    ious = np.arange(30) / 30                       # 0.1 * 30 = 3.0000000000000004 -> 3
    s, _ = size_summary(_object_frame(np.full(30, 50), ious=ious), pd.DataFrame(), 1, SizeConfig())
    assert s["worst10_object_IoU"] == pytest.approx(100 * (0 + 1 / 30 + 2 / 30) / 3)


def test_percentile_buckets():
    areas = [10, 20, 30, 40, 50, 60]
    # linear percentile: position 5 * 1/3 = 1.667 -> 20 + 0.667 * 10; 5 * 2/3 = 3.333 -> 40 + 0.333 * 10
    edges = percentile_buckets(areas, (100 / 3, 200 / 3))
    assert list(edges) == ["pct_0-33", "pct_33-67", "pct_67-100"]
    assert edges["pct_33-67"][0] == pytest.approx(20 + 20 / 3) and edges["pct_67-100"][0] == pytest.approx(40 + 10 / 3)
    s, _ = size_summary(_object_frame(areas), pd.DataFrame(), 1, SizeConfig())
    assert (s["n_objects@pct_0-33"], s["n_objects@pct_33-67"], s["n_objects@pct_67-100"]) == (2, 2, 2)
    # all areas equal: both edges equal the area, so [lo, hi) puts every object in the last bucket
    s, _ = size_summary(_object_frame([5] * 6), pd.DataFrame(), 1, SizeConfig())
    assert (s["n_objects@pct_0-33"], s["n_objects@pct_33-67"], s["n_objects@pct_67-100"]) == (0, 0, 6)
    assert math.isnan(s["object_recall@pct_0-33"])


def test_iiou_by_hand():
    # class 1: a (area 10, tp 10), b (area 30, tp 15); mean area 20 -> w 2 and 2/3: iTP 30, iFN 10
    # class 2: c (area 8, tp 4), d (area 2000, tp 2000); mean area 1004 -> w 125.5 and 0.502
    # without pixel counts, a class's FP is what its objects carry (fp_share): class 1: 6, class 2: 4
    df = pd.DataFrame({"class": [1, 1, 2, 2], "area": [10, 30, 8, 2000], "tp": [10, 15, 4, 2000],
                       "fp_share": [0, 6, 4, 0], "rel_area": 0.0, "image": "x"})
    df["recall"] = df.tp / df.area
    df["iou"] = df.tp / (df.area + df.fp_share)
    df["hit"] = df.recall >= 0.5
    s, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig())
    # overall: class 2 iTP 502 + 1004, iFN 502, FP 4; class 0 has no object and no FP: NaN, skipped
    assert s["iIoU"] == pytest.approx(100 * (30 / 46 + 1506 / 2012) / 2)
    assert s["iIoU@small"] == pytest.approx(100 * (30 / 46 + 502 / 1008) / 2)
    # medium holds d only: class 1 has no object there but false positives, so it scores 0 (Cityscapes)
    assert s["iIoU@medium"] == pytest.approx(100 * (0 + 1004 / 1008) / 2)
    # class_mean_object_IoU: class means of object IoU: class 1 (1 + 15/36) / 2, class 2 (4/12 + 1) / 2
    assert s["class_mean_object_IoU"] == pytest.approx(100 * ((1 + 15 / 36) / 2 + (4 / 12 + 1) / 2) / 2)
    # every false positive of the class (pixel counts), the same for every bucket
    s2, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig(), class_fp=np.array([0, 20, 10]))
    assert s2["iIoU"] == pytest.approx(100 * (30 / 60 + 1506 / 2018) / 2)
    assert s2["iIoU@small"] == pytest.approx(100 * (30 / 60 + 502 / 1014) / 2)
    # a class predicted where it never is, with no object at all, scores 0 and counts in the mean
    s3, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig(), class_fp=np.array([7, 20, 10]))
    assert s3["iIoU"] == pytest.approx(100 * (0 + 30 / 60 + 1506 / 2018) / 3)
    # ... unless it is not an instance class (a stuff class of a dataset that names its things)
    s4, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig(), class_fp=np.array([7, 20, 10]),
                         instance_classes=np.array([False, True, True]))
    assert s4["iIoU"] == pytest.approx(s2["iIoU"])
    # a dataset's table of class sizes replaces the data mean in the weights
    s5, _ = size_summary(df, pd.DataFrame(), 1, SizeConfig(), class_fp=np.array([0, 20, 10]),
                         class_size=np.array([1.0, 10.0, 8.0]))
    # class 1: w 1 and 1/3: iTP 10 + 5, iFN 0 + 5; class 2: w 1 and 0.004: iTP 4 + 8, iFN 4 + 0
    assert s5["iIoU"] == pytest.approx(100 * (15 / 40 + 12 / 26) / 2)


def test_empty_summary_is_nan_not_error():
    s, table = size_summary(pd.DataFrame(), pd.DataFrame(), 0, SizeConfig())
    assert s["n_objects"] == 0 and s["n_objects@small"] == 0
    assert math.isnan(s["object_recall"]) and math.isnan(s["object_IoU@pct_0-33"])
    assert len(table) == 1 + 3 + 4 + 3


# ---------------------------------------------------------------------------------------------
# properties


def _scene(seed: int, h=96, w=128):
    rng = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.int32)
    gt[h // 2:] = 1
    for _ in range(12):
        c = int(rng.integers(2, 8))
        cv2.ellipse(gt, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                    (int(rng.integers(1, 25)), int(rng.integers(1, 25))), float(rng.integers(0, 180)), 0, 360, c, -1)
    gt[rng.random((h, w)) < 0.01] = IGN
    pred = gt.copy()
    pred[gt == IGN] = 0
    pred = np.roll(pred, int(rng.integers(1, 4)), axis=1)
    for _ in range(5):
        cv2.circle(pred, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 6)),
                   int(rng.integers(0, 8)), -1)
    return gt, pred


def _evaluate(maps, cfg=SizeConfig()):
    objs, blobs = [], []
    for i, (gt, pred) in enumerate(maps):
        obj = extract_objects(gt, IGN)
        objs.append(frame(object_rows(gt, pred, obj, IGN), str(i)))
        blobs.append(frame(fp_blob_rows(gt, pred, IGN), str(i)))
    return size_summary(pd.concat(objs, ignore_index=True), pd.concat(blobs, ignore_index=True), len(maps), cfg)


def test_perfect_prediction_is_100_everywhere():
    maps = [(gt, gt) for gt, _ in (_scene(s) for s in range(4))]
    s, table = _evaluate(maps)
    filled = table[table.n_objects > 0]
    assert len(filled) >= 6
    for col in ("object_recall", "object_IoU", "iIoU", "worst10_object_IoU", "mean_pixel_recall"):
        assert np.allclose(filled[col], 100), col
    assert (table.fp_blobs == 0).all()


def test_consistent_relabelling_changes_nothing():
    maps = [_scene(s) for s in range(4)]
    perm = np.random.default_rng(7).permutation(np.arange(8)) + 20   # 0..7 -> distinct ids in 20..27
    lut = np.arange(256)
    lut[:8] = perm
    relabelled = [(lut[gt], lut[pred]) for gt, pred in maps]
    s1, t1 = _evaluate(maps)
    s2, t2 = _evaluate(relabelled)
    assert s1.keys() == s2.keys()
    for k in s1:
        assert s1[k] == pytest.approx(s2[k], nan_ok=True), k
    pd.testing.assert_frame_equal(t1, t2)


# ---------------------------------------------------------------------------------------------
# real data: COCO panoptic val2017 sample (exact instances)


def _real_images():
    assert REAL.is_dir(), f"real data not found at {REAL}"
    for name in sorted(p.stem for p in (REAL / "semantic133").glob("*.png")):
        gt = cv2.imread(str(REAL / "semantic133" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(REAL / "instances" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert inst.dtype == np.uint16
        yield name, gt, inst


def test_real_coco_instances_buckets_and_oracle():
    objs, blobs, all_areas = [], [], []
    for name, gt, inst in _real_images():
        obj = extract_objects(gt, IGN, instances=inst)
        rows = object_rows(gt, gt, obj, IGN)
        objs.append(frame(rows, name))
        blobs.append(frame(fp_blob_rows(gt, gt, IGN), name))
        all_areas += rows["area"].tolist()
    assert len(all_areas) == 40
    s, _ = size_summary(pd.concat(objs), pd.concat(blobs), 2, SizeConfig())
    assert (s["n_objects@small"], s["n_objects@medium"], s["n_objects@large"]) == (12, 28, 0)
    assert s["object_recall"] == 100 and s["object_IoU"] == 100 and s["iIoU"] == 100
    assert s["object_recall@small"] == 100 and s["fp_blobs_per_image"] == 0


def test_real_coco_areas_equal_panoptic_segment_areas():
    """Visible non-ignored pixel counts equal the `area` of COCO panoptic segments_info."""
    info = json.loads((REAL / "panoptic_examples.json").read_text())
    things = {c["id"] for c in info["categories"] if c["isthing"]}
    by_image = {a["file_name"].rsplit(".", 1)[0]: sorted(s["area"] for s in a["segments_info"]
                                                         if s["category_id"] in things and not s["iscrowd"])
                for a in info["annotations"]}
    for name, gt, inst in _real_images():
        obj = extract_objects(gt, IGN, instances=inst)
        assert sorted(obj.areas().tolist()) == by_image[name]
        # the instance ids are not consecutive (crowd segments have none): renumbered 1..n
        assert obj.instance_ids.tolist() == sorted(set(np.unique(inst).tolist()) - {0})
