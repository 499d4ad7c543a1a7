"""The per-image context every family reads: the maps, plus intermediates computed once.

Several families need the same intermediates: the standard per-class counts (the size family takes
each class's false positives from them), the objects of the ground truth and their rows (size and
occlusion, at each family's own connectivity and hit threshold). The context computes each one the
first time a family asks for it and hands the same result to the next family.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.metrics import standard
from harness.metrics.objects import ObjectMap, extract_objects


@dataclass
class ImageContext:
    gt: np.ndarray                        # HxW class ids, `ignore_index` where unlabelled
    pred: np.ndarray                      # HxW predicted class ids
    ignore_index: int = 255
    thing_mask: np.ndarray | None = None  # bool [C]: only these classes make objects (None: all)
    instances: np.ndarray | None = None   # HxW instance ids (0 = none)
    amodal: dict | None = None            # instance id (or object id) -> HxW bool amodal mask
    _cache: dict = field(default_factory=dict, repr=False)

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def counts(self) -> dict[str, np.ndarray]:
        """Standard per-class counts of the classes present (`standard.image_class_counts`)."""
        return self._cached("counts", lambda: standard.image_class_counts(self.gt, self.pred, self.ignore_index))

    def class_fp(self) -> tuple[np.ndarray, np.ndarray]:
        """(classes, false-positive pixels of each): prediction area minus intersection."""
        counts = self.counts()
        return counts["class"], counts["pred_area"] - counts["intersect"]

    def objects(self, connectivity: int) -> ObjectMap:
        """The ground truth's objects: instances where given, else `connectivity`-connected components."""
        return self._cached(("objects", connectivity), lambda: extract_objects(
            self.gt, self.ignore_index, instances=self.instances, thing_mask=self.thing_mask,
            connectivity=connectivity))

    def object_rows(self, connectivity: int, hit_threshold: float) -> dict[str, np.ndarray]:
        """`size.object_rows` of `objects(connectivity)`; callers must not modify the arrays."""
        from harness.metrics import size

        def make():
            return size.object_rows(self.gt, self.pred, self.objects(connectivity), self.ignore_index,
                                    hit_threshold=hit_threshold, class_fp=self.class_fp())

        return self._cached(("object_rows", connectivity, hit_threshold), make)
