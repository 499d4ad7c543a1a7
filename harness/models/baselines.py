"""Baselines: predictors made from the ground truth, no weights, to calibrate what a number means.

Each is a picklable predictor `predict(stem, gt, instances) -> label map` run in the metric worker
processes and scored through the same records path as any model.

Objects (for drop_small and boundary_shift) are the connected regions (8-connected by default) of
one class and one instance id: where the dataset has instance ids two touching people are two
objects; elsewhere (stuff, datasets without instances) a connected component of one class is one
object. Ignore pixels belong to no object and stay ignore in the prediction.

* `oracle`: the ground truth itself. Every ratio metric of every family must read 100.
* `drop_small` (max_area, default 1024 = 32²): objects with fewer than max_area pixels are removed:
  each of their pixels takes the class of the nearest pixel (Euclidean) that is neither removed
  nor ignore, as a model that misses the object and paints its surroundings over it.
* `boundary_shift` (pixels = k): k > 0 dilates every object by a disc of radius k, objects painted
  from the largest to the smallest (so a small object grows into its larger neighbour, never the
  other way); k < 0 erodes every object by |k|: its pixels within |k| px of its outline take the
  class of the nearest non-ignore pixel outside it. Image borders do not erode.
* `seen_bias` (seed, rate, target): a share `rate` of the objects of unseen classes is predicted
  as a seen class: `target` if given, else a seen class drawn once per unseen class from `seed`.
  Which objects are relabelled is drawn per image from (seed, image name), so the result does not
  depend on order, workers or shards.

Entries of a protocol's `models:` list (`connectivity`: 4 or 8, for every baseline that uses objects):

      - {name: oracle, baseline: oracle}
      - {name: drop_small, baseline: drop_small, max_area: 1024}
      - {name: erode_2, baseline: boundary_shift, pixels: -2}   # < 0 erodes every object, > 0 dilates
      - {name: seen_bias, baseline: seen_bias, seed: 0, rate: 1.0, target: null}
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import cc3d
import cv2
import numpy as np

from harness.data.dataset import DatasetSpec
from harness.errors import SkipModel, UserError
from harness.models.base import ModelKind, Predictor, check_allowed, check_name, check_type

BASELINES = ("oracle", "drop_small", "boundary_shift", "seen_bias")
# The parameters each baseline uses (the others are ignored and left out of the manifest).
BASELINE_PARAMS = {"oracle": (), "drop_small": ("max_area", "connectivity"),
                   "boundary_shift": ("pixels", "connectivity"), "seen_bias": ("seed", "rate", "target", "connectivity")}


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    baseline: str
    max_area: int = 1024       # drop_small: objects with area < max_area pixels are removed
    pixels: int = 2            # boundary_shift: > 0 dilate, < 0 erode, by |pixels| (Euclidean disc)
    seed: int = 0              # seen_bias: class mapping and object choice
    rate: float = 1.0          # seen_bias: share of unseen objects relabelled
    target: str | None = None  # seen_bias: one seen class for every unseen one
    connectivity: int = 8      # objects = instances where the dataset has them, else connected components

    kind = "baseline"


class BaselineKind(ModelKind):
    name = "baseline"
    key = "baseline"

    def parse(self, entry: dict, where: str, protocol_path) -> BaselineSpec:
        path = protocol_path
        check_allowed(entry, {f.name for f in dataclasses.fields(BaselineSpec)}, "baseline", where, path)
        name = entry.get("name", entry["baseline"])
        check_name(name, where, path)
        where = f"{where} ({name})"
        if entry["baseline"] not in BASELINES:
            raise UserError(f"{where}: unknown baseline '{entry['baseline']}' (known: {', '.join(BASELINES)})", path)
        for key in ("max_area", "pixels", "seed", "connectivity"):
            if key in entry:
                check_type(entry, key, int, where, path, "an integer")
        if "rate" in entry:
            check_type(entry, "rate", (int, float), where, path, "a number")
            if not 0 <= entry["rate"] <= 1:
                raise UserError(f"{where}: 'rate' must be between 0 and 1", path)
        if entry.get("target") is not None:
            check_type(entry, "target", str, where, path, "a class name")
        if entry.get("connectivity", 8) not in (4, 8):
            raise UserError(f"{where}: 'connectivity' must be 4 or 8", path)
        if entry["baseline"] == "boundary_shift" and entry.get("pixels", 2) == 0:
            raise UserError(f"{where}: 'pixels' must not be 0 (> 0 dilates, < 0 erodes)", path)
        if entry.get("max_area", 1024) < 1:
            raise UserError(f"{where}: 'max_area' must be at least 1", path)
        return BaselineSpec(**dict(entry) | {"name": name})

    def describe(self, spec: BaselineSpec) -> dict:
        out = super().describe(spec)
        for key in {"max_area", "pixels", "seed", "rate", "target", "connectivity"} - set(BASELINE_PARAMS[spec.baseline]):
            out.pop(key, None)
        return out

    def identity(self, spec: BaselineSpec) -> dict:
        return {k: v for k, v in self.describe(spec).items() if k != "name"}

    def open(self, spec: BaselineSpec, dataset, runtime) -> Predictor:
        return BaselinePredictor(spec, dataset)


def object_regions(gt: np.ndarray, ignore_index: int, instances: np.ndarray | None, connectivity: int = 8):
    """(regions HxW uint32 with 0 on ignore pixels and 1..n, n): regions of one class and instance id."""
    valid = gt != ignore_index
    key = np.where(valid, gt.astype(np.int64) + 1, 0)
    if instances is not None and instances.shape == gt.shape:
        top = int(key.max()) + 1
        key = np.where(valid, instances.astype(np.int64) * top + key, 0)
    # cc3d labels connected regions of equal value (0 = background) in one pass.
    regions, n = cc3d.connected_components(key.astype(np.uint64 if key.max() >= 2**32 else np.uint32),
                                           connectivity=connectivity, return_N=True)
    return regions.astype(np.uint32, copy=False), int(n)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _fill_from_nearest(pred: np.ndarray, gt: np.ndarray, holes: np.ndarray, sources: np.ndarray) -> None:
    """pred[holes] = gt at the nearest `sources` pixel (in place); nothing when there is no source."""
    if not holes.any() or not sources.any():
        return
    from scipy import (
        ndimage,  # 0.2 s of import: only where a baseline runs, not to parse a spec
    )

    _, (iy, ix) = ndimage.distance_transform_edt(~sources, return_indices=True)
    pred[holes] = gt[iy[holes], ix[holes]]


def oracle(gt: np.ndarray) -> np.ndarray:
    return gt.copy()


def drop_small(gt, ignore_index, instances, max_area: int, connectivity: int = 8) -> np.ndarray:
    regions, n = object_regions(gt, ignore_index, instances, connectivity)
    areas = np.bincount(regions.ravel(), minlength=n + 1)
    small = areas < max_area
    small[0] = False
    holes = small[regions]
    pred = gt.copy()
    _fill_from_nearest(pred, gt, holes, ~holes & (gt != ignore_index))
    return pred


def boundary_shift(gt, ignore_index, instances, pixels: int, connectivity: int = 8) -> np.ndarray:
    regions, n = object_regions(gt, ignore_index, instances, connectivity)
    pred = gt.copy()
    if n == 0:
        return pred
    k = abs(int(pixels))
    kernel = _disc(k)
    h, w = gt.shape
    from scipy import ndimage

    boxes = ndimage.find_objects(regions, max_label=n)
    areas = np.bincount(regions.ravel(), minlength=n + 1)
    valid = gt != ignore_index
    # Largest first, so that smaller objects (painted later) win where dilations meet.
    for label in sorted(range(1, n + 1), key=lambda j: (-areas[j], j)):
        box = boxes[label - 1]
        if box is None:
            continue
        y0, y1 = max(box[0].start - k - 2, 0), min(box[0].stop + k + 2, h)
        x0, x1 = max(box[1].start - k - 2, 0), min(box[1].stop + k + 2, w)
        mask = regions[y0:y1, x0:x1] == label
        cls = gt[y0:y1, x0:x1][mask][0]
        if pixels > 0:
            grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
            pred[y0:y1, x0:x1][grown] = cls
        else:
            # Erosion keeps the image border (cv2's default border value for erode is the maximum).
            inner = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
            band = mask & ~inner
            sources = ~mask & valid[y0:y1, x0:x1]
            crop = pred[y0:y1, x0:x1]
            _fill_from_nearest(crop, gt[y0:y1, x0:x1], band, sources)
    return pred


def _image_rng(seed: int, stem: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(stem.encode())])


class BaselinePredictor(Predictor):
    """A baseline bound to a dataset; picklable, so it runs in the metric worker processes."""

    def __init__(self, spec: BaselineSpec, dataset: DatasetSpec):
        self.spec = spec
        self.ignore_index = dataset.ignore_index
        self.mapping = None
        if spec.baseline == "seen_bias":
            self.mapping = seen_bias_mapping(spec, dataset)

    def predict(self, stem: str, gt: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
        s = self.spec
        if s.baseline == "oracle":
            return oracle(gt)
        if s.baseline == "drop_small":
            return drop_small(gt, self.ignore_index, instances, s.max_area, s.connectivity)
        if s.baseline == "boundary_shift":
            return boundary_shift(gt, self.ignore_index, instances, s.pixels, s.connectivity)
        if s.baseline == "seen_bias":
            return seen_bias(gt, self.ignore_index, instances, self.mapping, s.rate, _image_rng(s.seed, stem),
                             s.connectivity)
        raise AssertionError(s.baseline)


def seen_bias_mapping(spec: BaselineSpec, dataset: DatasetSpec) -> np.ndarray:
    """A lookup table class -> predicted class: unseen classes to a seen one, others unchanged."""
    unseen = np.flatnonzero(dataset.unseen_mask)
    seen = np.flatnonzero(~dataset.unseen_mask)
    if unseen.size == 0:
        raise SkipModel("the dataset defines no unseen classes")
    if seen.size == 0:
        raise SkipModel("the dataset defines no seen classes")
    mapping = np.arange(max(dataset.num_classes, dataset.ignore_index + 1), dtype=np.int32)
    if spec.target is not None:
        if spec.target not in dataset.classes:
            raise UserError(f"model '{spec.name}': target '{spec.target}' is not a class of the dataset")
        target = dataset.classes.index(spec.target)
        if dataset.unseen_mask[target]:
            raise UserError(f"model '{spec.name}': target '{spec.target}' is an unseen class; give a seen one")
        mapping[unseen] = target
    else:
        mapping[unseen] = np.random.default_rng(spec.seed).choice(seen, size=unseen.size)
    return mapping


def seen_bias(gt, ignore_index, instances, mapping, rate, rng, connectivity=8) -> np.ndarray:
    valid = gt != ignore_index
    mapped = np.where(valid, mapping[np.where(valid, gt, 0)], gt)
    if rate >= 1:
        return mapped.astype(gt.dtype)
    regions, n = object_regions(gt, ignore_index, instances, connectivity)
    chosen = np.concatenate([[False], rng.random(n) < rate])
    return np.where(chosen[regions], mapped, gt).astype(gt.dtype)
