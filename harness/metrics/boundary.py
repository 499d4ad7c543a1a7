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

The definition of every count, one class at a time on the full image, is
`harness.metrics.boundary_reference`; the tests hold `image_class_counts` to it on every column.
Here, per image, all classes are computed at once and exactly as the definition: L∞ bands and
contours from max/min filters of the label maps, counted by one histogram of (class, flag byte)
per map; window tests ("a pixel of class c within the disk of p") by the window engine,
`harness.metrics.windows`; the error breakdown and BF on the lists of error and contour pixels
only (docs/metrics_boundary.md, "Implementation").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from harness.metrics.family import (
    Family,
    FamilySummary,
    MetricInfo,
    SummaryInputs,
    check_number,
)
from harness.metrics.standard import nanmean_classes
from harness.metrics.windows import (
    ClassPresence,
    Pixels,
    WindowViews,
    disk_rectangles,
    exists_exact,
    max_filter,
    min_filter,
)


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
    cols = ["bnd_biou_intersect", "bnd_biou_union", "bnd_biou_padded_intersect", "bnd_biou_padded_union",
            "bnd_trimap_intersect", "bnd_trimap_union"]
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


_SQUARE3 = square(1)


# ---------------------------------------------------------------------------------------------
# flag bytes
#
# Per-class counts over whole regions of the map (TP, inner bands, contours, the band curve's
# bands) come from one 2-D histogram of (class, flag byte) per map (`_FlagCounts`): each pixel gets
# a byte of facts about it, and a count is the sum over the bytes that have the wanted bits. The
# constants are bit positions in the byte (plain ints, not an IntEnum: numpy widens a uint8 array
# shifted by an int subclass to int64).
#
# The byte of a pixel of the gt map, counted under its gt class c (ignored gt pixels are not counted):
G_TP = 0                # the prediction is c too: a true positive of c
G_INNER = 1             # in G_c ∩ G_d, the inner band of width d of Boundary and trimap IoU
G_PRED_INNER = 2        # in P_c' ∩ P_d for its predicted class c' (with G_TP: in P_c ∩ P_d)
G_CONTOUR = 3           # on the 1-pixel inner contour of G_c (BF)
G_LEVEL = 4             # bits 4-6: the pixel's band level (below)
# The byte of a pixel of the prediction, counted under its predicted class c (also where the gt is
# ignored, as the prediction there still shapes P_c):
P_VALID = 0             # the gt is not ignored: the pixel is scored
P_INNER = 1             # in P_c ∩ P_d
P_CONTOUR = 2           # on the 1-pixel inner contour of P_c (BF)
P_LEVEL = 3             # bits 3-5: the pixel's band level
# Band level, 3 bits: the index i of the narrowest band of the band curve that holds the pixel
# (the bands are nested, so "in band i" is level <= i), len(widths) if none does, LEVEL_IGNORED
# where the gt is ignored. With 7 widths "in none" and "ignored" share the value 7; both are in no
# band, which is all the counts ask.
LEVEL_MASK = 0b111
LEVEL_IGNORED = 7
MAX_BAND_WIDTHS = 7

_BYTES = np.arange(256)


def _bytes_with(bits, band, level_bit: int) -> np.ndarray:
    """bool over the 256 flag bytes: those with every bit of `bits` set and, unless band is None,
    a level <= band (levels stored from bit `level_bit` on)."""
    sel = np.ones(256, dtype=bool)
    for bit in bits:
        sel &= ((_BYTES >> bit) & 1) == 1
    if band is not None:
        sel &= ((_BYTES >> level_bit) & LEVEL_MASK) <= band
    return sel


def _pack(fields) -> np.ndarray:
    """The flag byte of each pixel from (bit, field) pairs: a bool mask, or a uint8 map of small
    values (the level), shifted to its bit."""
    byte = None
    for bit, field in fields:
        part = field.view(np.uint8) << bit
        if byte is None:
            byte = part
        else:
            byte |= part
    return byte


