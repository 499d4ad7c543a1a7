"""A rerun reuses a record only when everything that made it is the same (issue 12): a swapped
prediction folder or dataset is refused in one line; a moved one resumes; paths made from data
never leave their folder; damaged state is rebuilt or recomputed, never fatal."""
import json
import shutil

import numpy as np
import pytest
import yaml
from helpers.cli import one_line_error, read_json, tree, zeg_eval_inprocess

from harness.data.imageio import write_label_png


def _dataset(root, labels, classes=("bg", "thing")):
    (root / "labels").mkdir(parents=True)
    for stem, label in labels.items():
        write_label_png(root / "labels" / f"{stem}.png", label)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": list(classes)}))
    return root


def _preds(root, preds):
    root.mkdir(parents=True)
    for stem, pred in preds.items():
        write_label_png(root / f"{stem}.png", pred)
    return root


@pytest.fixture
def world(tmp_path):
    label = np.zeros((8, 8), np.uint8)
    label[2:6, 2:6] = 1
    other = label.copy()
    other[0, :] = 1
    data = _dataset(tmp_path / "data", {"a": label, "b": label})
    good = _preds(tmp_path / "good", {"a": label, "b": label})
    bad = _preds(tmp_path / "bad", {"a": np.zeros_like(label), "b": np.zeros_like(label)})
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}, "size": {}}}))
    return {"tmp": tmp_path, "data": data, "good": good, "bad": bad, "protocol": protocol, "other": other}


def _run(capsys, w, preds, data=None, out="run", *extra):
    return zeg_eval_inprocess(capsys, "run", w["protocol"], "--data", data or w["data"], "--predictions",
                              f"m={preds}", "--out", w["tmp"] / out, "--workers", "0", *extra)


def test_another_prediction_folder_under_the_same_name_is_refused(world, capsys):
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    assert read_json(world["tmp"] / "run" / "summary.json")["m"]["mIoU"] == 100
    rc, _, err = _run(capsys, world, world["bad"])
    one_line_error(rc, err, "model 'm', image 'a'", "another prediction folder")
    assert read_json(world["tmp"] / "run" / "summary.json")["m"]["mIoU"] == 100  # nothing overwritten
    assert read_json(world["tmp"] / "run" / "manifest.json")["status"] == "failed"


def test_a_moved_prediction_folder_resumes_without_recomputing(world, capsys):
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    moved = world["tmp"] / "moved"
    shutil.move(world["good"], moved)
    rc, _, err = _run(capsys, world, moved)
    assert rc == 0, err
    assert read_json(world["tmp"] / "run" / "manifest.json")["models"]["m"]["images_computed_last_run"] == 0


def test_another_dataset_with_the_same_classes_is_refused(world, capsys):
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    other = _dataset(world["tmp"] / "data2", {"a": world["other"], "b": world["other"]})
    rc, _, err = _run(capsys, world, world["good"], other)
    one_line_error(rc, err, "image 'a'", "ground truth is not the one", other / "labels" / "a.png")


def test_a_changed_protocol_parameter_is_refused(world, capsys):
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    world["protocol"].write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}, "size": {
        "hit_threshold": 0.9}}}))
    rc, _, err = _run(capsys, world, world["good"])
    one_line_error(rc, err, "another protocol")


def test_split_file_lines_cannot_write_outside_the_run_folder(world, capsys):
    data = world["data"]
    (data / "val.txt").write_text("a\n../../x\n")
    spec = yaml.safe_load((data / "dataset.yaml").read_text())
    (data / "dataset.yaml").write_text(yaml.safe_dump({**spec, "split_file": "val.txt"}))
    before = tree(world["tmp"])
    rc, _, err = _run(capsys, world, world["good"], None, "run", "--save-predictions")
    one_line_error(rc, err, data / "val.txt", "line 2", "not a plain file name")
    assert tree(world["tmp"]) == before


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_damaged_manifest_is_rebuilt_by_a_rerun(world, capsys, content):
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    summary = (world["tmp"] / "run" / "summary.json").read_bytes()
    (world["tmp"] / "run" / "manifest.json").write_bytes(content)
    rc, _, err = zeg_eval_inprocess(capsys, "report", world["tmp"] / "run", "--out", world["tmp"] / "rep")
    one_line_error(rc, err, "manifest")
    rc, _, err = _run(capsys, world, world["good"])
    assert rc == 0, err
    assert "damaged manifest" in err
    m = json.loads((world["tmp"] / "run" / "manifest.json").read_text())
    assert m["status"] == "complete" and m["models"]["m"]["images_computed_last_run"] == 0
    assert (world["tmp"] / "run" / "summary.json").read_bytes() == summary


def test_a_damaged_record_chunk_is_recomputed_by_a_rerun(world, capsys):
    rc, _, err = _run(capsys, world, world["good"], None, "run", "--chunk-size", "1")
    assert rc == 0, err
    summary = (world["tmp"] / "run" / "summary.json").read_bytes()
    chunk = world["tmp"] / "run" / "records" / "objects" / "model=m" / "condition=clean" / "whole-00001.parquet"
    chunk.write_bytes(b"garbage")
    rc, _, err = zeg_eval_inprocess(capsys, "report", world["tmp"] / "run", "--out", world["tmp"] / "rep")
    one_line_error(rc, err, "damaged record chunk")
    rc, _, err = _run(capsys, world, world["good"], None, "run", "--chunk-size", "1")
    assert rc == 0, err
    assert "damaged records of model 'm'" in err
    m = read_json(world["tmp"] / "run" / "manifest.json")
    assert m["models"]["m"]["images_computed_last_run"] == 1
    assert (world["tmp"] / "run" / "summary.json").read_bytes() == summary
