"""The runner on real photos (../shared/realdata, read in place): baselines with real instances from
COCO annotations (pycocotools), and ADE20K's reduce_zero_label convention."""
import json

import numpy as np
import pytest
import yaml
from helpers.cli import summary, zeg_eval_subprocess
from helpers.data import REALDATA

from harness.data.coco_instances import instance_maps
from harness.data.imageio import read_label_png

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


PANOPTIC = REALDATA / "coco_panoptic_val2017_2"


def test_coco_instances_match_the_panoptic_instances():
    for stem, ids in instance_maps(PANOPTIC / "panoptic_coco_detection_format.json",
                                   PANOPTIC / "panoptic_coco_categories.json"):
        ref = read_label_png(PANOPTIC / "instances" / f"{stem}.png")
        pairs = set(zip(ids.ravel().tolist(), ref.ravel().tolist()))
        assert len(pairs) == len(np.unique(ref))  # the same partition, whatever the ids


def test_baselines_on_coco_with_converted_instances(tmp_path):
    rc, out, err = zeg_eval_subprocess("coco-instances", PANOPTIC / "panoptic_coco_detection_format.json", tmp_path / "inst",
                            "--categories", PANOPTIC / "panoptic_coco_categories.json")
    assert rc == 0, err
    classes = json.loads((PANOPTIC / "semantic133_classes.json").read_text())
    names = classes["classes"] if isinstance(classes, dict) else classes
    names = [c["name"] if isinstance(c, dict) else c for c in names]
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset.yaml").write_text(yaml.safe_dump({
        "name": "coco_panoptic2", "classes": names, "labels_dir": str(PANOPTIC / "semantic133"),
        "images_dir": str(PANOPTIC / "images"), "instances_dir": str(tmp_path / "inst")}))
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "real", "families": {"standard": {}, "size": {}}, "models": [
        {"name": "oracle", "baseline": "oracle"}, {"name": "drop_small", "baseline": "drop_small"},
        {"name": "dilate_3", "baseline": "boundary_shift", "pixels": 3}]}))
    rc, out, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", tmp_path / "run", "--workers", "1")
    assert rc == 0, err
    s = summary(tmp_path / "run")
    assert s["oracle"]["mIoU"] == 100 and s["oracle"]["object_recall@small"] == 100
    assert s["drop_small"]["object_recall@small"] == 0 < s["drop_small"]["object_recall@medium"]
    assert s["dilate_3"]["mIoU"] < 100


def test_baselines_on_ade20k_reduce_zero_label(tmp_path):
    ade = REALDATA / "ade20k_val_3"
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset.yaml").write_text(yaml.safe_dump({"preset": "ade20k", "labels_dir": str(ade / "annotations"),
                                                       "images_dir": str(ade / "images")}))
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "ade", "families": {"standard": {}}, "models": [
        {"name": "oracle", "baseline": "oracle"}, {"name": "erode_2", "baseline": "boundary_shift", "pixels": -2}]}))
    rc, out, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", tmp_path / "run", "--workers", "0")
    assert rc == 0, err
    s = summary(tmp_path / "run")
    assert s["oracle"]["mIoU"] == 100 and s["oracle"]["n_images"] == 3
    assert 30 < s["erode_2"]["mIoU"] < 100