def _flag_hist(labels: np.ndarray, flags: np.ndarray, k: int) -> np.ndarray:
    """[k, 256] int64 counts of (label j < k, flag byte) pairs."""
    if labels.dtype == np.uint8 and labels.size < (1 << 24):   # float32 bins are exact below 2^24
        h = cv2.calcHist([labels, flags], [0, 1], None, [k, 256], [0, k, 0, 256])
        return h.reshape(k, 256).astype(np.int64)
    code = labels.astype(np.int64) * 256 + flags
    code = code[labels < k]
    return np.bincount(code.ravel(), minlength=k * 256)[:k * 256].reshape(k, 256).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# one image on compact label maps
#
# All classes are handled at once on "compact" label maps: 0..k-1 the image's classes, k the
# ignore value (an ignored gt pixel, or the ignore value predicted), k+1 any other value, k+2
# outside the image where a map is padded. Window tests ("a pixel of class c within the window of
# p") are answered by the window engine (`harness.metrics.windows`). The error breakdown and the BF
# score only look at error and contour pixels, which are few: they work on lists of pixels.


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


@dataclass(frozen=True)
class _Image:
    """The compact maps of one image and the masks every count starts from."""
    gi: np.ndarray          # compact gt
    pi: np.ndarray          # compact prediction
    k: int                  # number of classes
    valid: np.ndarray       # the gt is not ignored: the pixel is scored
    g_cls: np.ndarray       # in G_c for c = gi (valid by construction)
    p_cls: np.ndarray       # in P_c for c = pi (also on ignored pixels)
    tp: np.ndarray          # a TP of class gi (= pi)

    @classmethod
    def of(cls, gt, pred, classes: np.ndarray, ignore_index: int) -> _Image:
        k = classes.size
        # room for the labels up to k+2 and for the window engine's "nothing held" (the max)
        dtype = np.uint8 if k + 3 <= 254 else np.uint16
        # a class equal to the ignore value keeps no pixel: pixels of that value become k
        gi = _compact_ignore(gt, classes, k + 1, dtype, ignore_index)
        pi = _compact_ignore(pred, classes, k + 1, dtype, ignore_index)
        g_cls, p_cls = gi < k, pi < k
        return cls(gi, pi, k, gi != k, g_cls, p_cls, (gi == pi) & g_cls)

    @property
    def shape(self) -> tuple[int, int]:
        return self.gi.shape

    def fp(self) -> Pixels:
        """FP pixels of their predicted class c = pi (also on ignored pixels, which are not scored)."""
        return Pixels.where(self.p_cls & ~self.tp, self.pi)

    def fn(self) -> Pixels:
        """FN pixels of their gt class c = gi."""
        return Pixels.where(self.g_cls & ~self.tp, self.gi)


def _count(cls: np.ndarray, n: int) -> np.ndarray:
    """int64 [n]: how many of the pixels are of each class."""
    return np.bincount(cls, minlength=n)[:n].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# L∞ bands and contours

@dataclass(frozen=True)
class _Bands:
    """Bands and contours of every class at once (c = the pixel's own gt / predicted class)."""
    g_inner: np.ndarray     # G_c ∩ G_d (c = gi)
    p_inner: np.ndarray     # P_c ∩ P_d (c = pi)
    g_contour: np.ndarray   # 1-pixel inner contour of G_c (c = gi)
    p_contour: np.ndarray   # 1-pixel inner contour of P_c (c = pi)
    level: np.ndarray       # uint8 band level of the band curve (see the flag bytes)


def _bands(img: _Image, d: int, widths: list[int]) -> _Bands:
    """A pixel of class c is in c's inner band of width w iff the map is not constant on its
    (2w+1)² window clipped to the image (max filter != min filter); the border is no boundary."""
    gi, pi = img.gi, img.pi
    sq = square(d)
    p_inner = (cv2.dilate(pi, sq) != cv2.erode(pi, sq)) & img.p_cls
    # gt not constant within L∞ distance w, for every width needed: max/min filters over squares of
    # growing radius, each from the previous one (square(a) ⊕ square(b) = square(a + b), also
    # clipped to the image, which is a box)
    gt_varies = {}
    dmax = dmin = gi
    r0 = 0
    for w in sorted(set(widths) | {1, d}):
        step = square(w - r0)
        dmax, dmin = cv2.dilate(dmax, step), cv2.erode(dmin, step)
        r0 = w
        gt_varies[w] = dmax != dmin
    p_contour = (cv2.dilate(pi, _SQUARE3) != cv2.erode(pi, _SQUARE3)) & img.p_cls
    return _Bands(g_inner=gt_varies[d] & img.g_cls, p_inner=p_inner, g_contour=gt_varies[1] & img.g_cls,
                  p_contour=p_contour, level=_band_levels(gt_varies, widths, img.valid))


