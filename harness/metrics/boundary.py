"""The boundary family: Boundary IoU, trimap IoU, the beyond-IoU error breakdown, a trimap band
curve and the BF score. Conventions and the papers they follow: docs/metrics_boundary.md.

Semantics follow beyond-iou (Bernhard et al., WACV 2024, github.com/mxbh/beyond-iou, evaluator.py,
utils.py, result.py) so that the numbers are comparable with that paper:

* every metric is per class, built from masks G_c = (gt == c) (ignore pixels excluded) and
  P_c = (pred == c) (the prediction is kept everywhere, also on ignore pixels, and shapes the
  geometry there); pixels whose ground truth is the ignore value are never counted;
* the image border is never a boundary (OpenCV's default border: erosion treats the outside as
  foreground, dilation as background);
* counts are summed per class over the whole dataset and only then turned into ratios; class
  means skip classes whose ratio is 0/0 (pandas' mean skips NaN).

Per image the cost grows with the classes present in it: each class is computed on the bounding
box of G_c ∪ P_c padded by one pixel (clipped to the image), which gives exactly the full-image
result (argument in the docs; tested against a full-image reference).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage as ndi

from harness.metrics.standard import nanmean_classes


@dataclass(frozen=True)
class BoundaryConfig:
    boundary_iou_ratio: float = 0.02      # d = max(1, round(ratio * diagonal)) for boundary/trimap IoU
    error_boundary_ratio: float = 0.01    # boundary width of the error breakdown, round(ratio * diagonal)
    band_widths: tuple = (1, 2, 4, 8, 16)  # trimap band curve mIoU@band<w>px
    bf_tolerance_ratio: float = 0.0075    # BF score tolerance, share of the diagonal


PREFIX = "bnd_"
# Per image-class F1 of the BF score is stored as an integer in units of 1e-9 so that every column
# of the pixel table stays an additive int64 count (the aggregation sums int64 columns).
BF_SCALE = 10**9
ERROR_PARTS = ("fp_boundary", "fp_extent", "fp_segment", "fn_boundary", "fn_extent", "fn_segment")


def count_columns(cfg: BoundaryConfig) -> tuple[str, ...]:
    """Names of the count columns `image_class_counts` returns for `cfg` (all int64)."""
    cols = ["bnd_biou_intersect", "bnd_biou_union", "bnd_trimap_intersect", "bnd_trimap_union"]
    for w in band_widths(cfg):
        cols += [f"bnd_band{w}_intersect", f"bnd_band{w}_union"]
    cols += ["bnd_err_tp"] + [f"bnd_err_{p}" for p in ERROR_PARTS]
    cols += ["bnd_bf_f1_nano", "bnd_bf_images"]
    return tuple(cols)


# ---------------------------------------------------------------------------------------------
# widths and structuring elements

def band_widths(cfg: BoundaryConfig) -> list[int]:
    """The band curve's widths, sorted and distinct (each an integer >= 1)."""
    ws = set()
    for w in cfg.band_widths:
        if isinstance(w, bool) or int(w) != w or w < 1:
            raise ValueError(f"band widths must be integers >= 1, got {cfg.band_widths!r}")
        ws.add(int(w))
    return sorted(ws)


def _diagonal(shape) -> float:
    return math.sqrt(shape[0] ** 2 + shape[1] ** 2)


def boundary_iou_width(shape, cfg: BoundaryConfig) -> int:
    """d of Boundary/trimap IoU: max(1, round(ratio * diagonal)) (beyond-iou, boundary-iou-api)."""
    return max(int(round(cfg.boundary_iou_ratio * _diagonal(shape))), 1)


def error_boundary_width(shape, cfg: BoundaryConfig) -> int:
    """Boundary width of the error breakdown: round(ratio * diagonal), may be 0 (beyond-iou)."""
    return int(round(cfg.error_boundary_ratio * _diagonal(shape)))


def bf_tolerance(shape, cfg: BoundaryConfig) -> float:
    """Distance tolerance of the BF score in pixels (not rounded): ratio * diagonal."""
    return cfg.bf_tolerance_ratio * _diagonal(shape)


def square(radius: int) -> np.ndarray:
    """(2r+1)² square: one erosion with it equals r iterations of the 3×3 erosion."""
    return np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)


