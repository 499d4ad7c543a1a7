"""The standard family against hand computation and against mmseg's own IoUMetric."""
import numpy as np
import pytest

from harness.metrics import standard


def _summary(gt, pred, num_classes, ignore=255, unseen=None):
    counts = standard.image_class_counts(np.asarray(gt), np.asarray(pred), ignore)
    dense = {k: np.zeros(num_classes, np.int64) for k in standard.COUNT_COLUMNS}
    for k in standard.COUNT_COLUMNS:
        dense[k][counts["class"]] = counts[k]
    return standard.summary(dense["intersect"], dense["pred_area"], dense["label_area"], unseen_mask=unseen)


def test_hand_computed_tiny_map():
    gt = [[0, 0, 1], [1, 2, 255]]
    pred = [[0, 1, 1], [1, 1, 0]]
    # valid pixels (the ignore pixel dropped): gt 0 0 1 1 2, pred 0 1 1 1 1
    # class 0: I=1, P=1, L=2 -> IoU 1/2; class 1: I=2, P=4, L=2 -> IoU 2/4; class 2: I=0, P=0, L=1 -> 0
    # class 3: absent from both -> NaN, skipped.
    out = _summary(gt, pred, num_classes=4)
    assert out["aAcc"] == pytest.approx(100 * 3 / 5)
    assert out["mIoU"] == pytest.approx(100 * (0.5 + 0.5 + 0.0) / 3)
    assert out["mAcc"] == pytest.approx(100 * (0.5 + 1.0 + 0.0) / 3)
    # Dice 2I/(P+L): 2/3, 4/6, 0; precision I/P: 1, 1/2, NaN (0/0 for class 2) -> mean over 2 classes
    assert out["mDice"] == pytest.approx(100 * (2 / 3 + 4 / 6 + 0) / 3)
    assert out["mPrecision"] == pytest.approx(100 * (1 + 0.5) / 2)


def test_class_predicted_but_absent_from_gt_counts_as_zero():
    gt = [[0, 0], [0, 0]]
    pred = [[0, 0], [0, 1]]
    out = _summary(gt, pred, num_classes=3)
    # class 0: I=3, U=4 -> 75; class 1: I=0, U=1 -> 0; class 2 absent -> skipped
    assert out["mIoU"] == pytest.approx((75 + 0) / 2)


def test_seen_unseen_and_harmonic_mean_from_unrounded_values():
    gt = [[0, 0, 1, 1, 2, 2]]
    pred = [[0, 0, 1, 0, 2, 1]]
    unseen = np.array([False, False, True])
    out = _summary(gt, pred, num_classes=3, unseen=unseen)
    iou = [2 / 3, 1 / 3, 1 / 2]
    seen, un = 100 * (iou[0] + iou[1]) / 2, 100 * iou[2]
    assert out["mIoU_seen"] == pytest.approx(seen)
    assert out["mIoU_unseen"] == pytest.approx(un)
    assert out["hIoU"] == pytest.approx(2 * seen * un / (seen + un))


def test_counts_cover_only_classes_present():
    gt = np.full((8, 8), 149, dtype=np.int32)
    pred = gt.copy()
    pred[0, 0] = 3
    counts = standard.image_class_counts(gt, pred, 255)
    assert counts["class"].tolist() == [3, 149]


def test_leading_batch_axes():
    i = np.array([[1, 2], [2, 2]])
    p = np.array([[2, 2], [2, 4]])
    l = np.array([[2, 2], [2, 2]])
    batched = standard.summary(i, p, l)["mIoU"]
    for b in range(2):
        assert batched[b] == pytest.approx(standard.summary(i[b], p[b], l[b])["mIoU"])