def _band_levels(gt_varies: dict, widths: list[int], valid: np.ndarray) -> np.ndarray:
    """The band level of every pixel: band_w = pixels within L∞ distance w of another gt value."""
    if len(widths) > MAX_BAND_WIDTHS:
        raise ValueError(f"at most {MAX_BAND_WIDTHS} band widths, got {widths}")
    level = np.full(valid.shape, len(widths), dtype=np.uint8)
    for w in widths:        # nested bands: each one a pixel is in lowers its level by one
        level -= gt_varies[w].view(np.uint8)
    level[~valid] = LEVEL_IGNORED
    return level


class _FlagCounts:
    """[k, 256] pixel counts by class and flag byte: of the gt map under each pixel's gt class, and
    of the prediction under its predicted class."""

    def __init__(self, img: _Image, bands: _Bands):
        gt_bytes = _pack(((G_TP, img.tp), (G_INNER, bands.g_inner), (G_PRED_INNER, bands.p_inner),
                          (G_CONTOUR, bands.g_contour), (G_LEVEL, bands.level)))
        self.by_gt = _flag_hist(img.gi, gt_bytes, img.k)
        pred_bytes = _pack(((P_VALID, img.valid), (P_INNER, bands.p_inner), (P_CONTOUR, bands.p_contour),
                            (P_LEVEL, bands.level)))
        self.by_pred = _flag_hist(img.pi, pred_bytes, img.k)

    def gt(self, *bits: int, band: int | None = None) -> np.ndarray:
        """Per class c: gt pixels of c with all `bits` set (and in band number `band`)."""
        return self.by_gt[:, _bytes_with(bits, band, G_LEVEL)].sum(axis=1)

    def pred(self, *bits: int, band: int | None = None) -> np.ndarray:
        """Per class c: pixels predicted c with all `bits` set (and in band number `band`)."""
        return self.by_pred[:, _bytes_with(bits, band, P_LEVEL)].sum(axis=1)


def _region_counts(flags: _FlagCounts, widths: list[int], out: dict) -> None:
    """TP, Boundary IoU, trimap IoU's intersection and the band curve, from the flag counts."""
    out["bnd_err_tp"][:] = flags.gt(G_TP)
    inter = flags.gt(G_TP, G_INNER, G_PRED_INNER)           # (G ∩ G_d) ∩ (P ∩ P_d)
    out["bnd_biou_intersect"][:] = inter
    out["bnd_biou_union"][:] = flags.gt(G_INNER) + flags.pred(P_VALID, P_INNER) - inter
    out["bnd_trimap_intersect"][:] = flags.gt(G_TP, G_INNER)  # (G ∩ G_d) ∩ P
    for i, w in enumerate(widths):
        band_inter = flags.gt(G_TP, band=i)
        out[f"bnd_band{w}_intersect"][:] = band_inter
        out[f"bnd_band{w}_union"][:] = flags.gt(band=i) + flags.pred(P_VALID, band=i) - band_inter


def _edge_strip(a: np.ndarray, d: int) -> np.ndarray:
    """The values of `a` within d pixels of the image border (each pixel once), flattened: the top
    and bottom rows, then the left and right columns between them."""
    H, W = a.shape
    r0, r1 = min(d, H), max(min(d, H), H - d)
    c0, c1 = min(d, W), max(min(d, W), W - d)
    return np.concatenate([a[:r0].ravel(), a[r1:].ravel(), a[r0:r1, :c0].ravel(), a[r0:r1, c1:].ravel()])


