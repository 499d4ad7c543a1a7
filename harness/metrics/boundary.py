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

Per image all classes are computed at once: L∞ bands and contours from max/min filters of the
label maps, window tests ("a pixel of class c within the disk of p") from max/min filters of label
maps, and the error breakdown on the lists of error pixels only; this gives exactly the full-image
result (docs, "Implementation"; tested against a full-image reference and the previous per-class
implementation).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from harness.metrics.family import Family, FamilySummary, MetricInfo, SummaryInputs, check_number
from harness.metrics.standard import nanmean_classes


@dataclass(frozen=True)
class BoundaryConfig:
    boundary_iou_ratio: float = 0.02      # d = max(1, round(ratio * diagonal)) for boundary/trimap IoU
    error_boundary_ratio: float = 0.01    # boundary width of the error breakdown, round(ratio * diagonal)
    band_widths: tuple = (1, 2, 4, 8, 16)  # trimap band curve mIoU@band<w>px
    bf_tolerance_ratio: float = 0.0075    # BF score tolerance, share of the diagonal

    def __post_init__(self):
        check_number(self, "boundary_iou_ratio", low=0, low_open=True, high=1)
        check_number(self, "error_boundary_ratio", low=0, high=1)
        check_number(self, "bf_tolerance_ratio", low=0, low_open=True, high=1)
        widths = self.band_widths
        if not isinstance(widths, (tuple, list)) or not widths or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"band_widths must be a non-empty list of integers >= 1, not {widths!r}")


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
#
# All classes are handled at once on "compact" label maps (gi, pi: 0..k-1 the classes, k ignore /
# the ignore value, k+1 any other value). Window tests of the form "is there a pixel of class c
# within the window of p" (c depending on p) are answered for every pixel at once by a max filter
# and a min filter of a label map that holds the class where the set holds and nothing elsewhere:
# c is present if it is the window's max or min, absent if it lies outside [min, max], and only
# when min < c < max (three classes in one window) is the answer looked up exactly, per class, by
# a window gather or a cropped dilation of that class's mask (`_Presence`, `_exists_exact`).
# Everything of the error breakdown and of the BF score happens at error / contour pixels, which
# are few: it is computed on lists of pixels (flat indices) instead of per-class masks.


def _compact(labels: np.ndarray, classes: np.ndarray, other: int, dtype) -> np.ndarray:
    """Map: j where labels == classes[j], `other` where the label is not one of `classes`."""
    k = classes.size
    lo = min(int(labels.min()), int(classes.min()))
    hi = max(int(labels.max()), int(classes.max()))
    if hi - lo < (1 << 22):
        lut = np.full(hi - lo + 1, other, dtype=dtype)
        lut[classes - lo] = np.arange(k, dtype=dtype)
        return lut[labels - lo] if lo != 0 else lut[labels]
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    pos = np.minimum(np.searchsorted(sorted_classes, labels), k - 1)
    return np.where(sorted_classes[pos] == labels, order[pos], other).astype(dtype)


def _compact_ignore(labels: np.ndarray, classes: np.ndarray, other: int, dtype, ignore: int) -> np.ndarray:
    """`_compact`, and k (= classes.size) where labels == ignore; by one 8-bit table lookup where
    the labels fit in a byte."""
    k = classes.size
    if dtype == np.uint8 and labels.dtype.kind in "iu" and labels.size:
        if labels.dtype == np.uint8:
            small = labels
        else:
            lo, hi = int(labels.min()), int(labels.max())
            small = labels.astype(np.uint8) if lo >= 0 and hi <= 255 else None
        if small is not None:
            lut = np.full(256, other, dtype=np.uint8)
            inside = (classes >= 0) & (classes <= 255)
            lut[classes[inside]] = np.flatnonzero(inside).astype(np.uint8)
            if 0 <= ignore <= 255:
                lut[ignore] = k
            return cv2.LUT(small, lut)
    out = _compact(labels, classes, other, dtype)
    out[labels == ignore] = k
    return out