def test_perfect_prediction_reads_100_and_relabelling_changes_nothing():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 6, (30, 30))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 6, gt.shape))
    pred[pred == 255] = 0
    perfect = _summary(gt, np.where(gt == 255, 0, gt), 6)
    assert perfect["mIoU"] == pytest.approx(100) and perfect["aAcc"] == pytest.approx(100)
    perm = rng.permutation(6)
    relabel = lambda a: np.where(a == 255, 255, perm[np.clip(a, 0, 5)])
    a, b = _summary(gt, pred, 6), _summary(relabel(gt), relabel(pred), 6)
    for key in ("aAcc", "mIoU", "mAcc", "mDice", "mFscore"):
        assert a[key] == pytest.approx(b[key])


def test_equals_mmseg_iou_metric_on_random_maps():
    import torch
    from mmseg.evaluation.metrics import IoUMetric

    rng = np.random.default_rng(7)
    num_classes, ignore = 12, 255
    results, totals = [], {k: np.zeros(num_classes, np.int64) for k in standard.COUNT_COLUMNS}
    for _ in range(5):
        gt = rng.integers(0, num_classes - 2, (37, 53))  # two classes never in gt: predicted-only and absent
        gt[rng.random(gt.shape) < 0.05] = ignore
        pred = np.where(rng.random(gt.shape) < 0.6, np.where(gt == ignore, 0, gt), rng.integers(0, num_classes - 1, gt.shape))
        pred[rng.random(gt.shape) < 0.03] = ignore  # a predicted ignore value belongs to no class
        results.append(IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(gt), num_classes, ignore))
        counts = standard.image_class_counts(gt, pred, ignore)
        for k in standard.COUNT_COLUMNS:
            totals[k][counts["class"]] += counts[k]
    stacked = tuple(zip(*results))
    total = [sum(x) for x in stacked]
    ref = IoUMetric.total_area_to_metrics(*total, metrics=["mIoU", "mDice", "mFscore"], nan_to_num=None, beta=1)
    # the accumulated areas are identical (mmseg's are float32 histograms of integers)
    for ref_area, ours_area in zip(total, (totals["intersect"], None, totals["pred_area"], totals["label_area"])):
        if ours_area is not None:
            np.testing.assert_array_equal(np.asarray(ref_area).astype(np.int64), ours_area)
    ours = standard.per_class_metrics(totals["intersect"], totals["pred_area"], totals["label_area"])
    # mmseg divides in float32; we divide in float64
    for name in ("IoU", "Acc", "Dice", "Fscore", "Precision", "Recall"):
        np.testing.assert_allclose(100 * np.asarray(ref[name]), ours[name], rtol=1e-6, equal_nan=True, err_msg=name)
    assert 100 * float(ref["aAcc"]) == pytest.approx(standard.summary(*(totals[k] for k in standard.COUNT_COLUMNS))["aAcc"], rel=1e-6)
    assert np.isnan(ours["IoU"][-1]) and ours["IoU"][-2] == 0  # absent class NaN; predicted-only class 0


def test_wide_ids_take_the_same_counts_as_byte_ids():
    """Ids >= 256 (uint16 labels) go through the compacting path; shifting every id changes nothing else."""
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 7, (31, 29))
    pred = rng.integers(0, 7, (31, 29))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred[rng.random(gt.shape) < 0.05] = 255
    narrow = standard.image_class_counts(gt, pred, 255)
    shift = lambda a: np.where(a == 255, 65535, a + 300)  # noqa: E731
    wide = standard.image_class_counts(shift(gt), shift(pred), 65535)
    assert wide["class"].tolist() == (narrow["class"] + 300).tolist()
    for key in ("intersect", "pred_area", "label_area"):
        np.testing.assert_array_equal(wide[key], narrow[key])
    # by hand for one class: label area = valid gt pixels of class 3, predicted ignore included
    c = int(np.flatnonzero(narrow["class"] == 3)[0])
    assert narrow["label_area"][c] == ((gt == 3)).sum()
    assert narrow["pred_area"][c] == ((pred == 3) & (gt != 255)).sum()
    assert narrow["intersect"][c] == ((pred == 3) & (gt == 3)).sum()
