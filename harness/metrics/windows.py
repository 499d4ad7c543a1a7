"""The window engine of the boundary family: "is there a pixel of class c(p) in the window of p?",
answered exactly for a whole list of pixels p at once.

Every window test of the boundary counts has this form, with c(p) the class of the pixel asking:
a TP or TN pixel of c within the disk of an error pixel, a seed within the disk, G_c within the
trimap square, a contour pixel of c within the BF tolerance. Asking it per class would cost one
dilation of a mask per class; this module answers it for all classes together.

Windows. A window is a centred disk-like kernel (a square, beyond-iou's rounded disk, the BF's
Euclidean disk), given as the union of a few centred rectangles (`disk_rectangles`). Dilation
distributes over a union of structuring elements, so a max (min) filter over the disk is the max
(min) of the filters over its rectangles, and OpenCV filters by rectangles separably, about twice
as fast as by the disk itself. Outside the image is never part of a window (OpenCV's default
border: dilation ignores it as background, erosion as foreground), the border rule of the metrics.

Two filters decide most pixels. A label map "holds" a set of pixels, each with its class (e.g. the
TP pixels). With hi(p) = the largest and lo(p) = the smallest class held in window(p), a query for
class c at p is

* present if c == hi(p) or c == lo(p) (the max or min is a held class),
* absent if c > hi(p) or c < lo(p) (no held class lies outside [lo, hi]),
* undecided only if lo(p) < c < hi(p), when at least two other classes are held in the window;
  then `exists_exact` looks the window up by the definition itself.

So the answer is exact in every case; the filters only spare the look-ups. Splitting the classes
into two groups by parity (each with its own filters) makes the undecided case rarer where many
classes meet, at the cost of twice the filters.

Exact look-ups (`exists_exact`), per class, whichever is cheaper: copy the window of each pixel out
of a strided view of the map padded by the window's reach (`WindowViews`), or dilate the class's
mask on the box of its pixels and read the dilation there. Both compute the dilation of the mask by
the window at those pixels, which is the definition.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# exists_exact: window gathers are done in chunks of at most this many window pixels (memory)
GATHER_CHUNK = 1 << 21
# exists_exact: gathering one window pixel costs about this many pixels of a crop's dilation
GATHER_COST = 0.5


@dataclass(frozen=True)
class Pixels:
    """A list of pixels of an image: flat index f = y * W + x, row y, column x, and the class c each
    pixel asks about (an index into the image's classes)."""
    f: np.ndarray
    y: np.ndarray
    x: np.ndarray
    c: np.ndarray

    @classmethod
    def where(cls, mask: np.ndarray, labels: np.ndarray) -> Pixels:
        """The pixels where `mask` holds, each asking about its value in `labels`."""
        f = np.flatnonzero(mask)
        y, x = np.divmod(f, mask.shape[1])
        return cls(f, y, x, labels.ravel()[f])

    def __getitem__(self, sel) -> Pixels:
        return Pixels(self.f[sel], self.y[sel], self.x[sel], self.c[sel])

    @property
    def size(self) -> int:
        return self.f.size


# ---------------------------------------------------------------------------------------------
# windows as unions of rectangles

def disk_rectangles(kernel: np.ndarray) -> tuple[np.ndarray, ...]:
    """A centred disk-like kernel (rows symmetric, row half-widths non-increasing away from the
    centre) as the union of few centred rectangles, widest first: one per distinct row
    half-width, as tall as the rows that reach that wide."""
    r = kernel.shape[0] // 2
    half = [int(kernel[r + y].sum()) // 2 for y in range(r + 1)]
    rects = []
    for hw in sorted(set(half), reverse=True):
        hh = max(y for y in range(r + 1) if half[y] >= hw)
        rects.append(np.ones((2 * hh + 1, 2 * hw + 1), dtype=np.uint8))
    return tuple(rects)


def window_reach(rects) -> tuple[int, int]:
    """(ry, rx): how far the window of the rectangles reaches from its centre, down and across."""
    return max(r.shape[0] for r in rects) // 2, max(r.shape[1] for r in rects) // 2


def window_kernel(rects) -> np.ndarray:
    """bool (2ry+1)x(2rx+1): the union of the centred rectangles."""
    ry, rx = window_reach(rects)
    kern = np.zeros((2 * ry + 1, 2 * rx + 1), dtype=bool)
    for rect in rects:
        hh, hw = rect.shape[0] // 2, rect.shape[1] // 2
        kern[ry - hh:ry + hh + 1, rx - hw:rx + hw + 1] = True
    return kern


def dilate(mask: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    """Dilation of a 0/1 uint8 mask by the window (outside the image never dilates into it)."""
    out = cv2.dilate(mask, rects[0])
    for rect in rects[1:]:
        out |= cv2.dilate(mask, rect)
    return out


def max_filter(img: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    """Max over the window of each pixel (the outside of the image is ignored)."""
    out = cv2.dilate(img, rects[0])
    for rect in rects[1:]:
        np.maximum(out, cv2.dilate(img, rect), out=out)
    return out


def min_filter(img: np.ndarray, rects: tuple[np.ndarray, ...]) -> np.ndarray:
    """Min over the window of each pixel (the outside of the image is ignored)."""
    out = cv2.erode(img, rects[0])
    for rect in rects[1:]:
        np.minimum(out, cv2.erode(img, rect), out=out)
    return out


# ---------------------------------------------------------------------------------------------
# the window of every pixel, as a strided view

class WindowViews:
    """Maps padded by the largest window reach `r` (one copy per array and padding value, cached),
    and views of them that hold the window of every pixel."""

    def __init__(self, shape, r: int):
        self.H, self.W = shape
        self.r = r
        self.cache = {}

    def padded(self, arr: np.ndarray, value=0) -> np.ndarray:
        key = (id(arr), value)
        hit = self.cache.get(key)
        if hit is None:
            a = arr.view(np.uint8) if arr.dtype == bool else arr
            r = self.r
            # the cache keeps `arr` alive, so its id stays its own
            hit = (arr, cv2.copyMakeBorder(a, r, r, r, r, cv2.BORDER_CONSTANT, value=value))
            self.cache[key] = hit
        return hit[1]

    def windows(self, arr: np.ndarray, value, ry: int, rx: int) -> np.ndarray:
        """[H, W, 2ry+1, 2rx+1] view: the window centred on each pixel of arr padded with `value`.
        Indexing it with pixel lists copies whole windows by strides, about five times faster
        than a gather through a [n, window] index array, which also had to be built."""
        r = self.r
        padded = self.padded(arr, value)[r - ry:, r - rx:]
        return np.lib.stride_tricks.sliding_window_view(padded, (2 * ry + 1, 2 * rx + 1))[:self.H, :self.W]


# ---------------------------------------------------------------------------------------------
# exact look-ups

def exists_exact(px: Pixels, rects, mask_fn, views: WindowViews) -> np.ndarray:
    """Per pixel p of `px` (class c): does the mask of c hold somewhere in the window of p?

    mask_fn(c, take) builds the mask of class c from the values take(arr[, value]) returns: either
    [n, h, w] windows of arr padded with `value` (c is then [n, 1, 1]; the windows are the bounding
    box of the rectangles, of which only their union counts), or arr on a box of the image (c is
    then an int). Per class, whichever is cheaper is used: gathering the windows of its pixels, or
    dilating its mask on the box of its pixels padded by the window's reach."""
    out = np.zeros(px.size, dtype=bool)
    if px.size == 0:
        return out
    kern = window_kernel(rects)
    by_class = _ByClass(px, rects, views.H, views.W)
    # cost of each class by gathering its windows versus by dilating its box (once per rectangle)
    by_gather = by_class.counts * kern.size * GATHER_COST < by_class.box_area() * len(rects)
    _exists_by_gather(out, by_class.members(by_gather), px, rects, kern, mask_fn, views)
    for j in np.flatnonzero(~by_gather).tolist():
        _exists_by_dilation(out, by_class, j, px, rects, mask_fn)
    return out


class _ByClass:
    """The query pixels grouped by class (a stable sort), with the box of each class's pixels padded
    by the window's reach and clipped to the image."""

    def __init__(self, px: Pixels, rects, H: int, W: int):
        ry, rx = window_reach(rects)
        self.order = np.argsort(px.c, kind="stable")
        cs = self.cls_sorted = px.c[self.order]
        self.starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        self.counts = np.diff(np.r_[self.starts, cs.size])
        ys, xs = px.y[self.order], px.x[self.order]
        self.y0 = np.maximum(np.minimum.reduceat(ys, self.starts) - ry, 0)
        self.y1 = np.minimum(np.maximum.reduceat(ys, self.starts) + ry + 1, H)
        self.x0 = np.maximum(np.minimum.reduceat(xs, self.starts) - rx, 0)
        self.x1 = np.minimum(np.maximum.reduceat(xs, self.starts) + rx + 1, W)

    def box_area(self) -> np.ndarray:
        return (self.y1 - self.y0).astype(np.int64) * (self.x1 - self.x0)

    def members(self, chosen: np.ndarray) -> np.ndarray:
        """Indices of the query pixels whose class is chosen (bool per class), class by class."""
        return self.order[np.repeat(chosen, self.counts)]

    def members_of(self, j: int) -> np.ndarray:
        """Indices of the query pixels of the j-th class."""
        return self.order[self.starts[j]:self.starts[j] + self.counts[j]]


def _exists_by_gather(out, sel, px: Pixels, rects, kern, mask_fn, views: WindowViews) -> None:
    """exists_exact for the pixels `sel`: their windows copied out of the padded maps, in chunks."""
    if sel.size == 0:
        return
    ry, rx = window_reach(rects)
    full = bool(kern.all())
    gy, gx, gc = px.y[sel], px.x[sel], px.c[sel]
    step = max(1, GATHER_CHUNK // kern.size)
    for s0 in range(0, sel.size, step):
        sy, sx = gy[s0:s0 + step], gx[s0:s0 + step]

        def take(arr, value=0, sy=sy, sx=sx):
            return views.windows(arr, value, ry, rx)[sy, sx]

        m = mask_fn(gc[s0:s0 + step, None, None], take)
        if not full:        # the box of the rectangles holds pixels outside their union
            m &= kern
        out[sel[s0:s0 + step]] = m.any(axis=(1, 2))


def _exists_by_dilation(out, by_class: _ByClass, j: int, px: Pixels, rects, mask_fn) -> None:
    """exists_exact for the pixels of the j-th class: its mask dilated on their padded box."""
    sel = by_class.members_of(j)
    oy, ox = int(by_class.y0[j]), int(by_class.x0[j])
    box = (slice(oy, int(by_class.y1[j])), slice(ox, int(by_class.x1[j])))

    def take(arr, value=0):
        return arr[box]

    m = mask_fn(int(by_class.cls_sorted[by_class.starts[j]]), take).view(np.uint8)
    out[sel] = dilate(m, rects)[px.y[sel] - oy, px.x[sel] - ox] != 0


# ---------------------------------------------------------------------------------------------
# class presence: two filters per group, exact look-ups for the undecided pixels

class ClassPresence:
    """Answers "is there a pixel of class c(p) in window(p)" for lists of pixels p, on label maps
    given as (labels, holds): map i holds class labels[q] at the pixels q where holds[q].

    Per map and class group (1 group, or 2 by parity of the class index), a max filter of class + 1
    (0 where the map holds nothing of the group) and a min filter of the class (the dtype's max
    there) decide most pixels (module docstring); the rest is looked up by `exists_exact`. Where a
    map holds, its labels must lie below the dtype's max."""

    def __init__(self, maps, rects, groups: int = 2, views: WindowViews | None = None):
        if groups not in (1, 2):
            raise ValueError(f"groups must be 1 or 2, got {groups}")
        self.rects, self.groups = rects, groups
        self.views = views if views is not None else WindowViews(maps[0][0].shape, max(window_reach(rects)))
        self.hi, self.lo, self.code = [], [], []
        for labels, holds in maps:
            one = labels.dtype.type(1)
            his, los, codes = [], [], []
            for group_holds in _split_by_parity(labels, holds, groups):
                # the class where the map holds the group, the dtype's max elsewhere
                code = labels | (group_holds.astype(labels.dtype, copy=False) - one)
                # class + 1 where it holds, 0 elsewhere: adding 1 wraps the dtype's max to 0
                his.append(max_filter(code + one, rects).ravel())
                los.append(min_filter(code, rects).ravel())
                codes.append(code)
            # the map as one code array (the groups are disjoint): an exact look-up gathers and
            # compares one array instead of building a mask from two
            self.code.append(codes[0] if len(codes) == 1 else np.minimum(codes[0], codes[1]))
            self.hi.append(his)
            self.lo.append(los)

    def query(self, i: int, px: Pixels, mask_fn=None) -> np.ndarray:
        """bool per pixel of `px`: map i holds the pixel's class in its window. Undecided pixels
        are looked up exactly on map i's code array, or on the masks of mask_fn if given."""
        if mask_fn is None:
            mask_fn = _holds_class(self.code[i])
        c = px.c.astype(np.int32)
        f = px.f
        if self.groups == 2:
            odd = (c & 1).astype(bool)
            hi = np.where(odd, self.hi[i][1][f], self.hi[i][0][f]).astype(np.int32)
            lo = np.where(odd, self.lo[i][1][f], self.lo[i][0][f]).astype(np.int32)
        else:
            hi = self.hi[i][0][f].astype(np.int32)
            lo = self.lo[i][0][f].astype(np.int32)
        hi -= 1                                 # from class + 1 back to the class (-1: none held)
        out = (hi == c) | (lo == c)
        undecided = np.flatnonzero((lo < c) & (c < hi))
        if undecided.size:
            out[undecided] = exists_exact(px[undecided], self.rects, mask_fn, self.views)
        return out


def _split_by_parity(labels: np.ndarray, holds: np.ndarray, groups: int) -> tuple[np.ndarray, ...]:
    """uint8 0/1 masks of the held pixels of each group: all of them (1 group), or those of even
    and those of odd class index (2 groups)."""
    held = holds.view(np.uint8)
    if groups == 1:
        return (held,)
    odd = (labels & 1).astype(np.uint8, copy=False)
    odd &= held
    return held ^ odd, odd


def _holds_class(code: np.ndarray):
    """mask_fn for exists_exact on a code array (the class where a map holds, the dtype's max
    elsewhere and outside the image)."""
    top = int(np.iinfo(code.dtype).max)

    def mask_fn(c, take):
        return take(code, top) == c

    return mask_fn
