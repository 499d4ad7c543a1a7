"""COCO instance annotations -> instance-id maps, so COCO-Stuff images get real instances.

    zeg-eval coco-instances annotations/instances_val2017.json DATA/instances

writes `<stem>.png` (uint16, 0 = no instance, 1..n) for every image of the JSON, in the folder
layout of `harness.data.dataset` (`instances_dir`). Masks are decoded with pycocotools (polygons and
RLE). Crowd annotations (`iscrowd: 1`) make no object: by default their pixels stay 0; with
`--crowd-id N` they are written as id N (where no other instance lies), and dataset.yaml's
`crowd_id: N` tells zeg-eval that id N is a crowd region, not an object. Stuff segments are left out
when the categories say `isthing: 0` (panoptic-style files). Where instance masks overlap, the smaller one is
drawn on top (a person in front of a bus stays visible); ids follow the annotation order.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness import extras
from harness.data.imageio import write_label_png
from harness.errors import UserError
from harness.files import atomic_write, check_component, inside


def instance_maps(annotations_path: str | Path, categories_path: str | Path | None = None,
                  crowd_id: int | None = None):
    """Yield (stem, HxW uint16 instance map) for every image of a COCO annotation file.

    `crowd_id` (optional): the id crowd regions are written with (else they are left at 0).

    `categories_path` (optional): a JSON list of categories with `isthing` (e.g. COCO panoptic's
    panoptic_coco_categories.json) when the annotation file's own categories lack it."""
    extras.require("coco", "coco-instances")  # not in the plain install
    from pycocotools import mask as mask_utils

    path = Path(annotations_path)
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        data = json.loads(path.read_text())
        images = {int(im["id"]): _image_info(im) for im in data["images"]}
        annotations = list(data["annotations"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"not a COCO annotation file ({_why(exc)})", path) from None
    categories = data.get("categories", [])
    if categories_path is not None:
        try:
            categories = json.loads(Path(categories_path).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read categories ({type(exc).__name__}: {exc})", categories_path) from None
    try:
        things = {int(c["id"]) for c in categories if c.get("isthing", 1)}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"categories must be a list of {{id, isthing}} ({_why(exc)})", categories_path or path) \
            from None
    by_image: dict[int, list] = {i: [] for i in images}
    crowds: dict[int, list] = {i: [] for i in images}
    for ann in annotations:
        try:
            if things and int(ann["category_id"]) not in things:
                continue
            crowd = bool(int(ann.get("iscrowd", 0)))
            if crowd and crowd_id is None:
                continue
            image_id = int(ann["image_id"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"annotation {_shown_id(ann)}: needs image_id and category_id ({_why(exc)})", path) \
                from None
        if image_id not in images:
            raise UserError(f"annotation {_shown_id(ann)} of unknown image id {image_id}", path)
        (crowds if crowd else by_image)[image_id].append(ann)
    for image_id, anns in by_image.items():
        stem, h, w = images[image_id]
        ids = np.zeros((h, w), dtype=np.uint16)
        masks = []
        for k, ann in enumerate(anns, start=1):
            m = _decode(ann, h, w, mask_utils, path)
            masks.append((int(m.sum()), k, m))
        if len(masks) >= (crowd_id or 65535):
            raise UserError(f"image {image_id} has {len(masks)} instances; ids 1..{(crowd_id or 65535) - 1} "
                            "are free for them", path)
        for ann in crowds[image_id]:  # under every instance: a crowd region is what no instance covers
            ids[_decode(ann, h, w, mask_utils, path)] = crowd_id
        for _, k, m in sorted(masks, key=lambda t: (-t[0], t[1])):  # larger first, smaller on top
            ids[m] = k
        yield stem, ids


def _why(exc: BaseException) -> str:
    return f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"


def _shown_id(ann) -> str:
    return str(ann.get("id", "?"))[:40] if isinstance(ann, dict) else "?"


def _image_info(image: dict) -> tuple[str, int, int]:
    """(stem, height, width) of a COCO image entry; the stem names a file inside the output folder."""
    stem = check_component(Path(str(image["file_name"])).stem, "image file_name")
    h, w = int(image["height"]), int(image["width"])
    if not (0 < h <= 1 << 16 and 0 < w <= 1 << 16):
        raise ValueError(f"image {image['id']} is {w}x{h}")
    return stem, h, w


def _decode(ann: dict, h: int, w: int, mask_utils, path: Path) -> np.ndarray:
    """The annotation's mask (HxW bool): polygons, uncompressed or compressed RLE (pycocotools)."""
    try:
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
        mask = mask_utils.decode(rle).astype(bool)
    except Exception as exc:  # noqa: BLE001 - pycocotools raises many kinds on a malformed segmentation
        raise UserError(f"annotation {_shown_id(ann)}: cannot decode its segmentation ({_why(exc)})", path) from None
    if mask.shape != (h, w):
        raise UserError(f"annotation {_shown_id(ann)}: its mask is {mask.shape[1]}x{mask.shape[0]}, its image {w}x{h}",
                        path)
    return mask


def write_instance_maps(annotations_path, out_dir, categories_path=None, crowd_id: int | None = None) -> int:
    """Write every image's instance map as `<stem>.png`; returns the number of images."""
    maps = instance_maps(annotations_path, categories_path, crowd_id)
    first = next(maps, None)  # the file is checked before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for stem, ids in _chain(first, maps):
        atomic_write(inside(out, f"{stem}.png"), lambda tmp, ids=ids: write_label_png(tmp, ids, np.uint16))
        n += 1
    return n


def _chain(first, rest):
    if first is not None:
        yield first
    yield from rest
