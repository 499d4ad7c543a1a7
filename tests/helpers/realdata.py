"""The real samples of ../shared/realdata as zeg-eval dataset folders (read in place, never copied)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
if not REALDATA.is_dir():  # CI clones the repo next to ../shared as well; fall back to the fixed path
    REALDATA = Path("/work/shared/realdata")


def _coco_stuff(root: Path) -> dict:
    src = REALDATA / "coco_stuff_val2017_10"
    return {"preset": "coco_stuff164k", "labels_dir": str(src / "labels171"), "label_suffix": ".png",
            "images_dir": str(src / "images")}


def _coco_panoptic(root: Path) -> dict:
    src = REALDATA / "coco_panoptic_val2017_2"
    meta = json.loads((src / "semantic133_classes.json").read_text())
    return {"name": "coco_panoptic2", "classes": list(meta["classes"]), "things": list(meta["things"]),
            "labels_dir": str(src / "semantic133"), "images_dir": str(src / "images"),
            "instances_dir": str(src / "instances")}


def _ade20k(root: Path) -> dict:
    src = REALDATA / "ade20k_val_3"
    return {"preset": "ade20k", "labels_dir": str(src / "annotations"), "images_dir": str(src / "images")}


REAL_DATASETS = {"coco_stuff10": _coco_stuff, "coco_panoptic2": _coco_panoptic, "ade20k3": _ade20k}


def write_real_dataset(name: str, root: Path) -> Path:
    """A folder holding only a dataset.yaml that points at the real sample `name`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump(REAL_DATASETS[name](root)))
    return root
