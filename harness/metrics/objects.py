"""Objects of a ground-truth map, shared by the size and occlusion families.

An object is either

* an instance of an instance-id map (`source="instances"`): each id > 0 is one object, made of its
  non-ignored pixels, whose class is the majority ground-truth class over those pixels (ties go to
  the smallest class id); or
* a connected component of one class of the semantic map (`source="components"`), 8-connected by
  default (pixels touching only at a corner belong to the same object), ignore pixels excluded.

When `thing_mask` is given only objects of those classes are kept (stuff makes no objects). The
conventions and the papers they follow are in docs/metrics_objects.md.

Cost: one pass of cc3d (or one sort of the instance pixels) per map, independent of the number of
classes of the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cc3d
import numpy as np

from harness.metrics.histogram import label_counts


@dataclass
class ObjectMap:
    ids: np.ndarray      # int32 HxW; 0 = no object, k = object k (1..n)
    classes: np.ndarray  # int64 (n,); classes[k-1] = class of object k
    source: str          # "instances" (from an instance-id map) or "components"
    # For source "instances": instance_ids[k-1] = the id object k has in the instance map (objects
    # are numbered in ascending instance id; instances with no valid pixel are dropped). None else.
    instance_ids: np.ndarray | None = None
    # For source "components": the connectivity they were made with (each object is one piece).
    connectivity: int | None = None
    _areas: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _boxes: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.classes.size)

    def areas(self) -> np.ndarray:
        """Pixel count (n,) int64 of objects 1..n (computed once, then cached)."""
        if self._areas is None:
            self._areas = label_counts(self.ids, self.n + 1)[1:]
        return self._areas

    def boxes(self) -> np.ndarray:
        """Bounding boxes (n, 4) int64 as x0, y0, x1, y1, inclusive-exclusive (cached)."""
        if self._boxes is None:
            boxes = np.zeros((self.n, 4), dtype=np.int64)
            if self.n:
                # cc3d gives (row min, row max, col min, col max), inclusive, for labels 0..max id
                statistics = cc3d.statistics(self.ids, no_slice_conversion=True)
                stats = statistics["bounding_boxes"][1 : self.n + 1]
                if self._areas is None:  # the pixel counts come with the boxes
                    counts = statistics["voxel_counts"][1 : self.n + 1].astype(np.int64)
                    self._areas = np.pad(counts, (0, self.n - counts.size))
                found = np.flatnonzero(self.areas()[: len(stats)] > 0)
                r0, r1, c0, c1 = (stats[found, i].astype(np.int64) for i in range(4))
                boxes[found] = np.stack([c0, r0, c1 + 1, r1 + 1], axis=1)
            self._boxes = boxes
        return self._boxes


def _valid_mask(gt: np.ndarray, ignore_index: int, thing_mask) -> np.ndarray:
    valid = gt != ignore_index
    if thing_mask is not None:
        tm = np.asarray(thing_mask, dtype=bool)
        g = np.where(valid, gt, 0).astype(np.int64, copy=False)
        if g.size and (g.min() < 0):
            raise ValueError("ground-truth labels must be >= 0 (apart from the ignore value)")
        top = int(g.max()) + 1 if g.size else 1
        lut = np.zeros(max(top, tm.size), dtype=bool)
        lut[: tm.size] = tm
        valid &= lut[g]
    return valid


def components(labels: np.ndarray, valid: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of each label value over `valid` pixels.

    Returns (cc, comp_labels): cc uint HxW with 0 outside `valid` and 1..m for the components
    (cc3d's raster order), comp_labels int64 (m,) the label value of each component.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8 for 2-D maps, not {connectivity}")
    # cc3d treats 0 as background: shift labels by one and zero the pixels that are not valid.
    if labels.size == 0:
        return np.zeros(labels.shape, np.uint16), np.zeros(0, np.int64)
    top = int(labels.max()) + 1  # dtype sizing only (may include the ignore value)
    if int(labels.min()) < 0 and bool((labels[valid] < 0).any()):
        raise ValueError("labels must be >= 0 to form components")
    shifted = labels.astype(np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64)
    shifted += 1
    shifted[~valid] = 0
    cc, m = cc3d.connected_components(shifted, connectivity=connectivity, return_N=True)
    comp_labels = np.zeros(m + 1, dtype=np.int64)
    flat_cc = cc.ravel()
    comp_labels[flat_cc] = shifted.ravel()  # every pixel of a component has the same label
    return cc, comp_labels[1:] - 1


def extract_objects(gt: np.ndarray, ignore_index: int, instances: np.ndarray | None = None,
                    thing_mask=None, connectivity: int = 8) -> ObjectMap:
    """The objects of one ground-truth map.

    gt: HxW int labels (ignore pixels = ignore_index). instances: optional HxW instance ids
    (0 = none); when given, each instance id > 0 is one object (its class = the majority gt class
    over its non-ignored pixels; ignore pixels are not part of it), and pixels outside every
    instance belong to no object. Else objects are the `connectivity`-connected components of each
    class (ignore excluded). thing_mask: optional bool [num_classes]; when given only those classes
    make objects (with instances: instances whose class is not a thing are dropped).
    """
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise ValueError(f"gt must be a 2-D label map, got shape {gt.shape}")
    if instances is None:
        valid = _valid_mask(gt, ignore_index, thing_mask)
        cc, comp_labels = components(gt, valid, connectivity)
        return ObjectMap(ids=cc.astype(np.int32, copy=False), classes=comp_labels, source="components",
                         connectivity=connectivity)

    instances = np.asarray(instances)
    if instances.shape != gt.shape:
        raise ValueError(f"instance map {instances.shape} does not match the label map {gt.shape}")
    member = (instances > 0) & (gt != ignore_index)
    inst = instances[member].astype(np.int64, copy=False)
    cls = gt[member].astype(np.int64, copy=False)
    if inst.size == 0:
        return ObjectMap(ids=np.zeros(gt.shape, np.int32), classes=np.zeros(0, np.int64),
                         source="instances", instance_ids=np.zeros(0, np.int64))
    if cls.min() < 0:
        raise ValueError("ground-truth labels must be >= 0 (apart from the ignore value)")
    # Majority class per instance: count (instance, class) pairs, keep the largest count per
    # instance (ties: smallest class id, since unique sorts by class within an instance).
    span = int(cls.max()) + 1
    pairs, counts = np.unique(inst * span + cls, return_counts=True)
    p_inst, p_cls = pairs // span, pairs % span
    order = np.lexsort((p_cls, -counts, p_inst))  # by instance, then count desc, then class asc
    first = np.ones(order.size, dtype=bool)
    first[1:] = p_inst[order][1:] != p_inst[order][:-1]
    inst_ids = p_inst[order][first]
    inst_cls = p_cls[order][first]
    if thing_mask is not None:
        tm = np.asarray(thing_mask, dtype=bool)
        keep = np.zeros(inst_cls.size, dtype=bool)
        inside = inst_cls < tm.size
        keep[inside] = tm[inst_cls[inside]]
        inst_ids, inst_cls = inst_ids[keep], inst_cls[keep]
    # Renumber the kept instance ids to 1..n (ascending instance id; any id range, e.g. panoptic).
    pos = np.searchsorted(inst_ids, inst)
    found = pos < inst_ids.size
    found[found] = inst_ids[pos[found]] == inst[found]
    ids = np.zeros(gt.shape, dtype=np.int32)
    ids[member] = np.where(found, pos + 1, 0)
    return ObjectMap(ids=ids, classes=inst_cls.astype(np.int64), source="instances",
                     instance_ids=inst_ids.astype(np.int64))
