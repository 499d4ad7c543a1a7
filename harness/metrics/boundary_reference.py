"""The definition of every count of the boundary family: one class at a time, on the full image.

`harness.metrics.boundary.image_class_counts` computes the same counts for all classes at once
and is fast; this module is the readable statement of what it computes, and the tests require
both to agree on every column. It follows the definitions in docs/metrics_boundary.md directly:
masks of one class, scipy.ndimage morphology instead of OpenCV, no crops, no shortcuts. Slow (a
few dozen full-image operations per class); not used when scoring.

Conventions shared by every count (beyond-iou, Bernhard et al., WACV 2024):

* per class c: G = (gt == c) without the ignored pixels, P = (pred == c) everywhere, also where
  the gt is ignored (the prediction there shapes bands and components); a predicted ignore value
  belongs to no class, and a class equal to the ignore value gets zeros;
* pixels whose gt is ignored are never counted;
* the image border is no boundary: erosion treats the outside of the image as foreground,
  dilation as background;
* widths follow the image diagonal D = √(H² + W²): d = max(1, round(0.02 D)) for Boundary and
  trimap IoU, w = round(0.01 D) for the error breakdown (may be 0), θ = 0.0075 D for BF (the
  ratios are the config's).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from harness.metrics.boundary import (
    BF_SCALE,
    ERROR_PARTS,
    BoundaryConfig,
    count_columns,
)

SQUARE3 = np.ones((3, 3), dtype=bool)


def beyond_iou_disk(r: int) -> np.ndarray:
    """beyond-iou's "exact" kernel, as its definition: offsets whose Euclidean length rounds to at
    most r."""
    x = np.arange(-r, r + 1)
    return np.round(np.hypot(x[:, None], x[None, :])) <= r


def widths(shape, cfg: BoundaryConfig) -> tuple[int, int, float]:
    """(d, w, θ) of an image of `shape`: Boundary/trimap IoU width, error boundary width, BF
    tolerance."""
    H, W = shape
    diag = math.sqrt(H * H + W * W)
    d = max(int(round(cfg.boundary_iou_ratio * diag)), 1)
    bw = int(round(cfg.error_boundary_ratio * diag))
    theta = cfg.bf_tolerance_ratio * diag
    return d, bw, theta


def boundary_and_trimap_iou(G, P, valid, d: int) -> dict[str, int]:
    """Boundary IoU (Cheng et al., CVPR 2021) and trimap IoU, as beyond-iou computes them
    (evaluator.py, evaluate_sample_boundary_and_trimap_iou).

    Inner band G ∩ G_d = G − erode(G), outer band G_d − G = dilate(G) − G, both by the 3×3 square
    iterated d times (L∞ distance ≤ d; beyond-iou's "fast" implementation, the Boundary IoU API's):

        Boundary IoU = |(G ∩ G_d) ∩ (P ∩ P_d)| / |(G ∩ G_d) ∪ (P ∩ P_d)|
        trimap IoU   = |(G ∩ G_d) ∩ P| / |(G ∩ G_d) ∪ (G_d ∩ P)|

    counted on non-ignored pixels; the dataset sums numerators and denominators over images. The
    `padded` counts are Boundary IoU's with the border a boundary (boundary-iou-api's convention)."""
    G_inner = G & ~ndi.binary_erosion(G, SQUARE3, iterations=d, border_value=1)
    P_inner = P & ~ndi.binary_erosion(P, SQUARE3, iterations=d, border_value=1)
    G_outer = ndi.binary_dilation(G, SQUARE3, iterations=d) & ~G
    G_d = G_inner | G_outer
    # boundary_IoU_padded: the outside of the image is background, so the border is a boundary
    G_padded = G & ~ndi.binary_erosion(G, SQUARE3, iterations=d, border_value=0)
    P_padded = P & ~ndi.binary_erosion(P, SQUARE3, iterations=d, border_value=0)
    return {"bnd_biou_intersect": int((G_inner & P_inner & valid).sum()),
            "bnd_biou_union": int(((G_inner | P_inner) & valid).sum()),
            "bnd_biou_padded_intersect": int((G_padded & P_padded & valid).sum()),
            "bnd_biou_padded_union": int(((G_padded | P_padded) & valid).sum()),
            "bnd_trimap_intersect": int((G_inner & P & valid).sum()),
            "bnd_trimap_union": int(((G_inner | (G_d & P)) & valid).sum())}


def gt_bands(gt, valid, band_widths) -> dict[int, np.ndarray]:
    """The bands of the band curve (trimap of Kohli et al., IJCV 2009; one band for all classes,
    as DeepLab reports it): band_w = non-ignored pixels within L∞ distance w of a pixel with
    another gt value (the ignore value is another value), i.e. where the max and the min of the gt
    on the (2w+1)² window clipped to the image differ."""
    bands = {}
    for w in band_widths:
        size = 2 * w + 1
        bands[w] = valid & (ndi.maximum_filter(gt, size=size, mode="nearest")
                            != ndi.minimum_filter(gt, size=size, mode="nearest"))
    return bands


def band_curve(G, P, valid, bands: dict[int, np.ndarray]) -> dict[str, int]:
    """IoU inside each band: |band ∩ G ∩ P| / |band ∩ (G ∪ P)| (mmseg's IoU restricted to the
    band; bands hold only non-ignored pixels)."""
    out = {}
    for w, band in bands.items():
        out[f"bnd_band{w}_intersect"] = int((band & G & P).sum())
        out[f"bnd_band{w}_union"] = int((band & (G | (P & valid))).sum())
    return out


def error_breakdown(G, P, valid, bw: int) -> dict[str, int]:
    """beyond-iou's error breakdown (evaluator.py, get_boundary_errors and
    get_extent_segment_errors): every non-ignored pixel of G ∪ P is a TP or one error of
    FP/FN × boundary/extent/segment, so that IoU + E_boundary + E_extent + E_segment = 1 over the union.

    TP = G ∩ P, FP = P − G, FN = G − P, TN = neither (FP and TN include ignored pixels).
    1. Boundary errors (only if bw > 0), with the disk {round(|offset|) ≤ bw}: an FP pixel within
       the disk of a TP pixel and of a TN pixel is a seed; the seeds are dilated by the disk inside
       FP; an 8-connected component of that is a boundary error if some pixel of it is 8-adjacent
       to a TP pixel and some to a TN pixel. Same for FN.
    2. Every other FP pixel lies in an 8-connected component of P: an extent error if that
       component holds a TP pixel, else a segment error. Same for FN with the components of G.
    """
    tp, fp, fn, tn = G & P, P & ~G, G & ~P, ~G & ~P
    label = np.full(G.shape, "", dtype=object)
    label[~valid] = "ignore"
    label[tp] = "tp"
    label[tn & valid] = "tn"
    if bw > 0:
        disk = beyond_iou_disk(bw)
        near_tp = ndi.binary_dilation(tp, disk) & ~tp
        near_tn = ndi.binary_dilation(tn, disk) & ~tn
        touches_tp = ndi.binary_dilation(tp, SQUARE3) & ~tp
        touches_tn = ndi.binary_dilation(tn, SQUARE3) & ~tn
        for name, err in (("fp_boundary", fp), ("fn_boundary", fn)):
            seed = err & near_tp & near_tn
            grown = ndi.binary_dilation(seed, disk) & err
            components, n = ndi.label(grown, structure=SQUARE3)
            for s in range(1, n + 1):
                component = components == s
                if touches_tp[component].any() and touches_tn[component].any():
                    label[component & (label == "")] = name
    for name, region in (("fp", P), ("fn", G)):
        components, n = ndi.label(region, structure=SQUARE3)
        for s in range(1, n + 1):
            component = components == s
            todo = component & (label == "")
            if todo.any():
                kind = "extent" if (label[component] == "tp").any() else "segment"
                label[todo] = f"{name}_{kind}"
    assert not (label == "").any()
    out = {"bnd_err_tp": int((label == "tp").sum())}
    for part in ERROR_PARTS:
        out[f"bnd_err_{part}"] = int((label == part).sum())
    return out


def bf_f1(G, P, valid, theta: float) -> float:
    """Per-image BF score (boundary F1, Csurka et al., BMVC 2013) of a class present in both G
    and P (non-ignored pixels).

    Contours C(M) = M − erode(M, 3×3) (the border is no contour); predicted contour pixels on
    ignored pixels are not scored but can be matched. precision = share of scored predicted
    contour pixels within Euclidean distance θ of the gt contour, recall = share of gt contour
    pixels within θ of the predicted contour, F1 = 2PR / (P + R) (0 if P + R = 0); 1 if neither
    has a contour pixel, 0 if only one has."""
    cg = G & ~ndi.binary_erosion(G, SQUARE3, border_value=1)
    cp = P & ~ndi.binary_erosion(P, SQUARE3, border_value=1)
    cp_scored = cp & valid
    if cg.sum() == 0 or cp_scored.sum() == 0:
        return float(cg.sum() == cp_scored.sum())
    dist_to_g = ndi.distance_transform_edt(~cg)
    dist_to_p = ndi.distance_transform_edt(~cp)
    precision = (dist_to_g[cp_scored] <= theta).mean()
    recall = (dist_to_p[cg] <= theta).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def bf_counts(G, P, valid, theta: float) -> dict[str, int]:
    """BF's additive counts: bnd_bf_images = 1 if the class is present in gt or prediction
    (non-ignored pixels), bnd_bf_f1_nano = the F1 in units of 1/BF_SCALE (0 if the class is
    missing from either). The dataset's BF of a class is Σ f1_nano / (BF_SCALE · Σ images)."""
    present_g, present_p = bool(G.any()), bool((P & valid).any())
    f1 = bf_f1(G, P, valid, theta) if present_g and present_p else 0.0
    return {"bnd_bf_images": int(present_g or present_p), "bnd_bf_f1_nano": int(round(f1 * BF_SCALE))}


def reference_counts(gt, pred, classes, ignore_index: int, cfg: BoundaryConfig) -> dict[str, np.ndarray]:
    """The counts of `image_class_counts`, one class at a time: {column: int64 [len(classes)]}."""
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    classes = [int(c) for c in np.asarray(classes).reshape(-1)]
    d, bw, theta = widths(gt.shape, cfg)
    valid = gt != ignore_index
    bands = gt_bands(gt, valid, cfg.band_widths)
    out = {column: np.zeros(len(classes), dtype=np.int64) for column in count_columns(cfg)}
    for i, c in enumerate(classes):
        if c == ignore_index:       # a predicted ignore value belongs to no class (beyond-iou's one_hot)
            continue
        G = (gt == c) & valid
        P = pred == c
        row = {**boundary_and_trimap_iou(G, P, valid, d), **band_curve(G, P, valid, bands),
               **error_breakdown(G, P, valid, bw), **bf_counts(G, P, valid, theta)}
        for column, value in row.items():
            out[column][i] = value
    return out