def _padded_biou_counts(img: _Image, bands: _Bands, d: int, out: dict) -> None:
    """Boundary IoU's counts with the image border as a boundary (boundary-iou-api's mask_to_boundary
    pads each mask with zeros): within d pixels of the border every pixel of G_c (P_c) is in its
    inner band, elsewhere the bands are the unpadded ones. So the padded counts are the unpadded
    ones plus the border strip's pixels that only the padding puts in a band."""
    gi, pi = _edge_strip(img.gi, d), _edge_strip(img.pi, d)
    g_cls, p_cls, valid, tp = (_edge_strip(m, d) for m in (img.g_cls, img.p_cls, img.valid, img.tp))
    g_inner, p_inner = _edge_strip(bands.g_inner, d), _edge_strip(bands.p_inner, d)
    k = img.k
    added_both = _count(gi[tp & ~(g_inner & p_inner)], k)   # on the strip both bands hold every TP pixel
    added_g = _count(gi[g_cls & ~g_inner], k)
    added_p = _count(pi[valid & p_cls & ~p_inner], k)
    out["bnd_biou_padded_intersect"][:] = out["bnd_biou_intersect"] + added_both
    # |G' ∪ P'| = |G'| + |P'| - |G' ∩ P'| with G' = G band + added_g, P' = P band + added_p
    out["bnd_biou_padded_union"][:] = out["bnd_biou_union"] + added_g + added_p - added_both


def _trimap_outer_band(img: _Image, fp: Pixels, fp_scored: np.ndarray, d: int, views: WindowViews):
    """Per class c: scored pixels predicted c, gt another value, with G_c within the (2d+1)²
    square: (G_d − G) ∩ P, the part of trimap IoU's union outside G ∩ G_d."""
    scored = fp[np.flatnonzero(fp_scored)]
    g_near = ClassPresence([(img.gi, img.g_cls)], (square(d),), views=views)
    return _count(scored.c[g_near.query(0, scored)], img.k)


# ---------------------------------------------------------------------------------------------
# error breakdown on the lists of FP and FN pixels

class _Neighbours:
    """8-neighbour look-ups on the compact maps padded by one pixel of value k+2 (outside)."""

    def __init__(self, img: _Image):
        self.outside = img.k + 2
        self.W2 = img.shape[1] + 2
        self.g = cv2.copyMakeBorder(img.gi, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=self.outside).ravel()
        self.p = cv2.copyMakeBorder(img.pi, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=self.outside).ravel()
        W2 = self.W2
        self.offsets = (-W2 - 1, -W2, -W2 + 1, -1, 1, W2 - 1, W2, W2 + 1)

    def touch(self, px: Pixels, want_tn: bool = True):
        """(touches TP_c, touches TN_c) per pixel: an 8-neighbour in TP (TN) of its class c; TN_c
        includes ignored pixels not predicted c, never the outside."""
        pp = (px.y + 1) * self.W2 + px.x + 1
        cls = px.c
        tp = np.zeros(pp.size, dtype=bool)
        tn = np.zeros(pp.size, dtype=bool) if want_tn else None
        for o in self.offsets:
            gn, pn = self.g[pp + o], self.p[pp + o]
            tp |= (gn == cls) & (pn == cls)
            if want_tn:
                tn |= (gn != cls) & (pn != cls) & (gn != self.outside)
        return tp, tn


def _components(px: Pixels) -> np.ndarray:
    """Label (1..) of the 8-connected component of each pixel within the listed pixels of its own
    class: one multi-label pass of cc3d (pixels of different values never connect) on the box of
    the pixels holding class + 1, 0 elsewhere."""
    import cc3d

    if px.size == 0:
        return np.zeros(0, dtype=np.int64)
    y = px.y - int(px.y.min())
    x = px.x - int(px.x.min())
    top = int(px.c.max()) + 1
    img = np.zeros((int(y.max()) + 1, int(x.max()) + 1), dtype=np.uint8 if top <= 255 else np.uint32)
    img[y, x] = px.c.astype(img.dtype) + 1
    labels = cc3d.connected_components(img, connectivity=8)
    return labels[y, x].astype(np.int64)


def _any_per_component(lab, flag):
    """bool per pixel: its component holds a pixel where `flag` is set."""
    has = np.zeros(int(lab.max()) + 1, dtype=bool)
    has[lab[flag]] = True
    return has[lab]


