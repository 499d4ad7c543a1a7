"""Tests of the boundary family (harness/metrics/boundary.py) and its window engine
(harness/metrics/windows.py).

Expected values are worked out by hand in the comments, or come from
`harness.metrics.boundary_reference`, the slow full-image definition of every count (one class at
a time, scipy.ndimage instead of OpenCV, no crops, no shortcuts), or from a frozen copy of the
previous implementation (end of this file).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from harness.metrics import boundary as B
from harness.metrics import boundary_reference as R
from harness.metrics import standard, windows
from harness.metrics.windows import Pixels

IGN = 255


def cfg_for(shape, d=None, bw=None, theta=None, bands=(1, 2, 4, 8, 16)) -> B.BoundaryConfig:
    """A config whose ratios give exactly the widths asked for on an image of `shape`."""
    diag = math.hypot(*shape)
    kw = {"band_widths": bands}
    if d is not None:
        kw["boundary_iou_ratio"] = d / diag
    if bw is not None:
        kw["error_boundary_ratio"] = bw / diag
    if theta is not None:
        kw["bf_tolerance_ratio"] = theta / diag
    return B.BoundaryConfig(**kw)


def counts(gt, pred, cfg=None, classes=None):
    gt = np.asarray(gt, dtype=np.int32)
    pred = np.asarray(pred, dtype=np.int32)
    if classes is None:
        v = gt != IGN
        classes = np.unique(np.concatenate([gt[v], pred[v]]))
    classes = np.asarray(classes, dtype=np.int64)
    out = B.image_class_counts(gt, pred, classes, IGN, cfg or B.BoundaryConfig())
    return {c: {k: int(v[i]) for k, v in out.items()} for i, c in enumerate(classes.tolist())}


def square_map(shape, rows, cols, inside=1, outside=0):
    m = np.full(shape, outside, dtype=np.int32)
    m[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = inside
    return m


# ------------------------------------------------------------------------------------------------
# random maps


def random_pair(rng, shape, n_classes, ignore_frac=0.03):
    """Blobby gt (rectangles and discs over a background) and a perturbed prediction."""
    H, W = shape
    yy, xx = np.mgrid[:H, :W]
    gt = np.full(shape, rng.integers(n_classes), dtype=np.int32)
    for _ in range(rng.integers(2, 7)):
        c = rng.integers(n_classes)
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, H - 2), rng.integers(0, W - 2)
            gt[y0:y0 + rng.integers(2, H // 2), x0:x0 + rng.integers(2, W // 2)] = c
        else:
            cy, cx, rad = rng.integers(0, H), rng.integers(0, W), rng.integers(2, max(H, W) // 3)
            gt[(yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad] = c
    pred = np.roll(gt, (rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1)).copy()
    for _ in range(rng.integers(1, 5)):
        cy, cx, rad = rng.integers(0, H), rng.integers(0, W), rng.integers(1, 6)
        pred[(yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad] = rng.integers(n_classes + 1)
    salt = rng.random(shape) < 0.01
    pred[salt] = rng.integers(0, n_classes + 1, salt.sum())
    ign = rng.random(shape) < ignore_frac
    ign |= (yy < rng.integers(0, 3)) & (xx > W // 2)
    gt[ign] = IGN
    pred[rng.random(shape) < 0.005] = IGN  # the ignore value predicted: no class
    return gt, pred


# ------------------------------------------------------------------------------------------------
# structuring elements and widths


def test_widths_follow_the_diagonal():
    cfg = B.BoundaryConfig()
    assert B.boundary_iou_width((512, 512), cfg) == 14      # round(0.02 * 724.08) = round(14.48)
    assert B.error_boundary_width((512, 512), cfg) == 7     # round(7.24)
    assert B.bf_tolerance((512, 512), cfg) == pytest.approx(0.0075 * math.hypot(512, 512))
    assert B.boundary_iou_width((10, 10), cfg) == 1         # round(0.28) = 0 -> max(1, .)
    assert B.error_boundary_width((10, 10), cfg) == 0       # beyond-iou: no boundary errors then


@pytest.mark.parametrize("r", [0, 1, 2, 3, 5, 7, 10, 14])
def test_rounded_disk_is_beyond_iou_kernel_and_rectangles_dilate_alike(r):
    assert np.array_equal(B.rounded_disk(r).astype(bool), R.beyond_iou_disk(r))
    rng = np.random.default_rng(r)
    m = (rng.random((40, 50)) < 0.05).astype(np.uint8)
    expect = ndi.binary_dilation(m.astype(bool), R.beyond_iou_disk(r))
    assert np.array_equal(windows.dilate(m, windows.disk_rectangles(B.rounded_disk(r))).astype(bool), expect)


@pytest.mark.parametrize("theta", [0.5, 1.0, 1.5, 2.9, 5.43])
def test_euclidean_disk_rectangles(theta):
    x = np.arange(-6, 7)
    expect_kernel = np.hypot(x[:, None], x[None, :]) <= theta
    rng = np.random.default_rng(1)
    m = (rng.random((30, 30)) < 0.05).astype(np.uint8)
    expect = ndi.binary_dilation(m.astype(bool), expect_kernel)
    got = windows.dilate(m, windows.disk_rectangles(B.euclidean_disk(theta)))
    assert np.array_equal(got.astype(bool), expect)


# ------------------------------------------------------------------------------------------------
# hand-computed maps


def test_boundary_iou_shifted_square_by_hand():
    # 10x10, class 1 = 6x6 square rows 2-7 cols 2-7; prediction shifted one column right. d = 1.
    gt = square_map((10, 10), (2, 7), (2, 7))
    pred = square_map((10, 10), (2, 7), (3, 8))
    r = counts(gt, pred)            # default config gives d = 1 on 10x10
    # class 1: inner rings of 20 px each; common = rows 2 and 7, cols 3..7 = 10 -> 10 / 30
    assert (r[1]["bnd_biou_intersect"], r[1]["bnd_biou_union"]) == (10, 30)
    # class 0: ring around each square (8x8 minus 6x6 = 28 px); common = rows 1 and 8,
    # cols 2..8 = 14 -> union 42
    assert (r[0]["bnd_biou_intersect"], r[0]["bnd_biou_union"]) == (14, 42)
    # trimap IoU class 1: G_d = 8x8 block minus 4x4 interior = 48 px; G∩G_d ∩ P = 10 (rows 2, 7)
    # + 4 (col 7, rows 3..6) = 14; union = G_in (20) + G_d∩P (36 - 16 = 20) - 14 = 26
    assert (r[1]["bnd_trimap_intersect"], r[1]["bnd_trimap_union"]) == (14, 26)
    pc = B.per_class_metrics({k: np.array([r[0][k], r[1][k]]) for k in r[0]})
    np.testing.assert_allclose(pc["boundary_IoU"], [100 * 14 / 42, 100 * 10 / 30])
    np.testing.assert_allclose(pc["trimap_IoU"][1], 100 * 14 / 26)


def test_boundary_iou_width_d_by_hand():
    # 12x12, class 1 = rows 2..9, cols 2..9 (8x8); perfect prediction; d = 2 -> inner band =
    # 8x8 minus the 4x4 that survives a 5x5 erosion = 48 px; trimap: G_d ∩ P = G ∩ G_d = 48 too
    gt = square_map((12, 12), (2, 9), (2, 9))
    r = counts(gt, gt, cfg_for((12, 12), d=2))
    assert r[1]["bnd_biou_union"] == 48 and r[1]["bnd_biou_intersect"] == 48
    assert r[1]["bnd_trimap_union"] == 48 and r[1]["bnd_trimap_intersect"] == 48
    # background: its inner band is the 2-px ring around the square (12x12 minus 8x8 = 80 px,
    # because rows 0..1 etc. are all within 2 of the square) -- and no band along the border
    assert r[0]["bnd_biou_union"] == 80


def test_image_border_is_not_a_boundary():
    # left half class 1, right half class 0: the only boundary is the vertical edge
    gt = np.zeros((10, 10), np.int32)
    gt[:, :5] = 1
    r = counts(gt, gt, cfg_for((10, 10), d=1))
    assert r[1]["bnd_biou_union"] == 10 and r[0]["bnd_biou_union"] == 10   # cols 4 and 5 only
    r = counts(gt, gt, cfg_for((10, 10), d=3))
    assert r[1]["bnd_biou_union"] == 30 and r[0]["bnd_biou_union"] == 30   # cols 2-4 / 5-7
    # a class filling the whole image has no boundary at all: 0/0 -> NaN
    full = np.full((10, 10), 3, np.int32)
    r = counts(full, full)
    assert r[3]["bnd_biou_union"] == 0
    pc = B.per_class_metrics({k: np.array([v]) for k, v in r[3].items()})
    assert np.isnan(pc["boundary_IoU"][0]) and pc["BF"][0] == 100.0


def test_error_boundary_one_pixel_shift():
    # 12x12, class 1 square rows 2-7 cols 2-7, prediction shifted one column right; bw = 1.
    gt = square_map((12, 12), (2, 7), (2, 7))
    pred = square_map((12, 12), (2, 7), (3, 8))
    r = counts(gt, pred, cfg_for((12, 12), bw=1))[1]
    # TP = rows 2..7 x cols 3..7 = 30; FP = col 8 (6 px), FN = col 2 (6 px); each pixel is next to
    # a TP and a TN pixel -> all boundary errors
    assert r["bnd_err_tp"] == 30
    assert (r["bnd_err_fp_boundary"], r["bnd_err_fn_boundary"]) == (6, 6)
    for part in ("fp_extent", "fp_segment", "fn_extent", "fn_segment"):
        assert r[f"bnd_err_{part}"] == 0
    pc = B.per_class_metrics({k: np.array([v]) for k, v in r.items()})
    np.testing.assert_allclose(pc["E_boundary_oU"], [100 * 12 / 42])
    np.testing.assert_allclose(pc["E_boundary_oU_FP"], [100 * 6 / 42])


def test_error_segment_blob_away_from_object():
    # class 1 square rows 2-5 cols 2-5 (16 px); the prediction adds a 2x2 blob at rows 9-10,
    # cols 9-10, far from the object (bw = 1): its own component without TP -> segment error
    gt = square_map((12, 12), (2, 5), (2, 5))
    pred = gt.copy()
    pred[9:11, 9:11] = 1
    r = counts(gt, pred, cfg_for((12, 12), bw=1))
    assert r[1]["bnd_err_tp"] == 16 and r[1]["bnd_err_fp_segment"] == 4
    assert sum(r[1][f"bnd_err_{p}"] for p in B.ERROR_PARTS) == 4
    # for the background the blob is a false negative inside its (single, TP-holding) gt
    # component, away from any TN pixel of the background (TN_0 = the square) -> extent
    assert r[0]["bnd_err_fn_extent"] == 4 and r[0]["bnd_err_fn_boundary"] == 0
    pc = B.per_class_metrics({k: np.array([v]) for k, v in r[1].items()})
    assert pc["E_segment_oU"][0] == pytest.approx(20.0)        # 4 / (16 + 4)
    assert pc["E_segment_oU_FP"][0] == pytest.approx(20.0)


def test_error_extent_bulge_beyond_the_band():
    # 12x16, class 1 square rows 2-7 cols 2-7 (36 px); the prediction adds a bulge rows 3-6,
    # cols 8-15 (32 px, reaching the right border). bw = 1 (3x3 disk).
    gt = square_map((12, 16), (2, 7), (2, 7))
    pred = gt.copy()
    pred[3:7, 8:16] = 1
    r = counts(gt, pred, cfg_for((12, 16), bw=1))[1]
    # seeds: FP pixels within 1 of TP and of TN: (3,8) (TN at row 2) and (6,8) (TN at row 7);
    # (4,8), (5,8) see only TP/FP. Grown by 1 inside FP: rows 3-6 x cols 8-9 = 8 px, one component
    # touching TP and TN -> boundary. The remaining cols 10-15 (24 px) lie in the prediction's
    # component that holds TP -> extent.
    assert r["bnd_err_tp"] == 36
    assert (r["bnd_err_fp_boundary"], r["bnd_err_fp_extent"], r["bnd_err_fp_segment"]) == (8, 24, 0)
    # bw = 2 (5x5 minus corners): seeds = cols 8-9 (e.g. (4,8) has TN (2,8) at distance 2; col 10
    # is 3 from TP); grown by 2 -> cols 8-11 = 16 boundary, cols 12-15 = 16 extent
    r2 = counts(gt, pred, cfg_for((12, 16), bw=2))[1]
    assert (r2["bnd_err_fp_boundary"], r2["bnd_err_fp_extent"]) == (16, 16)


def test_error_no_boundary_errors_when_width_is_zero():
    gt = square_map((10, 10), (2, 7), (2, 7))
    pred = square_map((10, 10), (2, 7), (3, 8))
    r = counts(gt, pred)[1]   # default ratio 0.01 on a 10x10 map: round(0.14) = 0
    assert r["bnd_err_fp_boundary"] == 0 and r["bnd_err_fn_boundary"] == 0
    # the shifted column joins the object: extent errors
    assert r["bnd_err_fp_extent"] == 6 and r["bnd_err_fn_extent"] == 6


def test_error_fp_only_and_fn_only_classes():
    gt = np.zeros((8, 8), np.int32)
    gt[1:3, 1:3] = 2          # class 2 only in gt (missed)
    pred = np.zeros((8, 8), np.int32)
    pred[5:7, 5:7] = 3        # class 3 only predicted
    r = counts(gt, pred, cfg_for((8, 8), bw=1))
    assert r[2]["bnd_err_fn_segment"] == 4 and r[2]["bnd_err_tp"] == 0
    assert r[3]["bnd_err_fp_segment"] == 4 and r[3]["bnd_err_tp"] == 0
    assert r[2]["bnd_bf_images"] == 1 and r[2]["bnd_bf_f1_nano"] == 0
    assert r[3]["bnd_bf_images"] == 1 and r[3]["bnd_bf_f1_nano"] == 0


def test_band_curve_by_hand():
    # left half class 0 (cols 0-4), right half class 1; the prediction gives col 5 to class 0
    gt = np.zeros((10, 10), np.int32)
    gt[:, 5:] = 1
    pred = gt.copy()
    pred[:, 5] = 0
    r = counts(gt, pred)
    band = {w: ((r[0][f"bnd_band{w}_intersect"], r[0][f"bnd_band{w}_union"]),
                (r[1][f"bnd_band{w}_intersect"], r[1][f"bnd_band{w}_union"])) for w in (1, 2, 4, 8, 16)}
    # w=1: band = cols 4,5. class 0: gt col 4, pred cols 4,5 -> 10/20; class 1: 0/10
    assert band[1] == ((10, 20), (0, 10))
    # w=2: cols 3-6. class 0: 20/30; class 1: gt cols 5,6, pred col 6 -> 10/20
    assert band[2] == ((20, 30), (10, 20))
    # w=4: cols 1-8. class 0: 40/50; class 1: 30/40
    assert band[4] == ((40, 50), (30, 40))
    # w=8, 16: the whole image: class 0 50/60, class 1 40/50
    assert band[8] == band[16] == ((50, 60), (40, 50))
    s = B.summary({k: np.array([r[0][k], r[1][k]]) for k in r[0]})
    assert s["mIoU@band1px"] == pytest.approx(25.0)
    assert s["mIoU@band2px"] == pytest.approx((200 / 3 + 50) / 2)


def test_band_counts_ignore_as_another_value_but_never_scores_it():
    gt = np.zeros((6, 6), np.int32)
    gt[0, :] = IGN
    r = counts(gt, gt, cfg_for((6, 6), bands=(1,)))
    # row 1 is next to the ignored row 0: band1 = row 1 only (row 0 itself is not scored)
    assert r[0]["bnd_band1_union"] == 6 and r[0]["bnd_band1_intersect"] == 6


def test_bf_score_by_hand():
    # 12x12, class 1 square rows 2-7 cols 2-7, prediction shifted two columns right; theta = 1.5.
    gt = square_map((12, 12), (2, 7), (2, 7))
    pred = square_map((12, 12), (2, 7), (4, 9))
    r = counts(gt, pred, cfg_for((12, 12), theta=1.5))[1]
    # predicted contour (20 px): rows 2,7 x cols 4-7 lie on the gt contour (8), cols 8 of rows
    # 2,7 are 1 away (2), (3,4) and (6,4) are 1 away from (2,4)/(7,4) (2); the rest is >= 2 away:
    # precision 12/20; recall 12/20 by symmetry -> F1 0.6
    assert r["bnd_bf_images"] == 1
    assert r["bnd_bf_f1_nano"] == round(0.6 * B.BF_SCALE)
    # theta = 2: col 9 rows 2..7 are exactly 2 from col 7, (4,4), (5,4) exactly 2 from col 2:
    # every contour pixel matches -> F1 = 1
    r2 = counts(gt, pred, cfg_for((12, 12), theta=2.0))[1]
    assert r2["bnd_bf_f1_nano"] == B.BF_SCALE


def test_bf_is_a_mean_over_images():
    # class 1: F1 = 0.6 in one image, 1.0 in another -> BF = 80
    gt = square_map((12, 12), (2, 7), (2, 7))
    cfg = cfg_for((12, 12), theta=1.5)
    a = counts(gt, square_map((12, 12), (2, 7), (4, 9)), cfg)[1]
    b = counts(gt, gt, cfg)[1]
    sums = {k: np.array([a[k] + b[k]]) for k in a}
    assert B.per_class_metrics(sums)["BF"][0] == pytest.approx(80.0)


def test_ignore_pixels_are_not_scored():
    # the prediction differs from the gt only on ignored pixels (top two rows)
    gt = square_map((12, 12), (4, 8), (3, 8))
    gt[:2] = IGN
    pred = np.where(gt == IGN, 1, gt)
    r = counts(gt, pred, cfg_for((12, 12), d=1, bw=1, theta=1.0))
    for c in (0, 1):
        assert sum(r[c][f"bnd_err_{p}"] for p in B.ERROR_PARTS) == 0
        assert r[c]["bnd_biou_intersect"] == r[c]["bnd_biou_union"] > 0
        assert r[c]["bnd_trimap_intersect"] == r[c]["bnd_trimap_union"]
        assert r[c]["bnd_bf_f1_nano"] == B.BF_SCALE
    # the TP count is the valid pixels of each class
    assert r[1]["bnd_err_tp"] == 30 and r[0]["bnd_err_tp"] == 120 - 30


def test_class_only_predicted_on_ignore_pixels_has_no_counts():
    gt = np.zeros((8, 8), np.int32)
    gt[:2] = IGN
    pred = np.zeros((8, 8), np.int32)
    pred[:2] = 5
    r = counts(gt, pred, classes=[0, 5, IGN])
    assert all(v == 0 for v in r[5].values())
    assert all(v == 0 for v in r[IGN].values())


# ------------------------------------------------------------------------------------------------
# invariants


def _assert_same_as_reference(gt, pred, classes, cfg, ignore=IGN):
    got = B.image_class_counts(gt, pred, classes, ignore, cfg)
    ref = R.reference_counts(gt, pred, classes, ignore, cfg)
    assert list(got) == list(ref)
    for k in ref:
        assert got[k].dtype == np.int64 and np.array_equal(got[k], ref[k]), (k, got[k], ref[k])


@pytest.mark.parametrize("seed", range(12))
def test_matches_full_image_reference(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
    gt, pred = random_pair(rng, shape, n_classes=int(rng.integers(2, 6)))
    # larger widths than the defaults so that bands, seeds and crops matter on small maps
    cfg = cfg_for(shape, d=int(rng.integers(1, 5)), bw=int(rng.integers(1, 4)),
                  theta=float(rng.uniform(0.5, 3.5)), bands=(1, 2, 4))
    v = gt != IGN
    classes = np.unique(np.concatenate([gt[v], pred[v]])).astype(np.int64)
    _assert_same_as_reference(gt, pred, classes, cfg)


def test_reference_widths_are_the_family_widths():
    for shape in ((10, 10), (96, 120), (512, 512), (375, 500)):
        cfg = B.BoundaryConfig()
        d, bw, theta = R.widths(shape, cfg)
        assert (d, bw) == (B.boundary_iou_width(shape, cfg), B.error_boundary_width(shape, cfg))
        assert theta == B.bf_tolerance(shape, cfg)


def test_reference_gives_ignore_class_and_absent_classes_zero_rows():
    gt = square_map((12, 12), (2, 7), (2, 7))
    gt[0] = IGN
    ref = R.reference_counts(gt, gt, np.array([1, IGN, 42]), IGN, cfg_for((12, 12), d=1, bw=1, theta=1.0))
    assert all(v[1] == 0 and v[2] == 0 for v in ref.values())
    assert ref["bnd_err_tp"][0] == 36 and ref["bnd_bf_f1_nano"][0] == B.BF_SCALE
    _assert_same_as_reference(gt, gt, np.array([1, IGN, 42]), cfg_for((12, 12), d=1, bw=1, theta=1.0))


def test_default_config_matches_reference_on_a_larger_map():
    rng = np.random.default_rng(99)
    gt, pred = random_pair(rng, (96, 120), n_classes=5)
    cfg = B.BoundaryConfig()            # d = 3, bw = 2, theta = 1.15 on 96x120
    v = gt != IGN
    classes = np.unique(np.concatenate([gt[v], pred[v]])).astype(np.int64)
    _assert_same_as_reference(gt, pred, classes, cfg)


@pytest.mark.parametrize("seed", range(4))
def test_decomposition_sums_to_100_and_iou_matches_standard(seed):
    rng = np.random.default_rng(100 + seed)
    gt, pred = random_pair(rng, (40, 40), n_classes=4)
    cfg = cfg_for((40, 40), bw=2)
    std = standard.image_class_counts(gt, pred, IGN)
    got = B.image_class_counts(gt, pred, std["class"], IGN, cfg)
    pc = B.per_class_metrics(got)
    iou = standard.per_class_metrics(std["intersect"], std["pred_area"], std["label_area"])["IoU"]
    total = iou + pc["E_boundary_oU"] + pc["E_extent_oU"] + pc["E_segment_oU"]
    ok = np.isfinite(iou) & (std["class"] != IGN)   # a predicted ignore value is no class here
    np.testing.assert_allclose(total[ok], 100.0)
    np.testing.assert_allclose(100 * got["bnd_err_tp"] / (std["pred_area"] + std["label_area"] - std["intersect"]), iou)
    for kind in ("boundary", "extent", "segment"):
        np.testing.assert_allclose(pc[f"E_{kind}_oU_FP"] + pc[f"E_{kind}_oU_FN"], pc[f"E_{kind}_oU"])


def test_perfect_prediction():
    rng = np.random.default_rng(5)
    gt, _ = random_pair(rng, (48, 48), n_classes=4)
    gt = np.where(gt == IGN, 0, gt)
    pred = gt.copy()
    r = B.image_class_counts(gt, pred, np.unique(gt).astype(np.int64), IGN, cfg_for((48, 48), d=2, bw=2))
    pc = B.per_class_metrics(r)
    has = r["bnd_biou_union"] > 0
    np.testing.assert_allclose(pc["boundary_IoU"][has], 100.0)
    np.testing.assert_allclose(pc["trimap_IoU"][r["bnd_trimap_union"] > 0], 100.0)
    np.testing.assert_allclose(pc["BF"], 100.0)
    for kind in ("boundary", "extent", "segment"):
        np.testing.assert_allclose(pc[f"E_{kind}_oU"], 0.0)
    for w in (1, 2, 4, 8, 16):
        ok = r[f"bnd_band{w}_union"] > 0
        np.testing.assert_allclose(pc[f"IoU@band{w}px"][ok], 100.0)


def test_relabelling_classes_changes_nothing():
    rng = np.random.default_rng(7)
    gt, pred = random_pair(rng, (40, 44), n_classes=5)
    cfg = cfg_for((40, 44), d=2, bw=2, theta=2.0)
    perm = np.array([17, 3, 140, 0, 66, 9])           # class k -> perm[k]; ignore stays ignore
    lut = np.full(256, IGN, np.int32)
    lut[:6] = perm
    gt2, pred2 = lut[gt], lut[pred]
    v = gt != IGN
    classes = np.unique(np.concatenate([gt[v], pred[v]])).astype(np.int64)
    a = B.image_class_counts(gt, pred, classes, IGN, cfg)
    b = B.image_class_counts(gt2, pred2, lut[classes].astype(np.int64), IGN, cfg)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    # and the order of `classes` is followed
    order = np.argsort(-classes)
    c = B.image_class_counts(gt, pred, classes[order], IGN, cfg)
    for k in a:
        assert np.array_equal(a[k][order], c[k]), k


def test_extra_classes_get_zero_rows():
    gt = square_map((10, 10), (2, 5), (2, 5))
    r = counts(gt, gt, classes=[0, 1, 42])
    assert all(v == 0 for v in r[42].values())


# ------------------------------------------------------------------------------------------------
# dataset level


def test_accumulation_is_over_pixels_not_images():
    # boundary IoU of class 1: 10/30 in one image, 20/20 in another -> 30/50, not the mean of ratios
    sums = {"bnd_biou_intersect": np.array([30]), "bnd_biou_union": np.array([50])}
    assert B.per_class_metrics(sums)["boundary_IoU"][0] == pytest.approx(60.0)


def test_summary_skips_nan_classes_and_splits_seen_unseen():
    cfg = B.BoundaryConfig()
    cols = B.count_columns(cfg)
    sums = {k: np.zeros(4, np.int64) for k in cols}
    sums["bnd_biou_intersect"][:] = [1, 0, 3, 0]
    sums["bnd_biou_union"][:] = [2, 0, 4, 5]          # class 1 NaN, class 3 zero
    sums["bnd_err_tp"][:] = [2, 0, 1, 0]
    sums["bnd_err_fp_segment"][:] = [2, 0, 0, 0]
    sums["bnd_err_fn_extent"][:] = [0, 0, 1, 0]
    sums["bnd_bf_f1_nano"][:] = [B.BF_SCALE // 2, 0, B.BF_SCALE, 0]
    sums["bnd_bf_images"][:] = [1, 0, 2, 0]
    s = B.summary(sums, unseen_mask=np.array([False, False, True, True]))
    assert s["boundary_IoU"] == pytest.approx((50 + 75 + 0) / 3)
    assert s["boundary_IoU_seen"] == pytest.approx(50.0)
    assert s["boundary_IoU_unseen"] == pytest.approx(37.5)
    assert s["mE_segment_oU"] == pytest.approx(25.0)          # (50 + 0) / 2
    assert s["mE_extent_oU"] == pytest.approx(25.0)           # (0 + 50) / 2
    assert s["mE_segment_oU_FP"] == pytest.approx(25.0)
    assert s["mBF"] == pytest.approx((50 + 50) / 2)
    assert np.isnan(s["trimap_IoU"])                           # no class defined
    expected = {"boundary_IoU", "boundary_IoU_padded", "trimap_IoU", "mBF", "boundary_IoU_seen", "boundary_IoU_unseen"}
    expected |= {f"mIoU@band{w}px" for w in (1, 2, 4, 8, 16)}
    for kind in ("boundary", "extent", "segment"):
        expected |= {f"mE_{kind}_oU{x}" for x in ("", "_FP", "_FN", "_renormed")}
    assert set(s) == expected
    assert "boundary_IoU_seen" not in B.summary(sums)


def test_summary_accepts_batch_axes():
    rng = np.random.default_rng(3)
    cols = B.count_columns(B.BoundaryConfig())
    batch = {k: rng.integers(0, 50, (6, 5)) for k in cols}
    batch["bnd_biou_union"][:, 0] = 0
    batch["bnd_biou_intersect"][:, 0] = 0
    batch["bnd_bf_f1_nano"] = rng.integers(0, B.BF_SCALE, (6, 5)) * (batch["bnd_bf_images"] > 0)
    s = B.summary(batch, unseen_mask=np.array([0, 1, 0, 1, 1], bool))
    pc = B.per_class_metrics(batch)
    for name, v in s.items():
        assert v.shape == (6,), name
    for b in range(6):
        one = B.summary({k: v[b] for k, v in batch.items()}, unseen_mask=np.array([0, 1, 0, 1, 1], bool))
        for name in s:
            np.testing.assert_allclose(s[name][b], one[name])
        assert pc["boundary_IoU"].shape == (6, 5)


# ------------------------------------------------------------------------------------------------
# frozen copy of the previous implementation (per-class crops, one mask per class; commit 6bc980c):
# the current one (whole-map label filters, sparse work on error/contour pixels) must give the same
# integer counts on every column


import cv2  # noqa: E402

from harness.metrics.boundary import (  # noqa: E402  (helpers the old code shares, unchanged)
    BF_SCALE,
    BoundaryConfig,
    band_widths,
    bf_tolerance,
    boundary_iou_width,
    count_columns,
    error_boundary_width,
    euclidean_disk,
    rounded_disk,
    square,
)
from harness.metrics.windows import dilate as _dilate_disk  # noqa: E402
from harness.metrics.windows import disk_rectangles

_SQUARE3 = square(1)


def _dilate(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # default border: pixels outside the image never dilate into it
    return cv2.dilate(mask, kernel)


def _erode(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # default border: pixels outside the image count as foreground, so the border is no boundary
    return cv2.erode(mask, kernel)


def legacy_compact(labels: np.ndarray, classes: np.ndarray, other: int) -> np.ndarray:
    """uint16 map: j where labels == classes[j], `other` where the label is not one of `classes`."""
    k = classes.size
    lo = min(int(labels.min()), int(classes.min()))
    hi = max(int(labels.max()), int(classes.max()))
    if hi - lo < (1 << 22):
        lut = np.full(hi - lo + 1, other, dtype=np.uint16)
        lut[classes - lo] = np.arange(k, dtype=np.uint16)
        return lut[labels - lo] if lo != 0 else lut[labels]
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    pos = np.minimum(np.searchsorted(sorted_classes, labels), k - 1)
    return np.where(sorted_classes[pos] == labels, order[pos], other).astype(np.uint16)


def legacy_class_boxes(gi: np.ndarray, pi: np.ndarray, k: int) -> list:
    """Bounding box (y0, y1, x0, x1) of G_c ∪ P_c for each of the k classes (None if both empty)."""
    boxes = [None] * k
    for idx in (gi, pi):
        # labels 1..k are the classes; k+1 and k+2 (ignore, other values) are beyond max_label
        for j, sl in enumerate(ndi.find_objects(idx + np.uint16(1), max_label=k)):
            if sl is None:
                continue
            y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            b = boxes[j]
            boxes[j] = (y0, y1, x0, x1) if b is None else (min(b[0], y0), max(b[1], y1),
                                                             min(b[2], x0), max(b[3], x1))
    return boxes


def legacy_keep_touching(mask, adj_tp, adj_tn):
    """Components (8-connected) of `mask` that touch both a TP and a TN pixel (8-neighbourhood)."""
    n, labels = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1:
        return mask
    touch_tp = np.bincount(labels[adj_tp.view(bool) & mask.view(bool)], minlength=n) > 0
    touch_tn = np.bincount(labels[adj_tn.view(bool) & mask.view(bool)], minlength=n) > 0
    keep = touch_tp & touch_tn
    keep[0] = False
    if keep[1:].all():
        return mask
    return keep[labels].astype(np.uint8)


def legacy_extent_split(region: np.ndarray, tp: np.ndarray, rest: np.ndarray) -> tuple[int, int]:
    """Split the pixels of `rest` by the 8-connected component of `region` they lie in: those in a
    component holding a TP pixel are extent errors, the others segment errors."""
    n_rest = int(np.count_nonzero(rest))
    if n_rest == 0:
        return 0, 0
    n, labels = cv2.connectedComponents(region, connectivity=8, ltype=cv2.CV_32S)
    has_tp = np.bincount(labels[tp.view(bool)], minlength=n) > 0
    has_tp[0] = False
    extent = int(np.count_nonzero(has_tp[labels[rest.view(bool)]]))
    return extent, n_rest - extent


def legacy_boundary_errors(tp, tn, fp, fn, bw, disk_bw):
    """beyond-iou's boundary errors of one class: FP (FN) pixels within bw of a TP and of a TN pixel
    seed them; the seeds grow by bw inside the FP (FN) mask; a grown 8-connected component is kept
    only if it touches (8-neighbourhood) a TP and a TN pixel. Returns full-crop masks (or None).

    Everything happens within 2·bw of a TP pixel, so it is computed on the box of the TP pixels
    padded by 2·bw + 2 (identical results: disks of the seeds and the components lie inside).
    """
    ys = np.flatnonzero(tp.any(axis=1))
    xs = np.flatnonzero(tp.any(axis=0))
    m = 2 * bw + 2
    H, W = tp.shape
    y0, y1 = max(ys[0] - m, 0), min(ys[-1] + 1 + m, H)
    x0, x1 = max(xs[0] - m, 0), min(xs[-1] + 1 + m, W)
    sub = (slice(y0, y1), slice(x0, x1))
    tp_s, tn_s = tp[sub], tn[sub]
    both = _dilate_disk(tp_s, disk_bw) & _dilate_disk(tn_s, disk_bw)  # within bw of a TP and of a TN pixel
    adj_tp = adj_tn = None
    result = []
    for err in (fp, fn):
        err_s = err[sub]
        seed = err_s & both
        if not seed.any():
            result.append(None)
            continue
        cand = _dilate_disk(seed, disk_bw) & err_s
        if adj_tp is None:
            adj_tp, adj_tn = _dilate(tp_s, _SQUARE3), _dilate(tn_s, _SQUARE3)
        full = np.zeros_like(err)
        full[sub] = legacy_keep_touching(cand, adj_tp, adj_tn)
        result.append(full)
    return result[0], result[1]


def legacy_class_counts(g, p, v, d, bw, disk_bw, disk_bf, out, j):
    """All counts of one class on a crop. g, p, v: uint8 0/1 masks of G_c, P_c and valid pixels."""
    not_g, not_p = 1 - g, 1 - p
    # --- Boundary IoU and trimap IoU (beyond-iou: 3x3 erosion iterated d times, L∞ band) -------
    k = square(d)
    g_er = _erode(g, k)
    gi = g & (1 - g_er)                      # G ∩ G_d
    pi = p & (1 - _erode(p, k))              # P ∩ P_d
    g_band = _dilate(g, k) & (1 - g_er)      # G_d = inner ∪ outer band
    out["bnd_biou_intersect"][j] = np.count_nonzero(gi & pi & v)
    out["bnd_biou_union"][j] = np.count_nonzero((gi | pi) & v)
    out["bnd_trimap_intersect"][j] = np.count_nonzero(gi & p)          # gi is valid already
    out["bnd_trimap_union"][j] = np.count_nonzero((gi | (g_band & p)) & v)

    # --- error breakdown (beyond-iou get_boundary_errors / get_extent_segment_errors) ----------
    tp = g & p
    fp = p & not_g                           # also on ignore pixels: shapes the geometry only
    fn = g & not_p
    tn = not_g & not_p                       # also on ignore pixels
    fp_bnd = fn_bnd = None
    if bw > 0 and tp.any():
        fp_bnd, fn_bnd = legacy_boundary_errors(tp, tn, fp, fn, bw, disk_bw)
    n_tp = int(np.count_nonzero(tp))
    out["bnd_err_tp"][j] = n_tp
    fp_v = fp & v
    if fp_bnd is not None:
        out["bnd_err_fp_boundary"][j] = np.count_nonzero(fp_bnd & v)
        fp_v = fp_v & (1 - fp_bnd)
    if fn_bnd is not None:
        out["bnd_err_fn_boundary"][j] = np.count_nonzero(fn_bnd)
        fn = fn & (1 - fn_bnd)
    if n_tp == 0:  # no TP pixel anywhere: every remaining error is a segment error
        out["bnd_err_fp_segment"][j] = np.count_nonzero(fp_v)
        out["bnd_err_fn_segment"][j] = np.count_nonzero(fn)
    else:
        out["bnd_err_fp_extent"][j], out["bnd_err_fp_segment"][j] = legacy_extent_split(p, tp, fp_v)
        out["bnd_err_fn_extent"][j], out["bnd_err_fn_segment"][j] = legacy_extent_split(g, tp, fn)

    # --- BF score (Csurka et al. 2013): 1-px inner contours, Euclidean tolerance ---------------
    g_present = g.any()
    p_present = bool(np.count_nonzero(p & v))
    if not (g_present or p_present):
        return
    out["bnd_bf_images"][j] = 1
    if not (g_present and p_present):
        return  # class missing from gt or prediction: F1 = 0
    bg = g & (1 - _erode(g, _SQUARE3))
    bp = p & (1 - _erode(p, _SQUARE3))
    bp_v = bp & v                            # pred contour pixels on ignore pixels are not scored
    n_g = int(np.count_nonzero(bg))
    n_p = int(np.count_nonzero(bp_v))
    if n_g == 0 or n_p == 0:
        f1 = 1.0 if n_g == n_p else 0.0
    else:
        # matches lie within the tolerance of the gt contour: work on its box padded by the radius
        r = disk_bf[0].shape[1] // 2
        ys = np.flatnonzero(bg.any(axis=1))
        xs = np.flatnonzero(bg.any(axis=0))
        sub = (slice(max(ys[0] - r, 0), ys[-1] + 1 + r), slice(max(xs[0] - r, 0), xs[-1] + 1 + r))
        bg_s = bg[sub]
        precision = np.count_nonzero(bp_v[sub] & _dilate_disk(bg_s, disk_bf)) / n_p
        recall = np.count_nonzero(bg_s & _dilate_disk(bp[sub], disk_bf)) / n_g
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    out["bnd_bf_f1_nano"][j] = int(round(f1 * BF_SCALE))


def legacy_band_counts(gi, pi, valid, k, widths, out):
    """Trimap band curve: band_w = non-ignored pixels within L∞ distance w of a pixel with another
    ground-truth value (the ignore value counts as another value; the border is no boundary);
    per class intersection and union of G_c and P_c inside the band (mmseg's IoU restricted to it).
    gi, pi: compact maps (0..k-1 classes, k ignore / no class, k+1 other values)."""
    ws = widths
    if not ws:
        return
    n_lv = len(ws)
    # level = index of the narrowest band holding the pixel; n_lv = in no band
    level = np.full(gi.shape, n_lv, dtype=np.int32)
    for i in range(n_lv - 1, -1, -1):
        kern = square(ws[i])
        level[_dilate(gi, kern) != _erode(gi, kern)] = i
    sel = valid & (level < n_lv)
    lv = level[sel] * (k + 2)
    g = gi[sel].astype(np.int32)
    p = pi[sel].astype(np.int32)
    nb = n_lv * (k + 2)
    inter = np.bincount((lv + g)[g == p], minlength=nb)
    area_g = np.bincount(lv + g, minlength=nb)
    area_p = np.bincount(lv + p, minlength=nb)
    inter, area_g, area_p = (np.cumsum(a.reshape(n_lv, k + 2), axis=0)[:, :k]
                             for a in (inter, area_g, area_p))
    for i, w in enumerate(ws):
        out[f"bnd_band{w}_intersect"][:] = inter[i]
        out[f"bnd_band{w}_union"][:] = area_g[i] + area_p[i] - inter[i]


def legacy_image_class_counts(gt: np.ndarray, pred: np.ndarray, classes: np.ndarray, ignore_index: int,
                       cfg: BoundaryConfig) -> dict[str, np.ndarray]:
    """Additive per-class counts of one image for the classes in `classes` (one row each, int64).

    gt, pred: HxW integer maps; gt pixels equal to `ignore_index` are not counted (the prediction
    there still shapes components and bands, as in beyond-iou); a prediction equal to the ignore
    value belongs to no class. A class equal to `ignore_index` gets a row of zeros. `classes` should
    hold every class of gt (non-ignored) and pred; other values count as "another class".
    Columns: see `count_columns(cfg)`.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"gt and pred must be HxW maps of one shape, got {gt.shape} and {pred.shape}")
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    k = classes.size
    out = {c: np.zeros(k, dtype=np.int64) for c in count_columns(cfg)}
    if k == 0 or gt.size == 0:
        return out
    if k + 2 >= np.iinfo(np.uint16).max:
        raise ValueError(f"too many classes in one image ({k})")
    shape = gt.shape
    d = boundary_iou_width(shape, cfg)
    bw = error_boundary_width(shape, cfg)
    disk_bw = disk_rectangles(rounded_disk(bw)) if bw > 0 else None
    disk_bf = disk_rectangles(euclidean_disk(bf_tolerance(shape, cfg)))
    valid = gt != ignore_index
    # compact maps: j = classes[j]; k = ignore (gt) / ignore value (pred); k+1 = any other value
    # (a class equal to the ignore value keeps no pixel: pixels of that value are set to k below)
    gi = legacy_compact(gt, classes, k + 1)
    pi = legacy_compact(pred, classes, k + 1)
    gi[~valid] = k
    pi[pred == ignore_index] = k
    H, W = shape
    for j, box in enumerate(legacy_class_boxes(gi, pi, k)):
        if box is None:
            continue
        # one pixel of margin: see docs/metrics_boundary.md ("crops") for why this is exact
        y0, y1 = max(box[0] - 1, 0), min(box[1] + 1, H)
        x0, x1 = max(box[2] - 1, 0), min(box[3] + 1, W)
        v = valid[y0:y1, x0:x1].view(np.uint8)
        g = (gi[y0:y1, x0:x1] == j).view(np.uint8)   # gi is k on ignore pixels: G_c excludes them
        p = (pi[y0:y1, x0:x1] == j).view(np.uint8)
        legacy_class_counts(g, p, v, d, bw, disk_bw, disk_bf, out, j)
    legacy_band_counts(gi, pi, valid, k, band_widths(cfg), out)
    return out


