"""Occlusion family: levels from amodal masks and from the visible-mask proxy, fragments, buckets.

Expected values are worked out by hand (tiny maps) or by an independent computation (a per-object
crop count and OpenCV's connected components on the real COCO sample).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers.data import REALDATA

from harness.metrics.objects import extract_objects
from harness.metrics.occlusion import OcclusionConfig, occlusion_rows, occlusion_summary
from harness.metrics.size import object_rows

IGN = 255
REAL = REALDATA / "coco_panoptic_val2017_2"  # ../shared/realdata, read in place


def _proxy_case():
    """8x8, all class 1; instances A=2, B=4, C=9, D=10; 0 = no instance (background)."""
    gt = np.ones((8, 8), np.uint8)
    inst = np.zeros((8, 8), np.uint16)
    inst[1:5, 1:7] = 2           # A: box rows 1-4, cols 1-6 (24 px) ...
    inst[1:3, 5:7] = 4           # ... minus B (4 px, inside A's box)
    inst[4, 1] = 0               # ... minus one background pixel -> A has 19 px
    inst[6:8, 0:3] = 9           # C: 2x3 box ...
    inst[6, 2] = 0               # ... minus one background pixel -> 5 px
    inst[7, 3:5] = 10            # D: 2 px, next to C but outside its box
    return gt, inst


def _by_instance(obj, rows, inst_id):
    return {k: v[int(np.flatnonzero(obj.instance_ids == inst_id)[0])] for k, v in rows.items()}


def test_proxy_box_coverage_by_other_objects():
    gt, inst = _proxy_case()
    obj = extract_objects(gt, IGN, instances=inst)
    rows = occlusion_rows(obj, None)
    a, b, c, d = (_by_instance(obj, rows, i) for i in (2, 4, 9, 10))
    # A: own V = 19, other objects in its box O = B's 4 px -> O / (V + O) = 4 / 23
    assert a["occlusion"] == pytest.approx(4 / 23)
    # B fills its box; C's free box pixel is background (not an object); D fills its box
    assert b["occlusion"] == 0 and c["occlusion"] == 0 and d["occlusion"] == 0
    assert set(rows["occlusion_source"].tolist()) == {"proxy"}
    assert rows["occlusion_proxy"].tolist() == rows["occlusion"].tolist()


def test_proxy_equals_true_occlusion_for_a_box_cut_by_an_occluder():
    gt = np.full((6, 6), IGN, np.uint8)
    inst = np.zeros((6, 6), np.uint16)
    gt[0:4, 0:4] = 1
    inst[0:4, 0:4] = 1                # a 4x4 object (amodal 16 px) ...
    gt[0:4, 1:3] = 2
    inst[0:4, 1:3] = 2                # ... with an occluder across its middle: two visible halves
    obj = extract_objects(gt, IGN, instances=inst)
    rows = occlusion_rows(obj, None)
    assert rows["occlusion"][0] == pytest.approx(1 - 8 / 16)   # V = 8, O = 8
    assert rows["occlusion"][1] == 0   # the occluder fills its own box
    assert rows["fragments"].tolist() == [2, 1]
    # as components, the two halves are two objects, each filling its own box: the proxy sees nothing
    comp = occlusion_rows(extract_objects(gt, IGN), None)
    assert comp["occlusion"].tolist() == [0.0, 0.0, 0.0]


def test_amodal_exact_keyed_by_instance_id():
    gt, inst = _proxy_case()
    obj = extract_objects(gt, IGN, instances=inst)
    amodal_a = np.zeros((8, 8), bool)
    amodal_a[1:5, 1:7] = True                       # A's whole box: 24 px, 19 visible -> 5/24
    amodal_c = inst == 9
    amodal_c[6, 2] = amodal_c[5, 0] = amodal_c[5, 1] = True   # 8 px, 5 visible -> 3/8
    amodal_d = np.zeros((8, 8), bool)
    amodal_d[7, 3] = amodal_d[0, 0] = True          # visible not inside: |V ∩ A| / |A| = 1/2
    empty = np.zeros((8, 8), bool)
    rows = occlusion_rows(obj, {2: amodal_a, 9: amodal_c, 10: amodal_d, 4: empty, 77: amodal_a})
    a, b, c, d = (_by_instance(obj, rows, i) for i in (2, 4, 9, 10))
    assert (a["occlusion"], a["occlusion_source"]) == (pytest.approx(5 / 24), "amodal")
    assert (c["occlusion"], c["occlusion_source"]) == (pytest.approx(3 / 8), "amodal")
    assert (d["occlusion"], d["occlusion_source"]) == (pytest.approx(1 / 2), "amodal")
    # an empty amodal mask falls back to the proxy
    assert (b["occlusion"], b["occlusion_source"]) == (0.0, "proxy")
    # the proxy is still reported next to the amodal level
    assert a["occlusion_proxy"] == pytest.approx(4 / 23)


def test_amodal_keyed_by_object_id_for_components():
    gt = np.full((6, 6), IGN, np.uint8)
    gt[0:2, 0:2] = 3                                 # one component, 4 px
    obj = extract_objects(gt, IGN)
    amodal = np.zeros((6, 6), bool)
    amodal[0:2, 0:3] = True                          # 6 px -> 1 - 4/6
    rows = occlusion_rows(obj, {1: amodal})
    assert rows["occlusion"][0] == pytest.approx(1 / 3) and rows["occlusion_source"][0] == "amodal"


def test_fragments():
    gt = np.zeros((8, 8), np.uint8)
    inst = np.zeros((8, 8), np.uint16)
    inst[0, 0] = inst[1, 1] = inst[5, 5] = 5         # diagonal pair joins (8-conn) + a separate pixel
    inst[3, 0:3] = 6
    gt[3, 1] = IGN                                   # an ignore pixel cuts instance 6 in two
    inst[7, 0:4] = 8                                 # one piece
    obj = extract_objects(gt, IGN, instances=inst)
    assert occlusion_rows(obj, None)["fragments"].tolist() == [2, 2, 1]
    assert occlusion_rows(obj, None, connectivity=4)["fragments"].tolist() == [3, 2, 1]


def test_components_have_one_fragment():
    gt = np.random.default_rng(3).integers(0, 4, (32, 32)).astype(np.uint8)
    rows = occlusion_rows(extract_objects(gt, IGN), None)
    assert (rows["fragments"] == 1).all()


def test_summary_buckets_by_hand():
    df = pd.DataFrame({
        "occlusion": [0.0, 0.25, 0.26, 0.5, 0.75, 1.0],
        "recall": [1.0, 0.9, 0.3, 0.7, 0.1, 0.0],
        "iou": [1.0, 0.8, 0.4, 0.6, 0.2, 0.0],
        "fragments": [1, 1, 2, 1, 3, 1],
        "occlusion_source": ["amodal", "amodal", "proxy", "proxy", "proxy", "proxy"],
        "image": "x"})
    df["hit"] = df.recall >= 0.5
    s, table = occlusion_summary(df, OcclusionConfig())
    # none: {0}; <=25: {0.25}; <=50: {0.26, 0.5}; >50: {0.75, 1}
    assert [s[f"n_objects@{b}"] for b in ("occ_none", "occ_le25", "occ_le50", "occ_gt50")] == [1, 1, 2, 2]
    assert s["object_recall@occ_none"] == 100 and s["object_IoU@occ_none"] == 100
    assert s["object_recall@occ_le25"] == 100 and s["object_IoU@occ_le25"] == pytest.approx(80)
    assert s["object_recall@occ_le50"] == 50 and s["object_IoU@occ_le50"] == pytest.approx(50)
    assert s["object_recall@occ_gt50"] == 0 and s["object_IoU@occ_gt50"] == pytest.approx(10)
    # fragments: single pieces are objects 0, 1, 3, 5 (hits T T T F); split ones 2, 4 (F F)
    assert s["object_recall@frag_1"] == 75 and s["object_recall@frag_2plus"] == 0
    assert s["occlusion_from_amodal_share"] == pytest.approx(100 / 3)
    assert s["mean_occlusion"] == pytest.approx(100 * 2.76 / 6)
    sources = table.set_index("bucket")["source"]
    assert sources["occ_none"] == "amodal" and sources["occ_le50"] == "proxy" and sources["all"] == "mixed"
    # the family's own hit threshold
    s2, _ = occlusion_summary(df, OcclusionConfig(hit_threshold=0.8))
    assert s2["object_recall@occ_le50"] == 0 and s2["object_recall@occ_le25"] == 100


def test_summary_split_by_seen_and_unseen_by_hand():
    df = pd.DataFrame({"occlusion": [0.0, 0.3, 0.4, 0.8], "recall": [1.0, 0.9, 0.2, 0.6],
                       "iou": [0.9, 0.7, 0.1, 0.5], "fragments": [1, 2, 1, 1], "class": [0, 1, 1, 0],
                       "occlusion_source": "proxy", "image": "x"})
    df["hit"] = df.recall >= 0.5
    s, table = occlusion_summary(df, OcclusionConfig(), unseen=np.array([False, True]))
    # unseen (class 1): occlusion 0.3 (hit, iou 0.7) and 0.4 (miss, iou 0.1), both in occ_le50
    assert s["n_objects_unseen@occ_le50"] == 2 and s["object_recall_unseen@occ_le50"] == 50
    assert s["object_IoU_unseen@occ_le50"] == pytest.approx(40)
    assert s["n_objects_seen@occ_le50"] == 0 and math.isnan(s["object_recall_seen@occ_le50"])
    assert s["object_recall_seen@occ_gt50"] == 100 and s["object_recall_unseen@frag_2plus"] == 100
    assert s["n_objects@occ_le50"] == 2  # pooled rows unchanged
    assert set(table["split"]) == {"all", "seen", "unseen"}


def test_summary_empty_is_nan():
    s, table = occlusion_summary(pd.DataFrame(), OcclusionConfig())
    assert s["n_objects@occ_none"] == 0 and math.isnan(s["object_recall@occ_none"])
    assert math.isnan(s["occlusion_from_amodal_share"])
    assert len(table) == 1 + 4 + 2


def test_perfect_prediction_is_100():
    gt, inst = _proxy_case()
    obj = extract_objects(gt, IGN, instances=inst)
    rows = object_rows(gt, gt, obj, IGN)
    rows.update(occlusion_rows(obj, None))
    s, table = occlusion_summary(pd.DataFrame(rows), OcclusionConfig())
    filled = table[table.n_objects > 0]
    assert np.allclose(filled.object_recall, 100) and np.allclose(filled.object_IoU, 100)
    assert s["n_objects@occ_le25"] == 1 and s["n_objects@occ_none"] == 3


def test_real_coco_proxy_matches_independent_count():
    assert REAL.is_dir(), f"real data not found at {REAL}"
    frames = []
    for path in sorted((REAL / "semantic133").glob("*.png")):
        gt = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(REAL / "instances" / path.name), cv2.IMREAD_UNCHANGED)
        obj = extract_objects(gt, IGN, instances=inst)
        rows = occlusion_rows(obj, None)
        for k in range(1, obj.n + 1):
            own = obj.ids == k
            ys, xs = np.nonzero(own)
            crop = obj.ids[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            other = np.count_nonzero((crop > 0) & (crop != k))
            expected = other / (other + own.sum())
            assert rows["occlusion"][k - 1] == pytest.approx(expected)
            n_cc, _ = cv2.connectedComponents(own.astype(np.uint8), connectivity=8)
            assert rows["fragments"][k - 1] == n_cc - 1
        table = object_rows(gt, gt, obj, IGN)
        table.update(rows)
        frames.append(pd.DataFrame(table).assign(image=path.stem))
    s, _ = occlusion_summary(pd.concat(frames, ignore_index=True), OcclusionConfig())
    assert s["occlusion_from_amodal_share"] == 0
    assert sum(s[f"n_objects@{b}"] for b in OcclusionConfig().buckets) == 40
    assert s["n_objects@frag_2plus"] > 0
    for b in OcclusionConfig().buckets:
        assert s[f"n_objects@{b}"] == 0 or s[f"object_recall@{b}"] == 100