class _NearTpAndTn:
    """The seed test of beyond-iou's boundary errors: is an error pixel within the disk of a TP and
    of a TN pixel of its class?"""

    def __init__(self, img: _Image, rects, views: WindowViews):
        # one group: with the window copies the few more undecided pixels cost less than the
        # ten more disk filters of a second group
        self.tp = ClassPresence([(img.gi, img.tp)], rects, groups=1, views=views)
        # a TN pixel of c (both values != c) is certain in a window holding a pixel with both
        # values above c (max of min(gt, pred) > c) or both below (min of max(gt, pred) < c)
        self.max_of_lower = max_filter(np.minimum(img.gi, img.pi), rects).ravel()
        self.min_of_upper = min_filter(np.maximum(img.gi, img.pi), rects).ravel()
        self.tn_mask = _tn_mask(img)
        self.rects, self.views = rects, views

    def __call__(self, px: Pixels) -> np.ndarray:
        seed = np.zeros(px.size, dtype=bool)
        if px.size == 0:
            return seed
        a = np.flatnonzero(self.tp.query(0, px))
        c64 = px.c[a].astype(np.int64)
        near_tn = (self.max_of_lower[px.f[a]] > c64) | (self.min_of_upper[px.f[a]] < c64)
        u = np.flatnonzero(~near_tn)
        if u.size:
            near_tn[u] = exists_exact(px[a[u]], self.rects, self.tn_mask, self.views)
        seed[a[near_tn]] = True
        return seed


def _tn_mask(img: _Image):
    """mask_fn for exists_exact: the TN pixels of class c (neither value is c; ignored gt pixels
    included), never outside the image."""
    gi, pi, outside = img.gi, img.pi, img.k + 2
    inside = np.ones(img.shape, dtype=np.uint8)

    def mask_fn(c, take):
        return (take(gi, outside) != c) & (take(pi, outside) != c) & (take(inside) != 0)

    return mask_fn


def _boundary_errors(img: _Image, fp: Pixels, fn: Pixels, bw: int, views: WindowViews, nb: _Neighbours):
    """beyond-iou's boundary errors, bool per FP and per FN pixel: the error pixels within the
    disk of radius bw of a TP and of a TN pixel of their class seed them; the seeds grow by the disk
    inside the errors of their class; a grown 8-connected component is kept if it touches
    (8-neighbourhood) a TP and a TN pixel of its class."""
    rects = disk_rectangles(rounded_disk(bw))
    near_tp_and_tn = _NearTpAndTn(img, rects, views)
    seeds = near_tp_and_tn(fp), near_tp_and_tn(fn)
    on_boundary = [np.zeros(fp.size, dtype=bool), np.zeros(fn.size, dtype=bool)]
    if not (seeds[0].any() or seeds[1].any()):
        return on_boundary
    seed_maps = []
    for errors, seed in zip((fp, fn), seeds):
        seed_map = np.zeros(img.shape, dtype=bool)
        seed_map.ravel()[errors.f[seed]] = True
        seed_maps.append(seed_map)
    grow = ClassPresence([(img.pi, seed_maps[0]), (img.gi, seed_maps[1])], rects, groups=1, views=views)
    for side, errors in enumerate((fp, fn)):
        # a seed lies within the disk of itself: only the other error pixels are queried
        grown = seeds[side].copy()
        others = np.flatnonzero(~seeds[side])
        grown[others] = grow.query(side, errors[others])
        grown_at = np.flatnonzero(grown)
        if grown_at.size == 0:
            continue
        lab = _components(errors[grown_at])
        touch_tp, touch_tn = nb.touch(errors[grown_at])
        keep = _any_per_component(lab, touch_tp) & _any_per_component(lab, touch_tn)
        on_boundary[side][grown_at[keep]] = True
    return on_boundary


