"""COCO instance annotations -> instance-id maps, so COCO-Stuff images get real instances.

    zeg-eval coco-instances annotations/instances_val2017.json DATA/instances

writes `<stem>.png` (uint16, 0 = no instance, 1..n) for every image of the JSON, in the folder
layout of `harness.data.dataset` (`instances_dir`). Masks are decoded with pycocotools (polygons and
RLE). Crowd annotations are left out (their pixels stay 0), and so are stuff segments when the
categories say `isthing: 0` (panoptic-style files). Where instance masks overlap, the smaller one is
drawn on top (a person in front of a bus stays visible); ids follow the annotation order.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from harness.errors import UserError


def instance_maps(annotations_path: str | Path, categories_path: str | Path | None = None):
    """Yield (stem, HxW uint16 instance map) for every image of a COCO annotation file.

    `categories_path` (optional): a JSON list of categories with `isthing` (e.g. COCO panoptic's
    panoptic_coco_categories.json) when the annotation file's own categories lack it."""
    from pycocotools import mask as mask_utils

    path = Path(annotations_path)
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        data = json.loads(path.read_text())
        images = {int(im["id"]): im for im in data["images"]}
        annotations = data["annotations"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"not a COCO annotation file ({type(exc).__name__}: {exc})", path) from None
    categories = data.get("categories", [])
    if categories_path is not None:
        try:
            categories = json.loads(Path(categories_path).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read categories ({type(exc).__name__}: {exc})", categories_path) from None
    things = {int(c["id"]) for c in categories if c.get("isthing", 1)}
    by_image: dict[int, list] = {i: [] for i in images}
    for ann in annotations:
        if int(ann.get("iscrowd", 0)) or (things and int(ann["category_id"]) not in things):
            continue
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    for image_id, anns in by_image.items():
        if image_id not in images:
            raise UserError(f"annotation of unknown image id {image_id}", path)
        info = images[image_id]
        h, w = int(info["height"]), int(info["width"])
        ids = np.zeros((h, w), dtype=np.uint16)
        masks = []
        for k, ann in enumerate(anns, start=1):
            seg = ann["segmentation"]
            if isinstance(seg, str):  # some exports store the RLE dict as its repr
                import ast

                seg = ast.literal_eval(seg)
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg.get("counts"), list):
                rle = mask_utils.frPyObjects(seg, h, w)
            else:
                rle = seg
            m = mask_utils.decode(rle).astype(bool)
            masks.append((int(m.sum()), k, m))
        if len(masks) >= 65535:
            raise UserError(f"image {image_id} has {len(masks)} instances; at most 65534 fit", path)
        for _, k, m in sorted(masks, key=lambda t: (-t[0], t[1])):  # larger first, smaller on top
            ids[m] = k
        yield Path(info["file_name"]).stem, ids


def write_instance_maps(annotations_path, out_dir, categories_path=None) -> int:
    """Write every image's instance map as `<stem>.png`; returns the number of images."""
    maps = instance_maps(annotations_path, categories_path)
    first = next(maps, None)  # the file is checked before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for stem, ids in _chain(first, maps):
        ok, buffer = cv2.imencode(".png", ids)
        tmp = out / f".{stem}.png.tmp"
        tmp.write_bytes(buffer.tobytes())
        os.replace(tmp, out / f"{stem}.png")
        n += 1
    return n


def _chain(first, rest):
    if first is not None:
        yield first
    yield from rest
