"""Dataset folders: `dataset.yaml` + labels (+ images, instance ids, amodal masks).

Layout (paths in dataset.yaml are relative to its folder, or absolute):

    DATA/dataset.yaml          classes: [names] | preset: coco_stuff164k|voc12|ade20k|pascal_context59
                               ignore_index: 255, unseen: [names], things: [names],
                               reduce_zero_label: false, labels_dir: labels, images_dir: images,
                               instances_dir: instances, amodal_dir: amodal, label_suffix: .png,
                               split_file: (optional list of stems, e.g. VOC's val.txt),
                               instance_ids: plain | cityscapes, crowd_id: (optional id)
    DATA/labels/<stem>.png     class ids (uint8/uint16), the ignore value where unlabelled
    DATA/images/<stem>.jpg|png optional for scoring (the runner needs it)
    DATA/instances/<stem>.png  optional uint16 instance ids: which ids are objects is `instance_ids`'
                               convention (`object_ids`): plain (default) = every id > 0 is one
                               object, except `crowd_id` (COCO crowd regions, see zeg-eval
                               coco-instances --crowd-id); cityscapes = Cityscapes' *_instanceIds.png,
                               classId * 1000 + k for objects, ids below 1000 (stuff, and the crowd
                               or group regions of thing classes) are no object
    DATA/amodal/<stem>.npz     optional: `ids` (n,) instance ids and `masks` (n, H, W) amodal masks

The mmseg layouts of the real datasets are the same thing with other folder names and suffixes
(COCO-Stuff 164k: `annotations/val2017/*_labelTrainIds.png`), so `preset` + `labels_dir` +
`label_suffix` points zeg-eval at data a user already has; see `harness/data/presets.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from harness.config.yamlcfg import load_yaml_mapping
from harness.data.imageio import read_label_png
from harness.errors import UserError
from harness.files import check_component
from harness.metrics.histogram import label_counts

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@lru_cache(maxsize=1)
def presets() -> dict:
    """Class lists and conventions of known datasets (names as in mmseg 1.x METAINFO)."""
    text = resources.files("harness.data").joinpath("presets.yaml").read_text()
    import yaml

    return yaml.safe_load(text)


@dataclass(frozen=True)
class DatasetSpec:
    root: Path
    name: str
    classes: tuple[str, ...]
    ignore_index: int = 255
    unseen: tuple[str, ...] = ()
    things: tuple[str, ...] | None = None
    reduce_zero_label: bool = False
    labels_dir: Path = Path("labels")
    images_dir: Path | None = None
    instances_dir: Path | None = None
    amodal_dir: Path | None = None
    label_suffix: str = ".png"
    split_file: Path | None = None  # optional list of stems, one per line (mmseg's ann_file)
    # optional {class: mean object area in pixels}: the iIoU weights' table (Cityscapes' avgClassSize);
    # without it the weights use the mean area of each class's objects in the evaluated data
    instance_sizes: dict | None = None
    instance_ids: str = "plain"   # which ids of an instance map are objects: see `object_ids`
    crowd_id: int | None = None   # plain: the id of crowd regions (no object)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def unseen_mask(self) -> np.ndarray:
        return np.isin(np.asarray(self.classes, dtype=object), list(self.unseen))

    @property
    def instance_size_array(self) -> np.ndarray | None:
        """instance_sizes as [C] (NaN for a class it does not name), or None."""
        if self.instance_sizes is None:
            return None
        return np.array([float(self.instance_sizes.get(c, np.nan)) for c in self.classes])

    @property
    def thing_mask(self) -> np.ndarray | None:
        if self.things is None:
            return None
        return np.isin(np.asarray(self.classes, dtype=object), list(self.things))

    def stems(self) -> list[str]:
        """Sorted stems of the label files (the dataset's images)."""
        if not self.labels_dir.is_dir():
            raise UserError("labels folder does not exist", self.labels_dir)
        suffix = self.label_suffix
        if self.split_file is not None:
            if not self.split_file.is_file():
                raise UserError("split file does not exist", self.split_file)
            lines = self.split_file.read_text().splitlines()
            for number, line in enumerate(lines, 1):  # a stem names files we write: no paths
                if line.strip():
                    check_component(line.strip(), f"line {number}: stem", self.split_file)
            stems = sorted({line.strip() for line in lines if line.strip()})
            missing = [s for s in stems if not self.label_path(s).is_file()]
            if missing:
                raise UserError(f"{len(missing)} image(s) of the split have no label, e.g. "
                                f"{self.label_path(missing[0])}", self.split_file)
        else:
            stems = sorted(p.name[: -len(suffix)] for p in self.labels_dir.iterdir() if p.name.endswith(suffix))
        if not stems:
            raise UserError(f"no label files ending in '{suffix}'", self.labels_dir)
        return stems

    def label_path(self, stem: str) -> Path:
        return self.labels_dir / f"{stem}{self.label_suffix}"

    def image_path(self, stem: str) -> Path:
        if self.images_dir is None:
            raise UserError("dataset has no images_dir (the runner needs images)", self.root / "dataset.yaml")
        for suffix in IMAGE_SUFFIXES:
            path = self.images_dir / f"{stem}{suffix}"
            if path.is_file():
                return path
        raise UserError(f"no image for '{stem}' ({'/'.join(IMAGE_SUFFIXES)})", self.images_dir)

    def load_label(self, stem: str) -> np.ndarray:
        """Ground truth train ids, ignore pixels = ignore_index; values are checked. Kept in the PNG's
        dtype (uint8 or uint16; int32 after reduce_zero_label): the metrics take any integer map,
        and on bytes their passes move a quarter of the memory."""
        path = self.label_path(stem)
        raw = read_label_png(path)
        if self.reduce_zero_label:
            # mmseg's convention: 0 (background/other) is ignored and every other id shifts down by one.
            raw = raw.astype(np.int32)
            raw = np.where(raw == 0, self.ignore_index, raw - 1)
            raw[raw == self.ignore_index - 1] = self.ignore_index
        check_label_values(raw, self.num_classes, self.ignore_index, path, what="label")
        return raw

    def load_instances(self, stem: str, shape: tuple | None = None) -> np.ndarray | None:
        """The image's instance ids (None without an instance map); `shape`: its label map's, which
        the instance map must have."""
        if self.instances_dir is None:
            return None
        path = self.instances_dir / f"{stem}.png"
        if not path.is_file():
            return None
        instances = read_label_png(path)
        if shape is not None and instances.shape != tuple(shape):
            raise UserError(f"instance map is {_size(instances.shape)}, its label map {_size(shape)}", path)
        return object_ids(instances, self.instance_ids, self.crowd_id)

    def load_amodal(self, stem: str, shape: tuple | None = None) -> dict[int, np.ndarray] | None:
        """{instance id: amodal mask} (None without a file); `shape`: the label map's, which every
        mask must have."""
        if self.amodal_dir is None:
            return None
        path = self.amodal_dir / f"{stem}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                ids, masks = data["ids"], data["masks"].astype(bool)
        except Exception as exc:  # zip/npz errors come in many types
            raise UserError(f"cannot read amodal masks ({type(exc).__name__}: {exc})", path) from None
        if masks.ndim != 3 or ids.ndim != 1 or len(ids) != len(masks):
            raise UserError(f"amodal masks must be 'ids' (n,) and 'masks' (n, H, W), not {ids.shape} and {masks.shape}",
                            path)
        if shape is not None and len(masks) and masks.shape[1:] != tuple(shape):
            raise UserError(f"amodal masks are {_size(masks.shape[1:])}, the label map {_size(shape)}", path)
        return {int(i): m for i, m in zip(ids, masks)}


def _size(shape) -> str:
    return f"{shape[1]}x{shape[0]}" if len(shape) == 2 else "x".join(map(str, shape))


def check_label_values(labels: np.ndarray, num_classes: int, ignore_index: int, path, what: str) -> None:
    """A value that is neither a class id nor the ignore value is an error (mmseg drops it silently)."""
    if labels.size and labels.min() < 0:
        values = np.unique(labels)
    else:  # non-negative ids: a histogram finds the values present in O(pixels), without sorting
        values = np.flatnonzero(label_counts(labels, int(labels.max()) + 1 if labels.size else 0))
    bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise UserError(f"{what} value(s) {shown} out of range: {num_classes} classes, ignore {ignore_index}", path)


INSTANCE_ID_CONVENTIONS = ("plain", "cityscapes")
CITYSCAPES_FIRST_INSTANCE = 1000   # cityscapesScripts: ids >= 1000 are instances (classId * 1000 + k)


def object_ids(instances: np.ndarray, convention: str = "plain", crowd_id: int | None = None) -> np.ndarray:
    """The instance map with every pixel that belongs to no object set to 0; object ids unchanged.

    plain: ids > 0 are objects, except `crowd_id` (a crowd region: its pixels keep their class in the
    label map, so they still count for pixel metrics, but they make no object, as COCO's evaluation
    does not match crowds to objects). cityscapes: ids >= 1000 are objects (classId * 1000 + k, as
    cityscapesScripts' instance evaluation reads them); smaller ids are the class id of a region that
    is no instance (stuff, or a crowd / group region of a thing class)."""
    if convention == "cityscapes":
        return np.where(instances >= CITYSCAPES_FIRST_INSTANCE, instances, 0).astype(instances.dtype, copy=False)
    if crowd_id is not None and crowd_id > 0:
        return np.where(instances == crowd_id, 0, instances).astype(instances.dtype, copy=False)
    return instances


# key: (accepted types, what to say). Types are checked, never coerced: 'no' is not false, and a
# single name is not a list of its letters.
_FIELD_TYPES = {"name": (str, "text"), "ignore_index": (int, "an integer"), "reduce_zero_label": (bool, "true or false"),
                "labels_dir": (str, "a folder path"), "images_dir": ((str, type(None)), "a folder path"),
                "instances_dir": ((str, type(None)), "a folder path"), "amodal_dir": ((str, type(None)), "a folder path"),
                "label_suffix": (str, "text such as .png"), "split_file": ((str, type(None)), "a file path"),
                "instance_ids": (str, "plain or cityscapes"), "crowd_id": ((int, type(None)), "an instance id")}


def _check_types(values: dict, lines: dict, path: Path) -> None:
    def fail(key, message):
        raise UserError(f"line {lines.get(key, '?')}: {key} {message}", path)

    for key, (types, what) in _FIELD_TYPES.items():
        if key in values and (not isinstance(values[key], types) or
                              (isinstance(values[key], bool) and bool not in (types if isinstance(types, tuple) else (types,)))):
            fail(key, f"must be {what}, not {values[key]!r}"[:200])
    for key in ("classes", "unseen", "things"):
        names = values.get(key)
        if names is None and key != "classes":
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            fail(key, "must be a list of class names (e.g. [sky, person])")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            fail(key, f"names '{twice}' more than once")
    if not values["classes"]:
        fail("classes", "is empty")
    ignore = values.get("ignore_index", 255)
    if not 0 <= ignore < 2**16:
        fail("ignore_index", f"must be in 0..65535, not {ignore}")
    if ignore < len(values["classes"]):
        fail("ignore_index", f"{ignore} is a class id ({len(values['classes'])} classes)")
    sizes = values.get("instance_sizes")
    if sizes is not None:
        if not isinstance(sizes, dict) or not all(isinstance(k, str) for k in sizes):
            fail("instance_sizes", "must map class names to their mean object area in pixels")
        unknown = [k for k in sizes if k not in values["classes"]]
        if unknown:
            fail("instance_sizes", f"names classes that are not in classes: {unknown[:5]}")
        bad = [k for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, (int, float))
               or not math.isfinite(v) or v <= 0]
        if bad:
            fail("instance_sizes", f"must give positive numbers, not {sizes[bad[0]]!r} for '{bad[0]}'")
        things = values.get("things") or values["classes"]
        missing = [c for c in things if c not in sizes]
        if missing:
            fail("instance_sizes", f"must give every {'thing ' if values.get('things') else ''}class a size; "
                                   f"missing: {missing[:5]}")
    convention = values.get("instance_ids", "plain")
    if convention not in INSTANCE_ID_CONVENTIONS:
        fail("instance_ids", f"must be one of {', '.join(INSTANCE_ID_CONVENTIONS)}, not {convention!r}"[:200])
    crowd = values.get("crowd_id")
    if crowd is not None:
        if not 0 < crowd < 2**16:
            fail("crowd_id", f"must be an instance id in 1..65535, not {crowd}")
        if convention == "cityscapes":
            fail("crowd_id", "does not apply to instance_ids: cityscapes (its crowd regions are the ids below 1000)")
    suffix = values.get("label_suffix", ".png")
    if "/" in suffix or "\\" in suffix or ".." in suffix:
        fail("label_suffix", f"must be a file-name ending such as .png, not {suffix!r}")


