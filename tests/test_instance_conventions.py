"""Which ids of an instance map are objects: the plain convention (with an optional crowd id, as
`zeg-eval coco-instances --crowd-id` writes COCO crowd regions) and Cityscapes' instanceIds
(classId * 1000 + k; ids below 1000 are no instance)."""
import json

import cv2
import numpy as np
import pytest
import yaml
from helpers.cli import one_line_error, read_json, zeg_eval_inprocess
from helpers.data import REALDATA

from harness.data.coco_instances import instance_maps
from harness.data.dataset import object_ids
from harness.data.imageio import write_label_png

PANOPTIC = REALDATA / "coco_panoptic_val2017_2"


def test_object_ids_by_hand():
    m = np.array([[0, 7, 26, 26001], [26002, 26002, 9, 33]], np.uint16)
    assert object_ids(m).tolist() == m.tolist()
    assert object_ids(m, "cityscapes").tolist() == [[0, 0, 0, 26001], [26002, 26002, 0, 0]]
    assert object_ids(m, "plain", crowd_id=26).tolist() == [[0, 7, 0, 26001], [26002, 26002, 9, 33]]


def test_coco_crowds_are_the_panoptic_crowd_segments():
    """With --crowd-id the crowd pixels are exactly the panoptic PNG's crowd segments (another file of
    the same ground truth); without it they stay 0; the other ids are the same either way."""
    anns = {a["file_name"]: a for a in json.loads((PANOPTIC / "panoptic_examples.json").read_text())["annotations"]}
    plain = dict(instance_maps(PANOPTIC / "panoptic_coco_detection_format.json",
                               PANOPTIC / "panoptic_coco_categories.json"))
    marked = dict(instance_maps(PANOPTIC / "panoptic_coco_detection_format.json",
                                PANOPTIC / "panoptic_coco_categories.json", crowd_id=9999))
    n_crowd_pixels = 0
    for stem, ids in marked.items():
        rgb = cv2.cvtColor(cv2.imread(str(PANOPTIC / "panoptic" / f"{stem}.png")), cv2.COLOR_BGR2RGB).astype(np.int64)
        segment = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        crowd_segments = [s["id"] for s in anns[f"{stem}.png"]["segments_info"] if s["iscrowd"]]
        crowd = np.isin(segment, crowd_segments)
        # the detection-format masks and the panoptic PNG agree up to a few pixels at most
        assert np.count_nonzero((ids == 9999) != crowd) <= 0.001 * crowd.sum() + 2, stem
        assert not np.any(plain[stem] == 9999)
        n_crowd_pixels += int(crowd.sum())
        keep = ids != 9999
        assert np.array_equal(ids[keep], plain[stem][keep])
        assert np.all(plain[stem][~keep] == 0)
    assert n_crowd_pixels > 1000  # the sample has 3 crowd segments


def _world(tmp_path, instances, **conventions):
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    (data / "instances").mkdir()
    label = np.zeros((32, 32), np.uint8)
    label[2:10, 2:10] = 1     # car 26001
    label[20:28, 20:28] = 1   # car 26002
    label[2:10, 20:30] = 1    # a car group (26 in Cityscapes; a crowd in COCO terms)
    write_label_png(data / "labels" / "a.png", label)
    write_label_png(data / "instances" / "a.png", instances, np.uint16)
    (data / "dataset.yaml").write_text(yaml.safe_dump({"classes": ["road", "car"], "things": ["car"],
                                                       **conventions}))
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"size": {}},
                                        "models": [{"name": "oracle", "baseline": "oracle"}]}))
    return data, protocol


def _instances(group_id):
    ids = np.full((32, 32), 7, np.uint16)   # road's Cityscapes label id
    ids[2:10, 2:10] = 26001
    ids[20:28, 20:28] = 26002
    ids[2:10, 20:30] = group_id
    return ids


@pytest.mark.parametrize("conventions, instances, objects", [
    # plain: ids 7 (road's region) and 26 are instances too; `things` drops the road one, the group stays
    ({}, _instances(26), 3),
    ({"instance_ids": "cityscapes"}, _instances(26), 2),       # only the two cars
    ({"crowd_id": 26}, np.where(_instances(26) == 7, 0, _instances(26)), 2),  # plain ids, the group a crowd
])
def test_objects_per_convention(tmp_path, capsys, conventions, instances, objects):
    data, protocol = _world(tmp_path, instances, **conventions)
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--workers", "0")
    assert rc == 0, err
    summary = read_json(tmp_path / "run" / "summary.json")["oracle"]
    assert summary["n_objects"] == objects


def test_a_changed_convention_is_not_reused(tmp_path, capsys):
    data, protocol = _world(tmp_path, _instances(26))
    args = ["run", protocol, "--data", data, "--out", tmp_path / "run", "--workers", "0"]
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    assert rc == 0, err
    spec = yaml.safe_load((data / "dataset.yaml").read_text())
    (data / "dataset.yaml").write_text(yaml.safe_dump({**spec, "instance_ids": "cityscapes"}))
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    one_line_error(rc, err, "another setup", "instance_ids")


@pytest.mark.parametrize("extra, needles", [
    ({"instance_ids": "cityscape"}, ("instance_ids must be one of plain, cityscapes",)),
    ({"crowd_id": 0}, ("crowd_id must be an instance id in 1..65535",)),
    ({"crowd_id": "x"}, ("crowd_id must be an instance id",)),
    ({"instance_ids": "cityscapes", "crowd_id": 5}, ("crowd_id does not apply",)),
])
def test_bad_conventions_are_one_line(tmp_path, capsys, extra, needles):
    data, protocol = _world(tmp_path, _instances(26), **extra)
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--workers", "0")
    one_line_error(rc, err, data / "dataset.yaml", *needles)


def test_coco_instances_crowd_id_out_of_range_is_one_line(tmp_path, capsys):
    rc, _, err = zeg_eval_inprocess(capsys, "coco-instances", PANOPTIC / "panoptic_coco_detection_format.json",
                                    tmp_path / "out", "--crowd-id", "70000")
    one_line_error(rc, err, "--crowd-id must be in 1..65535")
    assert not (tmp_path / "out").exists()
