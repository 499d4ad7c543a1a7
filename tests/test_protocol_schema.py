"""A protocol is checked whole, with types and ranges, before any work starts: a bad value ends in
exit 2 and one line naming the file, the line and the key; nothing is written."""
import numpy as np
import pytest
import yaml
from helpers.cli import one_line_error, tree, zeg_eval_inprocess

from harness.data.imageio import write_label_png

BAD_FAMILIES = [
    ({"size": {"hit_threshold": 2}}, "hit_threshold"),
    ({"size": {"hit_threshold": -0.5}}, "hit_threshold"),
    ({"occlusion": {"hit_threshold": 0}}, "hit_threshold"),
    ({"size": {"buckets": {"small": [1024, 0]}}}, "low 1024 is above high 0"),
    ({"size": {"buckets": {"small": [-5, 10]}}}, "buckets.small"),
    ({"size": {"buckets": {}}}, "buckets"),
    ({"size": {"relative_buckets": {"x": [0, 2]}}}, "relative_buckets.x"),
    ({"size": {"percentiles": [0, 50]}}, "percentiles"),
    ({"size": {"percentiles": [50, 120]}}, "percentiles"),
    ({"size": {"percentiles": [60, 40]}}, "percentiles"),
    ({"size": {"worst_fraction": 0}}, "worst_fraction"),
    ({"size": {"connectivity": 5}}, "connectivity"),
    ({"occlusion": {"connectivity": 6}}, "connectivity"),
    ({"occlusion": {"buckets": {"x": [0.5, 2]}}}, "buckets.x"),
    ({"boundary": {"band_widths": [0, 2]}}, "band_widths"),
    ({"boundary": {"band_widths": [1.5]}}, "band_widths"),
    ({"boundary": {"boundary_iou_ratio": 0}}, "boundary_iou_ratio"),
    ({"boundary": {"bf_tolerance_ratio": -1}}, "bf_tolerance_ratio"),
    ({"standard": {"beta": -1}}, "beta"),
    ({"standard": {"beta": True}}, "beta"),
    ({}, "'families' is empty"),
]


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    (root / "labels").mkdir(parents=True)
    write_label_png(root / "labels" / "a.png", np.zeros((4, 4), np.uint8))
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": ["bg", "x"]}))
    (tmp_path / "pred").mkdir()
    write_label_png(tmp_path / "pred" / "a.png", np.zeros((4, 4), np.uint8))
    return root


@pytest.mark.parametrize("families,needle", BAD_FAMILIES)
def test_bad_family_value_is_one_line(tmp_path, data, capsys, families, needle):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": families}))
    before = tree(tmp_path)
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", tmp_path / "pred",
                                    "--out", tmp_path / "run")
    line = one_line_error(rc, err, protocol, needle)
    assert "line " in line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", "..", "", "x" * 200, 5])
def test_protocol_name_must_be_a_plain_folder_name(tmp_path, data, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": name, "families": {"standard": {}}}))
    before = tree(tmp_path)
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", tmp_path / "pred")
    one_line_error(rc, err, protocol, "name must be")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("sizes, needle", [
    ("[1, 2]", "must map class names"),
    ("{nosuch: 10}", "not in classes"),
    ("{a: -1, b: 1}", "positive numbers"),
    ("{a: .nan, b: 1}", "positive numbers"),
    ("{a: 10}", "missing: ['b']"),
])
def test_instance_sizes_are_checked(tmp_path, capsys, sizes, needle):
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    (data / "dataset.yaml").write_text(f"classes: [a, b]\ninstance_sizes: {sizes}\n")
    from harness.data.dataset import load_dataset
    from harness.errors import UserError

    with pytest.raises(UserError, match="instance_sizes") as err:
        load_dataset(data)
    assert needle in str(err.value)