def load_dataset(path: str | Path) -> DatasetSpec:
    """A dataset from a folder holding dataset.yaml, or the yaml file itself (an mmseg config is
    harness.data.mmseg_config's)."""
    path = Path(path)
    if not path.exists():
        raise UserError("data folder does not exist", path)
    if path.suffix == ".py":
        raise UserError("an mmseg config, not a dataset.yaml: read it with "
                        "harness.data.mmseg_config.dataset_from_mmseg_config (zeg-eval run --data takes both)", path)
    yaml_path = path / "dataset.yaml" if path.is_dir() else path
    if not yaml_path.is_file():
        raise UserError("no dataset.yaml in the data folder", path)
    allowed = {"name", "preset", "classes", "ignore_index", "unseen", "things", "reduce_zero_label",
               "labels_dir", "images_dir", "instances_dir", "amodal_dir", "label_suffix", "split_file",
               "instance_sizes", "instance_ids", "crowd_id"}
    raw, lines = load_yaml_mapping(yaml_path, allowed)
    root = yaml_path.parent
    values = {}
    if "preset" in raw:
        known = presets()
        if not isinstance(raw["preset"], str) or raw["preset"] not in known:
            raise UserError(f"line {lines['preset']}: unknown preset {str(raw['preset'])[:60]!r} (known: {', '.join(known)})", yaml_path)
        values.update(known[raw["preset"]])
    values.update({k: v for k, v in raw.items() if k != "preset"})
    if "classes" not in values:
        raise UserError("needs 'classes' (a list of names) or a 'preset'", yaml_path)
    _check_types(values, lines, yaml_path)
    classes = tuple(values["classes"])
    for key in ("unseen", "things"):
        unknown = [n for n in values.get(key) or () if n not in classes]
        if unknown:
            raise UserError(f"line {lines.get(key, '?')}: {key} names not in classes: {unknown[:5]}", yaml_path)

    def folder(key, default):
        value = values.get(key, default)
        if value is None:
            return None
        p = Path(value)
        p = p if p.is_absolute() else root / p
        # labels and split file are required where named (errors later name them); the rest are optional
        return p if (p.exists() or key in ("labels_dir", "split_file")) else None

    return DatasetSpec(
        root=root,
        name=str(values.get("name", root.name)),
        classes=classes,
        ignore_index=int(values.get("ignore_index", 255)),
        unseen=tuple(values.get("unseen") or ()),
        things=None if values.get("things") is None else tuple(values["things"]),
        reduce_zero_label=bool(values.get("reduce_zero_label", False)),
        labels_dir=folder("labels_dir", "labels"),
        images_dir=folder("images_dir", "images"),
        instances_dir=folder("instances_dir", "instances"),
        amodal_dir=folder("amodal_dir", "amodal"),
        label_suffix=str(values.get("label_suffix", ".png")),
        split_file=folder("split_file", None),
        instance_sizes=None if values.get("instance_sizes") is None else
        {str(k): float(v) for k, v in values["instance_sizes"].items()},
        instance_ids=str(values.get("instance_ids", "plain")),
        crowd_id=values.get("crowd_id"),
    )