def _assert_same_as_legacy(gt, pred, classes, cfg, ignore=IGN):
    got = B.image_class_counts(gt, pred, classes, ignore, cfg)
    old = legacy_image_class_counts(gt, pred, classes, ignore, cfg)
    # the padded Boundary IoU came later (the reference module holds it, test above); the rest must not move
    new = ("bnd_biou_padded_intersect", "bnd_biou_padded_union")
    assert [c for c in got if c not in new] == [c for c in old if c not in new]
    for k in old:
        if k not in new:
            assert got[k].dtype == np.int64 and np.array_equal(got[k], old[k]), k


def _scene(rng, size, num_classes, present, things=60, blobs=15, salt=0.0):
    """bench/bench_metrics.py's synthetic_scene, with optional salt noise in the prediction."""
    classes = rng.choice(num_classes, present, replace=False)
    coarse = rng.choice(classes[:6], (8, 8))
    gt = np.ascontiguousarray(np.kron(coarse, np.ones((size // 8 + 1, size // 8 + 1)))[:size, :size], dtype=np.int32)
    for _ in range(things):
        c = int(rng.choice(classes[6:]))
        r = int(rng.choice([2, 4, 8, 16, 40]))
        x, y = rng.integers(0, size, 2)
        cv2.ellipse(gt, (int(x), int(y)), (r, max(1, int(r * rng.uniform(0.5, 1.5)))),
                    float(rng.uniform(0, 180)), 0, 360, c, -1)
    gt[rng.random(gt.shape) < 0.002] = IGN
    pred = np.where(gt == IGN, classes[0], gt)
    pred = np.ascontiguousarray(ndi.grey_dilation(pred, size=(3, 3), mode="constant", cval=-1), dtype=np.int32)
    for _ in range(blobs):
        x, y = rng.integers(0, size, 2)
        cv2.circle(pred, (int(x), int(y)), int(rng.integers(2, 12)), int(rng.choice(classes)), -1)
    noise = rng.random(gt.shape) < salt
    pred[noise] = rng.choice(classes, int(noise.sum()))
    return gt, pred


def _classes_of(gt, pred, ignore=IGN):
    v = gt != ignore
    return np.unique(np.concatenate([gt[v], pred[v]])).astype(np.int64)


@pytest.mark.parametrize("seed", range(40))
def test_same_counts_as_previous_implementation_random_maps(seed):
    rng = np.random.default_rng(1000 + seed)
    shape = (int(rng.integers(16, 70)), int(rng.integers(16, 70)))
    gt, pred = random_pair(rng, shape, n_classes=int(rng.integers(2, 9)), ignore_frac=float(rng.uniform(0, 0.1)))
    cfg = cfg_for(shape, d=int(rng.integers(1, 6)), bw=int(rng.integers(0, 5)),
                  theta=float(rng.uniform(0.5, 4.5)), bands=(1, 2, 4, 8))
    classes = _classes_of(gt, pred)
    if seed % 3 == 0:   # extra classes, the ignore value and a shuffled order
        classes = rng.permutation(np.concatenate([classes, [IGN, 77]]))
    _assert_same_as_legacy(gt, pred, classes, cfg)


@pytest.mark.parametrize("seed", range(6))
def test_same_counts_as_previous_implementation_cluttered_scenes(seed):
    # many classes within one window (three or more around a pixel: the exact per-class lookups),
    # salt noise, default widths of a 160x160 map and wider ones
    rng = np.random.default_rng(2000 + seed)
    gt, pred = _scene(rng, 160, 150, present=int(rng.integers(8, 40)), salt=(0.0, 0.002, 0.02)[seed % 3])
    classes = _classes_of(gt, pred)
    _assert_same_as_legacy(gt, pred, classes, B.BoundaryConfig())
    _assert_same_as_legacy(gt, pred, classes, cfg_for(gt.shape, d=6, bw=4, theta=3.7))


def test_same_counts_as_previous_implementation_many_classes():
    # more than 251 classes in one image: the 16-bit path of the label maps
    rng = np.random.default_rng(7)
    H, W = 96, 90
    gt = np.repeat(np.repeat(rng.integers(0, 600, (32, 30)), 3, axis=0), 3, axis=1).astype(np.int32)
    pred = np.roll(gt, 1, axis=1).copy()
    noise = rng.random((H, W)) < 0.05
    pred[noise] = rng.integers(0, 600, int(noise.sum()))
    gt[rng.random((H, W)) < 0.02] = 1000
    classes = _classes_of(gt, pred, ignore=1000)
    assert classes.size > 252
    _assert_same_as_legacy(gt, pred, classes, cfg_for((H, W), d=2, bw=2, theta=2.5), ignore=1000)


def test_same_counts_as_previous_implementation_edge_cases():
    rng = np.random.default_rng(11)
    cfg = cfg_for((20, 24), d=2, bw=2, theta=2.0)
    full = np.full((20, 24), 3, np.int32)
    _assert_same_as_legacy(full, full, np.array([3]), cfg)                     # one class everywhere
    _assert_same_as_legacy(full, np.full((20, 24), 5, np.int32), np.array([3, 5]), cfg)   # no TP
    ign = np.full((20, 24), IGN, np.int32)
    _assert_same_as_legacy(ign, full, np.array([3]), cfg)                      # all gt ignored
    gt, pred = random_pair(rng, (20, 24), n_classes=4)
    _assert_same_as_legacy(gt, pred, _classes_of(gt, pred), cfg_for((20, 24), bw=0))   # no boundary errors
    _assert_same_as_legacy(gt[:1], pred[:1], _classes_of(gt[:1], pred[:1]), cfg)        # one row
    _assert_same_as_legacy(gt[:, :1], pred[:, :1], _classes_of(gt[:, :1], pred[:, :1]), cfg)


@pytest.mark.parametrize("gather_cost", [0, 10**9])      # every class by crop, or by gathering
@pytest.mark.parametrize("rects_of", ["square", "rounded", "euclid"])
def test_exists_exact_window_gather_matches_dilation(rects_of, gather_cost, monkeypatch):
    # the exact look-up gathers windows of maps padded by the largest reach or dilates a crop; both
    # must equal the dilation of the class mask (outside the image never in it), also at the border
    monkeypatch.setattr(windows, "GATHER_COST", gather_cost)
    rng = np.random.default_rng(7)
    H, W, k = 23, 31, 5
    gi = rng.integers(0, k + 2, size=(H, W)).astype(np.uint8)
    pi = rng.integers(0, k + 2, size=(H, W)).astype(np.uint8)
    rects = {"square": (B.square(4),), "rounded": windows.disk_rectangles(B.rounded_disk(3)),
             "euclid": windows.disk_rectangles(B.euclidean_disk(2.9))}[rects_of]
    views = windows.WindowViews((H, W), 6)
    inside = np.ones((H, W), dtype=np.uint8)
    ys, xs = np.divmod(np.arange(H * W), W)
    cls = rng.integers(0, k, size=H * W).astype(np.uint8)
    px = Pixels(np.arange(H * W), ys, xs, cls)

    def tn(cc, take):
        return (take(gi, k + 2) != cc) & (take(pi, k + 2) != cc) & (take(inside) != 0)

    def tp(cc, take):
        return (take(gi, k + 2) == cc) & (take(pi, k + 2) == cc)

    for fn, mask_of in ((tn, lambda c: (gi != c) & (pi != c)), (tp, lambda c: (gi == c) & (pi == c))):
        got = windows.exists_exact(px, rects, fn, views)
        expect = np.zeros(H * W, dtype=bool)
        for c in range(k):
            dil = windows.dilate(mask_of(c).astype(np.uint8), rects).ravel() != 0
            expect[cls == c] = dil[cls == c]
        assert np.array_equal(got, expect)


def test_components_match_per_class_opencv_labelling():
    # 8-connected components within the pixels of each class (one multi-label pass) == OpenCV per class
    rng = np.random.default_rng(11)
    for shape, n_cls, p in (((40, 50), 3, 0.6), ((17, 9), 6, 0.9), ((1, 30), 2, 0.7), ((30, 1), 2, 0.7)):
        keep = rng.random(shape) < p
        cls_map = rng.integers(0, n_cls, size=shape)
        ys, xs = np.nonzero(keep)
        cls = cls_map[ys, xs].astype(np.uint8)
        lab = B._components(Pixels(ys * shape[1] + xs, ys, xs, cls))
        assert lab.min() >= 1
        for c in range(n_cls):
            sel = cls == c
            m = np.zeros(shape, dtype=np.uint8)
            m[ys[sel], xs[sel]] = 1
            _, ref = cv2.connectedComponents(m, connectivity=8)
            pairs = np.unique(np.stack([ref[ys[sel], xs[sel]], lab[sel]]), axis=1)
            # same partition: the pairing of labels is one-to-one
            assert np.unique(pairs[0]).size == np.unique(pairs[1]).size == pairs.shape[1]
        # pixels of different classes never share a label
        pairs = np.unique(np.stack([lab, cls.astype(np.int64)]), axis=1)
        assert np.unique(pairs[0]).size == pairs.shape[1]


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("rects_of", ["square", "rounded"])
def test_presence_query_on_code_maps_matches_dilation(rects_of, dtype, groups):
    # a query without mask_fn looks undecided pixels up on the map's code array (class where the
    # map holds, the dtype's max elsewhere), by window gathers from a pad whose reach equals the
    # window's; it must equal the per-class dilation of the held pixels (outside never in it)
    rng = np.random.default_rng(5)
    H, W, k = 26, 19, 9
    rects = {"square": (B.square(3),), "rounded": windows.disk_rectangles(B.rounded_disk(3))}[rects_of]
    labels = rng.integers(0, k, size=(H, W)).astype(dtype)
    holds = rng.random((H, W)) < 0.3
    pres = windows.ClassPresence([(labels, holds)], rects, groups=groups, views=windows.WindowViews((H, W), 3))
    ys, xs = np.divmod(np.arange(H * W), W)
    cls = rng.integers(0, k, size=H * W).astype(dtype)
    got = pres.query(0, Pixels(np.arange(H * W), ys, xs, cls))
    expect = np.zeros(H * W, dtype=bool)
    for c in range(k):
        dil = windows.dilate((holds & (labels == c)).astype(np.uint8), rects).ravel() != 0
        expect[cls == c] = dil[cls == c]
    assert np.array_equal(got, expect)