def _error_counts(name: str, errors: Pixels, scored, on_boundary, nb: _Neighbours, k: int, out: dict):
    """Boundary, extent and segment error counts of one side (name "fp" or "fn"); `scored` is bool
    per pixel, or None if all are scored. The rest of the errors are extent errors where the
    component of P_c (G_c) around them holds a TP pixel, i.e. iff their component of FP_c (FN_c)
    touches a TP_c pixel (8-neighbourhood), else segment errors."""
    boundary = on_boundary if scored is None else on_boundary & scored
    out[f"bnd_err_{name}_boundary"][:] = _count(errors.c[boundary], k)
    if errors.size == 0:
        return
    rest = ~on_boundary if scored is None else (~on_boundary & scored)
    touch_tp, _ = nb.touch(errors, want_tn=False)
    extent = _any_per_component(_components(errors), touch_tp)
    out[f"bnd_err_{name}_extent"][:] = _count(errors.c[rest & extent], k)
    out[f"bnd_err_{name}_segment"][:] = _count(errors.c[rest & ~extent], k)


# ---------------------------------------------------------------------------------------------
# BF score on the lists of contour pixels

def _bf_counts(img: _Image, bands: _Bands, flags: _FlagCounts, theta: float, views: WindowViews, out: dict):
    """Per class: 1 if present in gt or (scored) prediction, and the per-image F1 of the contours
    at tolerance theta, in units of 1/BF_SCALE."""
    k = img.k
    g_present = flags.gt() > 0
    p_present = flags.pred(P_VALID) > 0
    n_g = flags.gt(G_CONTOUR)                       # gt contour pixels
    n_p = flags.pred(P_VALID, P_CONTOUR)            # scored predicted contour pixels
    out["bnd_bf_images"][:] = g_present | p_present
    matched_p = matched_g = np.zeros(k, dtype=np.int64)
    if np.any(g_present & p_present & (n_g > 0) & (n_p > 0)):
        matched_p, matched_g = _bf_matches(img, bands, theta, views)
    f1_nano = out["bnd_bf_f1_nano"]
    for j in np.flatnonzero(g_present & p_present).tolist():
        f1 = _f1(int(n_g[j]), int(n_p[j]), int(matched_g[j]), int(matched_p[j]))
        f1_nano[j] = int(round(f1 * BF_SCALE))


def _bf_matches(img: _Image, bands: _Bands, theta: float, views: WindowViews):
    """Per class: scored predicted contour pixels within theta of the gt contour (precision's
    numerator) and gt contour pixels within theta of the predicted contour (recall's)."""
    k = img.k
    cg, cp = bands.g_contour, bands.p_contour
    contour_near = ClassPresence([(img.gi, cg), (img.pi, cp)], disk_rectangles(euclidean_disk(theta)),
                                 groups=1, views=views)
    # a pixel on both contours of its class matches at distance 0
    on_both = cg & cp & img.tp
    n_on_both = _count(img.gi[on_both], k)
    pred_contour = Pixels.where(cp & img.valid & ~(cg & img.tp), img.pi)
    matched_p = _count(pred_contour.c[contour_near.query(0, pred_contour)], k)
    gt_contour = Pixels.where(cg & ~(cp & img.tp), img.gi)
    matched_g = _count(gt_contour.c[contour_near.query(1, gt_contour)], k)
    return matched_p + n_on_both, matched_g + n_on_both


def _f1(n_g: int, n_p: int, matched_g: int, matched_p: int) -> float:
    """F1 of one class in one image where it is present in both: 1 if neither has a contour (both
    fill the image), 0 if only one has."""
    if n_g == 0 or n_p == 0:
        return 1.0 if n_g == n_p else 0.0
    precision = matched_p / n_p
    recall = matched_g / n_g
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------
# per image

