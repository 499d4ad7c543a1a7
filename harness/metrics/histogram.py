"""Counting the values of a label map: the primitive under most per-image metrics."""
from __future__ import annotations

import cv2
import numpy as np

# cv2.calcHist counts in float32 bins, exact up to 2^24 pixels per bin.
_EXACT_PIXELS = 1 << 24


def label_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """int64 (n,): the number of pixels holding each value 0..n-1; other values are not counted.

    Equal to np.bincount(labels[(labels >= 0) & (labels < n)], minlength=n). Maps of uint8, or
    of uint16 and int32 whose values fit 16 bits, are counted by cv2.calcHist, about twice as fast
    on a 512x512 map as np.bincount, which first copies the map to int64.
    """
    labels = np.asarray(labels)
    if labels.size == 0 or n <= 0:
        return np.zeros(max(n, 0), dtype=np.int64)
    if labels.size < _EXACT_PIXELS and n <= (1 << 16):
        table = labels.reshape(labels.shape[0], -1) if labels.ndim > 1 else labels[None]
        if table.dtype == np.int32:
            lo, hi, _, _ = cv2.minMaxLoc(table)
            if lo >= 0 and hi < (1 << 16):  # no value may wrap into a bin when cast to 16 bits
                table = table.astype(np.uint16)
        if table.dtype in (np.uint8, np.uint16):
            hist = cv2.calcHist([np.ascontiguousarray(table)], [0], None, [n], [0, n])
            return hist.ravel().astype(np.int64)
    flat = labels.ravel()
    if flat.dtype.kind == "i" and flat.min() < 0:
        flat = flat[flat >= 0]
    return np.bincount(flat, minlength=n)[:n].astype(np.int64)


def byte_pair_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int64 [256, 256]: counts[i, j] = the number of pixels with a == i and b == j, for two maps
    of one shape whose values are all in 0..255 (the caller checks). One cv2.calcHist over both,
    about twice as fast as np.bincount of a 16-bit code."""
    a8 = np.ascontiguousarray(a, dtype=np.uint8)
    b8 = np.ascontiguousarray(b, dtype=np.uint8)
    if a8.size and a8.size < _EXACT_PIXELS:
        table_a = a8.reshape(a8.shape[0], -1) if a8.ndim > 1 else a8[None]
        table_b = b8.reshape(table_a.shape)
        hist = cv2.calcHist([table_a, table_b], [0, 1], None, [256, 256], [0, 256, 0, 256])
        return hist.astype(np.int64)
    code = (a8.astype(np.uint16) << 8) | b8
    return np.bincount(code.ravel(), minlength=1 << 16).reshape(256, 256).astype(np.int64)