def rounded_disk(radius: int) -> np.ndarray:
    """Offsets (x, y) with round(sqrt(x² + y²)) <= r, beyond-iou's "exact" kernel.

    As x² + y² is an integer, round(sqrt(x² + y²)) <= r  <=>  sqrt(x² + y²) < r + 1/2
    <=>  x² + y² <= r² + r  (no tie at .5 can occur).
    """
    x = np.arange(-radius, radius + 1)
    return ((x[:, None] ** 2 + x[None, :] ** 2) <= radius * radius + radius).astype(np.uint8)


def euclidean_disk(tolerance: float) -> np.ndarray:
    """Offsets (x, y) with sqrt(x² + y²) <= tolerance (BF matching)."""
    r = int(math.floor(tolerance))
    x = np.arange(-r, r + 1)
    return ((x[:, None] ** 2 + x[None, :] ** 2) <= tolerance * tolerance).astype(np.uint8)


def disk_rectangles(kernel: np.ndarray) -> tuple[np.ndarray, ...]:
    """A centred disk-like kernel (rows symmetric, row half-widths non-increasing away from the
    centre) as the union of few rectangles: dilating by each and OR-ing gives the dilation by the
    disk (exactly: dilation distributes over the union of structuring elements), and OpenCV dilates
    by rectangles separably, about twice as fast as by the disk itself."""
    r = kernel.shape[0] // 2
    half = [int(kernel[r + y].sum()) // 2 for y in range(r + 1)]
    rects = []
    for hw in sorted(set(half), reverse=True):
        hh = max(y for y in range(r + 1) if half[y] >= hw)
        rects.append(np.ones((2 * hh + 1, 2 * hw + 1), dtype=np.uint8))
    return tuple(rects)


def _dilate_disk(mask: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    out = cv2.dilate(mask, rects[0])
    for rect in rects[1:]:
        out |= cv2.dilate(mask, rect)
    return out


_SQUARE3 = square(1)


def _dilate(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # default border: pixels outside the image never dilate into it
    return cv2.dilate(mask, kernel)


def _erode(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # default border: pixels outside the image count as foreground, so the border is no boundary
    return cv2.erode(mask, kernel)


# ---------------------------------------------------------------------------------------------
# per image

def _compact(labels: np.ndarray, classes: np.ndarray, other: int) -> np.ndarray:
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


def _class_boxes(gi: np.ndarray, pi: np.ndarray, k: int) -> list:
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


def _keep_touching(mask, adj_tp, adj_tn):
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


def _extent_split(region: np.ndarray, tp: np.ndarray, rest: np.ndarray) -> tuple[int, int]:
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


def _boundary_errors(tp, tn, fp, fn, bw, disk_bw):
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
        full[sub] = _keep_touching(cand, adj_tp, adj_tn)
        result.append(full)
    return result[0], result[1]


def _class_counts(g, p, v, d, bw, disk_bw, disk_bf, out, j):
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
        fp_bnd, fn_bnd = _boundary_errors(tp, tn, fp, fn, bw, disk_bw)
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
        out["bnd_err_fp_extent"][j], out["bnd_err_fp_segment"][j] = _extent_split(p, tp, fp_v)
        out["bnd_err_fn_extent"][j], out["bnd_err_fn_segment"][j] = _extent_split(g, tp, fn)

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


def _band_counts(gi, pi, valid, k, widths, out):
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


def image_class_counts(gt: np.ndarray, pred: np.ndarray, classes: np.ndarray, ignore_index: int,
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
    gi = _compact(gt, classes, k + 1)
    pi = _compact(pred, classes, k + 1)
    gi[~valid] = k
    pi[pred == ignore_index] = k
    H, W = shape
    for j, box in enumerate(_class_boxes(gi, pi, k)):
        if box is None:
            continue
        # one pixel of margin: see docs/metrics_boundary.md ("crops") for why this is exact
        y0, y1 = max(box[0] - 1, 0), min(box[1] + 1, H)
        x0, x1 = max(box[2] - 1, 0), min(box[3] + 1, W)
        v = valid[y0:y1, x0:x1].view(np.uint8)
        g = (gi[y0:y1, x0:x1] == j).view(np.uint8)   # gi is k on ignore pixels: G_c excludes them
        p = (pi[y0:y1, x0:x1] == j).view(np.uint8)
        _class_counts(g, p, v, d, bw, disk_bw, disk_bf, out, j)
    _band_counts(gi, pi, valid, k, band_widths(cfg), out)
    return out


# ---------------------------------------------------------------------------------------------
# per dataset

_BAND = re.compile(r"^bnd_band(\d+)_intersect$")


def _ratio(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * num / den


def band_widths_in(sums: dict) -> list[int]:
    return sorted(int(m.group(1)) for k in sums if (m := _BAND.match(k)))


def per_class_metrics(sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-class metrics in percent from counts summed over images ([..., C] each; NaN = 0/0).

    boundary_IoU = ΣI/ΣU of the boundary regions; trimap_IoU likewise; E_<kind>_oU = (FP_<kind> +
    FN_<kind>) / (TP + FP + FN) with its FP and FN parts E_<kind>_oU_FP / _FN, so that
    IoU + E_boundary_oU + E_extent_oU + E_segment_oU = 100; E_<kind>_oU_renormed as beyond-iou's
    result.py; IoU@band<w>px; BF = mean over the images where the class is present of the per-image
    F1. Columns that are missing from `sums` give no metric.
    """
    out: dict[str, np.ndarray] = {}
    if "bnd_biou_intersect" in sums:
        out["boundary_IoU"] = _ratio(sums["bnd_biou_intersect"], sums["bnd_biou_union"])
    if "bnd_trimap_intersect" in sums:
        out["trimap_IoU"] = _ratio(sums["bnd_trimap_intersect"], sums["bnd_trimap_union"])
    if "bnd_err_tp" in sums:
        tp = np.asarray(sums["bnd_err_tp"], dtype=np.float64)
        part = {p: np.asarray(sums[f"bnd_err_{p}"], dtype=np.float64) for p in ERROR_PARTS}
        union = tp + sum(part.values())
        for kind in ("boundary", "extent", "segment"):
            fp, fn = part[f"fp_{kind}"], part[f"fn_{kind}"]
            out[f"E_{kind}_oU"] = _ratio(fp + fn, union)
            out[f"E_{kind}_oU_FP"] = _ratio(fp, union)
            out[f"E_{kind}_oU_FN"] = _ratio(fn, union)
        e_b = part["fp_boundary"] + part["fn_boundary"]
        e_e = part["fp_extent"] + part["fn_extent"]
        out["E_boundary_oU_renormed"] = _ratio(e_b, tp + e_b)
        out["E_extent_oU_renormed"] = _ratio(e_e, tp + e_b + e_e)
        out["E_segment_oU_renormed"] = out["E_segment_oU"]
    for w in band_widths_in(sums):
        out[f"IoU@band{w}px"] = _ratio(sums[f"bnd_band{w}_intersect"], sums[f"bnd_band{w}_union"])
    if "bnd_bf_f1_nano" in sums:
        out["BF"] = _ratio(np.asarray(sums["bnd_bf_f1_nano"], dtype=np.float64) / BF_SCALE,
                           sums["bnd_bf_images"])
    return out


def summary(sums: dict[str, np.ndarray], unseen_mask=None) -> dict[str, np.ndarray]:
    """Class means (NaN classes skipped) of the per-class metrics, [...] each:
    boundary_IoU, trimap_IoU, mE_<kind>_oU (+ _FP, _FN, _renormed), mIoU@band<w>px, mBF; and, when
    `unseen_mask` (bool [C]) marks at least one class, boundary_IoU_seen / boundary_IoU_unseen."""
    pc = per_class_metrics(sums)
    out: dict[str, np.ndarray] = {}
    for name, values in pc.items():
        if name in ("boundary_IoU", "trimap_IoU"):
            key = name
        elif name.startswith("IoU@") or name.startswith("E_") or name == "BF":
            key = "m" + name
        else:
            key = name
        out[key] = nanmean_classes(values)
    if unseen_mask is not None and np.any(unseen_mask) and "boundary_IoU" in pc:
        mask = np.asarray(unseen_mask, dtype=bool)
        out["boundary_IoU_seen"] = nanmean_classes(pc["boundary_IoU"], ~mask)
        out["boundary_IoU_unseen"] = nanmean_classes(pc["boundary_IoU"], mask)
    return out