def image_class_counts(gt: np.ndarray, pred: np.ndarray, classes: np.ndarray, ignore_index: int,
                       cfg: BoundaryConfig) -> dict[str, np.ndarray]:
    """Additive per-class counts of one image for the classes in `classes` (one row each, int64).

    gt, pred: HxW integer maps; gt pixels equal to `ignore_index` are not counted (the prediction
    there still shapes components and bands, as in beyond-iou); a prediction equal to the ignore
    value belongs to no class. A class equal to `ignore_index` gets a row of zeros. `classes` should
    hold every class of gt (non-ignored) and pred; other values count as "another class".
    Columns: see `count_columns(cfg)`. The definition it computes, class by class and readably:
    `harness.metrics.boundary_reference.reference_counts`.
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
    d = boundary_iou_width(gt.shape, cfg)
    bw = error_boundary_width(gt.shape, cfg)
    theta = bf_tolerance(gt.shape, cfg)
    widths = band_widths(cfg)
    img = _Image.of(gt, pred, classes, ignore_index)

    bands = _bands(img, d, widths)
    flags = _FlagCounts(img, bands)
    _region_counts(flags, widths, out)
    _padded_biou_counts(img, bands, d, out)

    # one padding of the maps serves every window test of the image
    views = WindowViews(img.shape, max(d, bw, int(math.floor(theta))))
    fp, fn = img.fp(), img.fn()
    fp_scored = img.valid.ravel()[fp.f]
    out["bnd_trimap_union"][:] = flags.gt(G_INNER) + _trimap_outer_band(img, fp, fp_scored, d, views)

    nb = _Neighbours(img)
    if bw > 0 and out["bnd_err_tp"].any():
        fp_boundary, fn_boundary = _boundary_errors(img, fp, fn, bw, views, nb)
    else:       # beyond-iou: no boundary errors with a 1x1 kernel, nor without any TP pixel
        fp_boundary, fn_boundary = np.zeros(fp.size, dtype=bool), np.zeros(fn.size, dtype=bool)
    _error_counts("fp", fp, fp_scored, fp_boundary, nb, k, out)
    _error_counts("fn", fn, None, fn_boundary, nb, k, out)

    _bf_counts(img, bands, flags, theta, views, out)
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

    boundary_IoU = ΣI/ΣU of the boundary regions (boundary_IoU_padded: with the border as a boundary);
    trimap_IoU likewise; E_<kind>_oU = (FP_<kind> +
    FN_<kind>) / (TP + FP + FN) with its FP and FN parts E_<kind>_oU_FP / _FN, so that
    IoU + E_boundary_oU + E_extent_oU + E_segment_oU = 100; E_<kind>_oU_renormed as beyond-iou's
    result.py; IoU@band<w>px; BF = mean over the images where the class is present of the per-image
    F1. Columns that are missing from `sums` give no metric.
    """
    out: dict[str, np.ndarray] = {}
    if "bnd_biou_intersect" in sums:
        out["boundary_IoU"] = _ratio(sums["bnd_biou_intersect"], sums["bnd_biou_union"])
    if "bnd_biou_padded_intersect" in sums:
        out["boundary_IoU_padded"] = _ratio(sums["bnd_biou_padded_intersect"], sums["bnd_biou_padded_union"])
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
    boundary_IoU, boundary_IoU_padded, trimap_IoU, mE_<kind>_oU (+ _FP, _FN, _renormed), mIoU@band<w>px, mBF; and, when
    `unseen_mask` (bool [C]) marks at least one class, boundary_IoU_seen / boundary_IoU_unseen."""
    pc = per_class_metrics(sums)
    out: dict[str, np.ndarray] = {}
    for name, values in pc.items():
        if name in ("boundary_IoU", "boundary_IoU_padded", "trimap_IoU"):
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

BOUNDARY_IOU_API = "boundary-iou-api (Cheng et al., CVPR 2021), github.com/bowenc0221/boundary-iou-api"
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

    def resampled(self, inputs: SummaryInputs, cfg: BoundaryConfig, resampling) -> dict[str, np.ndarray]:
        pixel = inputs.tables["pixel"]
        columns = [c for c in pixel.columns if c.startswith(PREFIX)]
        return summary(resampling.class_sums(pixel, columns, inputs.classes.num_classes), inputs.classes.unseen)

    def metrics(self, cfg: BoundaryConfig) -> tuple[MetricInfo, ...]:
        d = f"d = max(1, round({cfg.boundary_iou_ratio:g} x image diagonal))"
        info = [MetricInfo("boundary_IoU", self.name, definition=f"class mean of the IoU of the regions within {d} "
                           "of each mask's boundary (the image border is not a boundary)",
                           source=BEYOND_IOU + "; Cheng et al., CVPR 2021"),
                MetricInfo("boundary_IoU_padded", self.name, definition="boundary_IoU with the image border as a "
                           "boundary: each mask is padded with zeros before its band is taken, as boundary-iou-api's "
                           "mask_to_boundary does (detectron2 pads likewise)", source=BOUNDARY_IOU_API),
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