def _max_filter(img: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    """Max over the window given as a union of centred rectangles (per channel; the outside of the
    image is ignored, OpenCV's default border for dilation)."""
    out = cv2.dilate(img, rects[0])
    for rect in rects[1:]:
        np.maximum(out, cv2.dilate(img, rect), out=out)
    return out


def _min_filter(img: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    """Min over the window (the outside of the image is ignored, OpenCV's default border)."""
    out = cv2.erode(img, rects[0])
    for rect in rects[1:]:
        np.minimum(out, cv2.erode(img, rect), out=out)
    return out


def _reach(rects) -> tuple[int, int]:
    return max(r.shape[0] for r in rects) // 2, max(r.shape[1] for r in rects) // 2


class _Presence:
    """Answers "is there a pixel of class c(p) in window(p)" for lists of pixels p, for label maps
    given as (labels, holds): the map holds class labels[q] at the pixels q where `holds`.

    The classes are split into `groups` by index (j mod groups); per map and group, a max filter of
    (class + 1) and a min filter of the class (255/65535 where the map holds nothing of the group)
    decide most pixels; the rest (another class of the group below and above c in the window) is
    looked up exactly by `_exists_exact` with mask_fn(c, take)."""

    def __init__(self, maps, rects, k: int, dtype, groups: int = 2, pad=None):
        if pad is None:
            pad = _Pad(maps[0][0].shape, max(_reach(rects)))
        self.rects, self.k, self.groups, self.pad = rects, k, groups, pad
        self.hi, self.lo, self.code = [], [], []
        for labels, holds in maps:
            his, los, codes = [], [], []
            h8 = holds.view(np.uint8)
            if groups == 2:
                odd = (labels & labels.dtype.type(1)).view(np.uint8) if labels.dtype == np.uint8 \
                    else (labels & 1).astype(np.uint8)
                odd &= h8
                hs = (h8 ^ odd, odd)
            else:
                hs = [holds & ((labels % groups) == g) for g in range(groups)] if groups > 1 else [holds]
            for h in hs:
                h = h.view(np.uint8) if h.dtype == bool else h
                # labels where the map holds the group, the dtype's max elsewhere
                lv = labels | (h.astype(labels.dtype, copy=False) - labels.dtype.type(1))
                # class + 1 where it holds, 0 elsewhere: adding 1 wraps the dtype's max to 0
                hv = lv + labels.dtype.type(1)
                his.append(_max_filter(hv, rects).ravel())
                los.append(_min_filter(lv, rects).ravel())
                codes.append(lv)
            # the map as one code array (class where it holds, the dtype's max elsewhere; the
            # groups are disjoint): an exact look-up gathers and compares one array instead of
            # building a mask from two
            self.code.append(codes[0] if len(codes) == 1 else np.minimum.reduce(codes))
            self.hi.append(his)
            self.lo.append(los)

    def query(self, i: int, ys, xs, cls, f, mask_fn=None) -> np.ndarray:
        """bool per pixel (flat index f = y * W + x, class cls): map i has class cls in the window.
        Undecided pixels are looked up exactly on map i's code array unless mask_fn is given."""
        if mask_fn is None:
            code = self.code[i]
            top = int(np.iinfo(code.dtype).max)

            def mask_fn(cc, take):
                return take(code, top) == cc
        c = cls.astype(np.int32)
        if self.groups == 2:
            odd = (c & 1).astype(bool)
            hi = np.where(odd, self.hi[i][1][f], self.hi[i][0][f]).astype(np.int32)
            lo = np.where(odd, self.lo[i][1][f], self.lo[i][0][f]).astype(np.int32)
        else:
            hi = np.zeros(c.size, dtype=np.int32)
            lo = np.zeros(c.size, dtype=np.int32)
            grp = c % self.groups
            for g in range(self.groups):
                sel = np.flatnonzero(grp == g) if self.groups > 1 else slice(None)
                hi[sel] = self.hi[i][g][f[sel]]
                lo[sel] = self.lo[i][g][f[sel]]
        hi -= 1
        out = (hi == c) | (lo == c)
        u = np.flatnonzero((lo < c) & (c < hi))
        if u.size:
            out[u] = _exists_exact(ys[u], xs[u], cls[u], self.rects, mask_fn, self.pad)
        return out


class _Pad:
    """Maps padded by the largest window reach (cached per array), for window gathers."""

    def __init__(self, shape, r: int):
        self.H, self.W = shape
        self.r = r
        self.cache = {}

    def __call__(self, arr, value=0):
        key = id(arr)
        hit = self.cache.get(key)
        if hit is None:
            a = arr.view(np.uint8) if arr.dtype == bool else arr
            r = self.r
            hit = (arr, cv2.copyMakeBorder(a, r, r, r, r, cv2.BORDER_CONSTANT, value=value))
            self.cache[key] = hit
        return hit[1]

    def windows(self, arr, value, ry: int, rx: int) -> np.ndarray:
        """[H, W, 2ry+1, 2rx+1] view: the window centred on each pixel of arr padded with `value`.
        Indexing it with pixel lists copies whole windows by strides, about five times faster
        than a gather through a [n, window] index array, which also had to be built."""
        r = self.r
        padded = self.__call__(arr, value)[r - ry:, r - rx:]
        return np.lib.stride_tricks.sliding_window_view(padded, (2 * ry + 1, 2 * rx + 1))[:self.H, :self.W]

    @staticmethod
    def kernel(rects) -> np.ndarray:
        """bool (2ry+1)x(2rx+1): the union of the centred rectangles."""
        ry, rx = _reach(rects)
        kern = np.zeros((2 * ry + 1, 2 * rx + 1), dtype=bool)
        for rect in rects:
            hh, hw = rect.shape[0] // 2, rect.shape[1] // 2
            kern[ry - hh:ry + hh + 1, rx - hw:rx + hw + 1] = True
        return kern


_GATHER_CHUNK = 1 << 21
_GATHER_COST = 0.5    # gathering a window value costs about this many pixels of a crop's dilation


def _exists_exact(ys, xs, cls, rects, mask_fn, pad) -> np.ndarray:
    """Per pixel p (class c = cls): does the mask of c hold somewhere in the window of p?

    mask_fn(c, take) gives the mask of class c on the values take(arr[, value]) returns. Per class,
    whichever is cheaper: either the mask is gathered on the windows of its pixels (take gives
    [n, h, w] windows of arr padded with `value`, the bounding box of the rectangles, of which only
    the rectangles' union counts; c is [n, 1, 1]), or it is built on the box of its pixels padded by
    the window (take gives arr[box]; c is an int) and dilated there (the outside of the image never
    dilates into it)."""
    out = np.zeros(ys.size, dtype=bool)
    if ys.size == 0:
        return out
    ry, rx = _reach(rects)
    kern = pad.kernel(rects)
    full = bool(kern.all())
    order = np.argsort(cls, kind="stable")
    cs = cls[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    ys_s, xs_s = ys[order], xs[order]
    y0 = np.maximum(np.minimum.reduceat(ys_s, starts) - ry, 0)
    y1 = np.minimum(np.maximum.reduceat(ys_s, starts) + ry + 1, pad.H)
    x0 = np.maximum(np.minimum.reduceat(xs_s, starts) - rx, 0)
    x1 = np.minimum(np.maximum.reduceat(xs_s, starts) + rx + 1, pad.W)
    counts = np.diff(np.r_[starts, cs.size])
    area = (y1 - y0).astype(np.int64) * (x1 - x0) * len(rects)
    by_gather = counts * kern.size * _GATHER_COST < area
    g_sel = order[np.repeat(by_gather, counts)]
    if g_sel.size:
        gy, gx = ys[g_sel], xs[g_sel]
        cg = cls[g_sel]
        step = max(1, _GATHER_CHUNK // kern.size)
        for s0 in range(0, g_sel.size, step):
            sy, sx = gy[s0:s0 + step], gx[s0:s0 + step]

            def take(arr, value=0, sy=sy, sx=sx):
                return pad.windows(arr, value, ry, rx)[sy, sx]

            m = mask_fn(cg[s0:s0 + step, None, None], take)
            if not full:
                m &= kern
            out[g_sel[s0:s0 + step]] = m.any(axis=(1, 2))
    for j in np.flatnonzero(~by_gather).tolist():
        sel = order[starts[j]:starts[j] + counts[j]]
        oy, ox = int(y0[j]), int(x0[j])
        box = (slice(oy, int(y1[j])), slice(ox, int(x1[j])))

        def take(arr, value=0, box=box):
            return arr[box]

        m = mask_fn(int(cs[starts[j]]), take).view(np.uint8)
        out[sel] = _dilate_disk(m, rects)[ys[sel] - oy, xs[sel] - ox] != 0
    return out


class _Neighbours:
    """8-neighbourhood lookups on the compact maps padded by one pixel of value k+2 (outside)."""

    def __init__(self, gi, pi, k):
        H, W = gi.shape
        self.W = W
        self.W2 = W + 2
        self.pad = k + 2
        self.g = cv2.copyMakeBorder(gi, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=k + 2).ravel()
        self.p = cv2.copyMakeBorder(pi, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=k + 2).ravel()
        W2 = self.W2
        self.offsets = (-W2 - 1, -W2, -W2 + 1, -1, 1, W2 - 1, W2, W2 + 1)

    def padded(self, ys, xs):
        return (ys + 1) * self.W2 + xs + 1

    def touch(self, pp, cls, want_tn=True):
        """(touches TP_c, touches TN_c) per pixel: an 8-neighbour in TP (TN) of its class c."""
        tp = np.zeros(pp.size, dtype=bool)
        tn = np.zeros(pp.size, dtype=bool) if want_tn else None
        for o in self.offsets:
            gn, pn = self.g[pp + o], self.p[pp + o]
            tp |= (gn == cls) & (pn == cls)
            if want_tn:
                tn |= (gn != cls) & (pn != cls) & (gn != self.pad)
        return tp, tn


def _components(ys, xs, cls, shape) -> np.ndarray:
    """Label (1..) of the 8-connected component of each pixel within the pixels of its own class
    (pixels given as lists): one multi-label pass of cc3d (pixels of different values never
    connect) on the box of the pixels holding class + 1, 0 elsewhere."""
    import cc3d

    n = ys.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    y0, x0 = int(ys.min()), int(xs.min())
    y = ys - y0
    x = xs - x0
    top = int(cls.max()) + 1
    img = np.zeros((int(y.max()) + 1, int(x.max()) + 1), dtype=np.uint8 if top <= 255 else np.uint32)
    img[y, x] = cls.astype(img.dtype) + 1
    labels = cc3d.connected_components(img, connectivity=8)
    return labels[y, x].astype(np.int64)


def _any_per_component(lab, flag):
    """bool per pixel: its component holds a pixel where `flag` is set."""
    has = np.zeros(int(lab.max()) + 1, dtype=bool)
    has[lab[flag]] = True
    return has[lab]


def _flag_hist(labels: np.ndarray, flags: np.ndarray, k: int) -> np.ndarray:
    """[k, 256] int64 counts of (label j < k, flag byte) pairs."""
    if labels.dtype == np.uint8 and labels.size < (1 << 24):   # float32 bins are exact below 2^24
        h = cv2.calcHist([labels, flags], [0, 1], None, [k, 256], [0, k, 0, 256])
        return h.reshape(k, 256).astype(np.int64)
    code = labels.astype(np.int64) * 256 + flags
    code = code[labels < k]
    return np.bincount(code.ravel(), minlength=k * 256)[:k * 256].reshape(k, 256).astype(np.int64)


def _bits(**want) -> np.ndarray:
    """bool over the 256 flag bytes: the bytes whose named bits have the wanted values."""
    sel = np.ones(256, dtype=bool)
    for name, (bit, value) in want.items():
        sel &= ((np.arange(256) >> bit) & 1) == value
    return sel


def _count(cls: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(cls, minlength=n)[:n].astype(np.int64)


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
    if k + 3 >= np.iinfo(np.uint16).max:
        raise ValueError(f"too many classes in one image ({k})")
    shape = gt.shape
    H, W = shape
    d = boundary_iou_width(shape, cfg)
    bw = error_boundary_width(shape, cfg)
    theta = bf_tolerance(shape, cfg)
    widths = band_widths(cfg)
    dt = np.uint8 if k + 3 <= 254 else np.uint16
    # compact maps: j = classes[j]; k = ignore (gt) / ignore value (pred); k+1 = any other value
    # (a class equal to the ignore value keeps no pixel: pixels of that value are set to k)
    gi = _compact_ignore(gt, classes, k + 1, dt, ignore_index)
    pi = _compact_ignore(pred, classes, k + 1, dt, ignore_index)
    valid = gi != k
    g_cls = gi < k                      # G_c for c = gi (valid by construction)
    p_cls = pi < k                      # P_c for c = pi (also on ignored pixels)
    agree = (gi == pi) & g_cls          # TP of class gi
    u8 = np.uint8

    # --- L∞ bands: inner bands of width d (Boundary/trimap IoU), the band curve, 1-px contours -----
    sq = square(d)
    p_in = (cv2.dilate(pi, sq) != cv2.erode(pi, sq)) & p_cls   # P_c ∩ P_d (c = pi)
    # max/min filters of gi over the squares of growing radius, each from the previous one
    # (square(a) ⊕ square(b) = square(a + b), also clipped to the image, which is a box)
    band = {}
    g_in = None
    dmax = dmin = gi
    r0 = 0
    for w in sorted(set(widths) | {1, d}):
        step = square(w - r0)
        dmax, dmin = cv2.dilate(dmax, step), cv2.erode(dmin, step)
        r0 = w
        ne = dmax != dmin
        if w == d:
            g_in = ne & g_cls                                   # G_c ∩ G_d (c = gi)
        band[w] = ne
    cg = band[1] & g_cls                                        # contour of G_c (c = gi)
    cp = (cv2.dilate(pi, _SQUARE3) != cv2.erode(pi, _SQUARE3)) & p_cls   # contour of P_c (c = pi)
    n_lv = len(widths)
    if n_lv > 7:
        raise ValueError(f"at most 7 band widths, got {widths}")
    level = np.full(shape, n_lv, dtype=u8)      # index of the narrowest band holding the pixel
    for w in widths:
        level -= band[w].view(u8)
    level[~valid] = 7
    # per class counts of the gt map (flags: TP, G_in, P_in, contour, level) and of the prediction
    fg = agree.view(u8) | (g_in.view(u8) << 1) | (p_in.view(u8) << 2) | (cg.view(u8) << 3) | (level << 4)
    hg = _flag_hist(gi, fg, k)
    fp_flags = valid.view(u8) | (p_in.view(u8) << 1) | (cp.view(u8) << 2) | (level << 3)
    hp = _flag_hist(pi, fp_flags, k)

    def sum_g(**want):
        return hg[:, _bits(**want)].sum(axis=1)

    def sum_p(**want):
        return hp[:, _bits(**want)].sum(axis=1)

    n_tp = sum_g(tp=(0, 1))
    out["bnd_err_tp"][:] = n_tp
    inter = sum_g(tp=(0, 1), gin=(1, 1), pin=(2, 1))
    n_gin = sum_g(gin=(1, 1))
    out["bnd_biou_intersect"][:] = inter
    out["bnd_biou_union"][:] = n_gin + sum_p(v=(0, 1), pin=(1, 1)) - inter
    out["bnd_trimap_intersect"][:] = sum_g(tp=(0, 1), gin=(1, 1))
    g_present = hg.sum(axis=1) > 0
    p_present = sum_p(v=(0, 1)) > 0
    n_g = sum_g(cg=(3, 1))
    n_p = sum_p(v=(0, 1), cp=(2, 1))
    lv_g = (np.arange(256) >> 4) & 7
    lv_p = (np.arange(256) >> 3) & 7
    tp_bit = (np.arange(256) & 1) == 1
    v_bit = (np.arange(256) & 1) == 1
    for i, w in enumerate(widths):
        ib = hg[:, (lv_g <= i) & tp_bit].sum(axis=1)
        ag = hg[:, lv_g <= i].sum(axis=1)
        ap = hp[:, (lv_p <= i) & v_bit].sum(axis=1)
        out[f"bnd_band{w}_intersect"][:] = ib
        out[f"bnd_band{w}_union"][:] = ag + ap - ib

    # trimap IoU's outer band: valid pixels predicted c, gt another value, G_c within the window
    f = np.flatnonzero(p_cls & ~agree)          # FP of class pi (also on ignored pixels)
    fp_y, fp_x = np.divmod(f, W)
    fp_f = f
    fp_c = pi.ravel()[f]
    fp_valid = valid.ravel()[f]
    sel = np.flatnonzero(fp_valid)
    pad = _Pad(shape, max(d, bw, int(math.floor(theta))))
    near_pres = _Presence([(gi, g_cls)], (sq,), k, dt, pad=pad)
    near = near_pres.query(0, fp_y[sel], fp_x[sel], fp_c[sel], fp_f[sel])
    out["bnd_trimap_union"][:] = n_gin + _count(fp_c[sel][near], k)

    # --- error breakdown -------------------------------------------------------------------------
    nb = _Neighbours(gi, pi, k)
    f = np.flatnonzero(g_cls & ~agree)          # FN of class gi
    fn_y, fn_x = np.divmod(f, W)
    fn_f = f
    fn_c = gi.ravel()[f]
    fp_pp, fn_pp = nb.padded(fp_y, fp_x), nb.padded(fn_y, fn_x)
    fp_bnd = np.zeros(fp_f.size, dtype=bool)
    fn_bnd = np.zeros(fn_f.size, dtype=bool)
    if bw > 0 and n_tp.any():
        rects = disk_rectangles(rounded_disk(bw))
        # one group: with the window copies the few more undecided pixels cost less than the
        # ten more disk filters of a second group
        pres = _Presence([(gi, agree)], rects, k, dt, groups=1, pad=pad)
        m1max = _max_filter(np.minimum(gi, pi), rects).ravel()
        m2min = _min_filter(np.maximum(gi, pi), rects).ravel()

        inside = np.ones(shape, dtype=u8)

        def tn_mask(cc, take):
            return (take(gi, k + 2) != cc) & (take(pi, k + 2) != cc) & (take(inside) != 0)

        def seeds(ys_, xs_, f_, cls_):
            """Pixels within the disk of a TP and of a TN pixel of their class."""
            s = np.zeros(f_.size, dtype=bool)
            if f_.size == 0:
                return s
            a = np.flatnonzero(pres.query(0, ys_, xs_, cls_, f_))
            c64 = cls_[a].astype(np.int64)
            # a TN pixel (both values != c) is certain where a pixel has both values above c or
            # both below; else look it up exactly
            b = (m1max[f_[a]] > c64) | (m2min[f_[a]] < c64)
            u = np.flatnonzero(~b)
            if u.size:
                b[u] = _exists_exact(ys_[a[u]], xs_[a[u]], cls_[a[u]], rects, tn_mask, pad)
            s[a[b]] = True
            return s

        s_fp = seeds(fp_y, fp_x, fp_f, fp_c)
        s_fn = seeds(fn_y, fn_x, fn_f, fn_c)
        if s_fp.any() or s_fn.any():
            sfp_map = np.zeros(shape, dtype=bool)
            sfp_map.ravel()[fp_f[s_fp]] = True
            sfn_map = np.zeros(shape, dtype=bool)
            sfn_map.ravel()[fn_f[s_fn]] = True
            grow = _Presence([(pi, sfp_map), (gi, sfn_map)], rects, k, dt, groups=1, pad=pad)
            for side, (ys_, xs_, f_, cls_, pp_, seed, bnd) in enumerate((
                    (fp_y, fp_x, fp_f, fp_c, fp_pp, s_fp, fp_bnd),
                    (fn_y, fn_x, fn_f, fn_c, fn_pp, s_fn, fn_bnd))):
                # a seed lies within the disk of itself: only the other error pixels are queried
                cand = seed.copy()
                q = np.flatnonzero(~seed)
                cand[q] = grow.query(side, ys_[q], xs_[q], cls_[q], f_[q])
                ci = np.flatnonzero(cand)
                if ci.size == 0:
                    continue
                lab = _components(ys_[ci], xs_[ci], cls_[ci], shape)
                t_tp, t_tn = nb.touch(pp_[ci], cls_[ci])
                keep = _any_per_component(lab, t_tp) & _any_per_component(lab, t_tn)
                bnd[ci[keep]] = True
    out["bnd_err_fp_boundary"][:] = _count(fp_c[fp_bnd & fp_valid], k)
    out["bnd_err_fn_boundary"][:] = _count(fn_c[fn_bnd], k)
    # extent / segment: a component of FP_c (FN_c) lies in a component of P_c (G_c) holding a TP
    # pixel iff it touches a TP_c pixel (8-neighbourhood)
    for name, ys_, xs_, cls_, pp_, bnd, counted in (
            ("fp", fp_y, fp_x, fp_c, fp_pp, fp_bnd, fp_valid), ("fn", fn_y, fn_x, fn_c, fn_pp, fn_bnd, None)):
        if ys_.size == 0:
            continue
        rest = ~bnd if counted is None else (~bnd & counted)
        lab = _components(ys_, xs_, cls_, shape)
        t_tp, _ = nb.touch(pp_, cls_, want_tn=False)
        ext = _any_per_component(lab, t_tp)
        out[f"bnd_err_{name}_extent"][:] = _count(cls_[rest & ext], k)
        out[f"bnd_err_{name}_segment"][:] = _count(cls_[rest & ~ext], k)

    # --- BF score: 1-px inner contours, Euclidean tolerance -----------------------------------
    out["bnd_bf_images"][:] = g_present | p_present
    both = np.flatnonzero(g_present & p_present & (n_g > 0) & (n_p > 0))
    matched_p = matched_g = np.zeros(k, dtype=np.int64)
    if both.size:
        disk_bf = disk_rectangles(euclidean_disk(theta))
        bf = _Presence([(gi, cg), (pi, cp)], disk_bf, k, dt, groups=1, pad=pad)
        # precision: scored predicted contour pixels within theta of the gt contour of their class
        # (a pixel on both contours of its class matches at distance 0)
        f = np.flatnonzero(cp & valid & ~(cg & agree))
        ys, xs = np.divmod(f, W)
        c = pi.ravel()[f]
        mp = bf.query(0, ys, xs, c, f)
        matched_p = _count(c[mp], k)
        f = np.flatnonzero(cg & ~(cp & agree))
        ys, xs = np.divmod(f, W)
        c = gi.ravel()[f]
        mg = bf.query(1, ys, xs, c, f)
        matched_g = _count(c[mg], k)
        on_both = _hist_both(gi, cg & cp & agree, k)
        matched_p = matched_p + on_both
        matched_g = matched_g + on_both
    f1_nano = out["bnd_bf_f1_nano"]
    for j in np.flatnonzero(g_present & p_present).tolist():
        ng, np_ = int(n_g[j]), int(n_p[j])
        if ng == 0 or np_ == 0:
            f1 = 1.0 if ng == np_ else 0.0
        else:
            precision = int(matched_p[j]) / np_
            recall = int(matched_g[j]) / ng
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        f1_nano[j] = int(round(f1 * BF_SCALE))
    return out


def _hist_both(labels, mask, k):
    return np.bincount(labels[mask], minlength=k)[:k].astype(np.int64)


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


# ---------------------------------------------------------------------------------------------
# the family

BEYOND_IOU = "beyond-iou (Bernhard et al., WACV 2024), github.com/mxbh/beyond-iou"


class BoundaryFamily(Family):
    """Boundary IoU, trimap IoU, the beyond-IoU error breakdown, a band curve and the BF score."""

    name = "boundary"
    config_type = BoundaryConfig

    def image_tables(self, ctx, cfg: BoundaryConfig) -> dict:
        counts = image_class_counts(ctx.gt, ctx.pred, ctx.counts()["class"], ctx.ignore_index, cfg)
        return {"pixel": counts}

    def summarize(self, inputs: SummaryInputs, cfg: BoundaryConfig) -> FamilySummary:
        sums = {k: v for k, v in inputs.pixel_sums.items() if k.startswith(PREFIX)}
        scalars = {k: float(v) for k, v in summary(sums, inputs.classes.unseen).items()}
        return FamilySummary(scalars=scalars, per_class=per_class_metrics(sums))

    def metrics(self, cfg: BoundaryConfig) -> tuple[MetricInfo, ...]:
        d = f"d = max(1, round({cfg.boundary_iou_ratio:g} x image diagonal))"
        info = [MetricInfo("boundary_IoU", self.name, definition=f"class mean of the IoU of the regions within {d} "
                           "of each mask's boundary (the image border is not a boundary)",
                           source=BEYOND_IOU + "; Cheng et al., CVPR 2021"),
                MetricInfo("boundary_IoU_seen", self.name, definition="boundary_IoU over the seen classes"),
                MetricInfo("boundary_IoU_unseen", self.name, definition="boundary_IoU over the unseen classes"),
                MetricInfo("trimap_IoU", self.name, definition=f"class mean of IoU inside the ground truth's band of {d}",
                           source=BEYOND_IOU),
                MetricInfo("mBF", self.name, definition="class mean of the per-image boundary F1 at a tolerance of "
                           f"{cfg.bf_tolerance_ratio:g} x diagonal", source="Csurka et al., BMVC 2013")]
        for kind in ("boundary", "extent", "segment"):
            base = f"mE_{kind}_oU"
            info.append(MetricInfo(base, self.name, better="lower",
                                   definition=f"class mean of the {kind} errors (FP + FN) over the union",
                                   source=BEYOND_IOU))
            for part in ("FP", "FN"):
                info.append(MetricInfo(f"{base}_{part}", self.name, better="lower",
                                       definition=f"the {part} part of {base}", source=BEYOND_IOU))
            info.append(MetricInfo(f"{base}_renormed", self.name, better="lower",
                                   definition=f"{base} renormalised as beyond-iou's result.py", source=BEYOND_IOU))
        for w in band_widths(cfg):
            info.append(MetricInfo(f"mIoU@band{w}px", self.name,
                                   definition=f"class mean of IoU inside the ground truth's {w}-pixel band",
                                   source=BEYOND_IOU))
        return tuple(info)
