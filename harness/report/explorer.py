"""The object explorer's data: every ground-truth object of the baseline's data with each model's
result (hit, object IoU), its size and occlusion bucket and split, as one JSON block the page filters
and sorts; and, for the images of the most disputed objects, the pictures the page needs to show an
object: the photo (JPEG) and the label maps of the ground truth and each model (PNG whose pixels
carry class ids: R = id mod 256, G = id div 256), from which the page's script paints the class
colours and each model's TP / FP / FN overlay of the object's class.

Objects are those of the per-object records (`objects` table of the size family; occlusion levels
from the occlusion family's `occlusion_objects`), joined on (image, object) across the models on the
baseline's data; an object is kept where every such model has it with the same area (the same
object extraction).
"""
from __future__ import annotations

import base64
import json
import math

import cv2
import numpy as np
import pandas as pd

from harness.metrics.buckets import LEFT_CLOSED, RIGHT_CLOSED, in_bucket
from harness.report.gallery import Sources, disagreement_objects, joined_objects

MAX_SIDE = 512    # pictures are scaled down to this longest side


def _bucket_names(values: np.ndarray, buckets: dict, rule: str) -> np.ndarray:
    """Index into the bucket list of each value's first bucket (-1: none)."""
    out = np.full(len(values), -1, np.int64)
    for i, (lo, hi) in enumerate(buckets.values()):
        out[(out < 0) & in_bucket(values, lo, hi, rule)] = i
    return out


def _ids_png(labels: np.ndarray) -> str:
    """A label map as an RGB PNG whose pixels are class ids (R low byte, G high byte; B = 0)."""
    lab = np.asarray(labels, dtype=np.int64).clip(0, 65535)
    rgb = np.stack([lab & 255, lab >> 8, np.zeros_like(lab)], axis=-1).astype(np.uint8)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _jpeg(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 85])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _scale(shape) -> float:
    return min(1.0, MAX_SIDE / max(shape[:2]))


def _pictures(src: Sources, models, stem: str) -> dict | None:
    gt = src.label(stem)
    if gt is None:
        return None
    s = _scale(gt.shape)
    size = (max(1, round(gt.shape[1] * s)), max(1, round(gt.shape[0] * s)))

    def shrink(a, interp=cv2.INTER_NEAREST):
        return a if s == 1.0 else cv2.resize(a, size, interpolation=interp)

    out = {"scale": s, "w": size[0], "h": size[1],
           "gt": _ids_png(shrink(gt.astype(np.int32))), "pred": {}}
    image = src.image(stem)
    if image is not None and image.shape[:2] == gt.shape:
        out["image"] = _jpeg(shrink(image, cv2.INTER_AREA))
    for m in models:
        pred = src.prediction(m, stem)
        if pred is not None and pred.shape == gt.shape:
            out["pred"][m.label] = _ids_png(shrink(pred.astype(np.int32)))
    return out


def build(entries, base, n_pictures: int = 40, min_area: int = 16) -> dict | None:
    """{"json": the page's data (safe inside <script>), "n_objects", "n_pictures", "notes"} or None
    when no model on the baseline's data has object records."""
    same = [e for e in entries if e.model.run.dataset_key == base.model.run.dataset_key]
    joined = joined_objects(same)
    if joined is None or not len(joined):
        return None
    run = base.model.run
    labels = [e.label for e in same]
    classes = list(run.dataset.classes)
    fams = run.protocol.families
    area = joined["area"].to_numpy(dtype=np.float64)
    size_buckets = dict(getattr(fams.get("size"), "buckets", {}) or {})
    occ_buckets = dict(getattr(fams.get("occlusion"), "buckets", {}) or {})
    occ = _occlusion(base, joined)
    unseen = set(run.dataset.unseen)
    images = sorted(joined["image"].astype(str).unique())
    index = {s: i for i, s in enumerate(images)}
    cols = {
        "image": [index[s] for s in joined["image"].astype(str)],
        "object": joined["object"].astype(int).tolist(),
        "class": joined["class"].astype(int).tolist(),
        "area": joined["area"].astype(int).tolist(),
        "size": _bucket_names(area, size_buckets, LEFT_CLOSED).tolist() if size_buckets else [],
        "occ": (_bucket_names(occ, occ_buckets, RIGHT_CLOSED).tolist() if occ_buckets and occ is not None else []),
        "box": joined[["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]].astype(int).to_numpy().ravel().tolist(),
        "hit": {lab: joined[f"hit::{lab}"].astype(int).tolist() for lab in labels},
        "iou": {lab: [None if not math.isfinite(v) else round(100 * v, 2)
                      for v in joined[f"iou::{lab}"].astype(float)] for lab in labels},
    }
    # pictures: the images of the most disputed objects (the gallery's ranking), then of missed ones
    ranked = disagreement_objects(same, n_pictures, per_image=1, min_area=min_area)
    missed = joined[(area >= min_area) & ~joined[[f"hit::{lab}" for lab in labels]].all(axis=1).to_numpy()]
    chosen = list(dict.fromkeys([*ranked.get("image", pd.Series(dtype=str)).astype(str),
                                 *missed.sort_values("area", kind="stable")["image"].astype(str)]))[:n_pictures]
    src = Sources(run)
    pictures, notes = {}, []
    for stem in chosen:
        pics = _pictures(src, [e.model for e in same], stem)
        if pics is not None:
            pictures[index[stem]] = pics
    if src.problem:
        notes.append(src.problem + "; the explorer lists objects without pictures")
    data = {"models": labels, "classes": classes, "unseen": [c in unseen for c in classes],
            "images": images, "size_buckets": list(size_buckets), "occ_buckets": list(occ_buckets),
            "palette": src.pal.astype(int).tolist(), "ignore": run.dataset.ignore_index, "cols": cols,
            "pictures": pictures}
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # inside <script>: no "</script>", no HTML comment or entity can start (names are data)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return {"json": text, "n_objects": len(joined), "n_pictures": len(pictures), "notes": notes,
            "models": labels}


def _occlusion(base, joined: pd.DataFrame) -> np.ndarray | None:
    """Each joined object's occlusion level (the baseline's records; it depends on the data only)."""
    if "occlusion" in joined:
        return joined["occlusion"].to_numpy(dtype=np.float64)
    occ = base.model.tables.get("occlusion_objects")
    if occ is None or not len(occ) or "occlusion" not in occ:
        return None
    level = occ.set_index(["image", "object"])["occlusion"]
    keys = pd.MultiIndex.from_arrays([joined["image"], joined["object"]])
    return level.reindex(keys).to_numpy(dtype=np.float64)
