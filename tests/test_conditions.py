"""The condition axis: one run folder holds a model's records under several image conditions,
kept apart in records, resume and summaries."""
import numpy as np
import pandas as pd
import yaml
from helpers.cli import one_line_error, read_json, zeg_eval_inprocess

from harness.data.imageio import write_label_png


def _write(folder, maps):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, m in maps.items():
        write_label_png(folder / f"{stem}.png", m)


def test_two_conditions_in_one_run_folder(tmp_path, capsys):
    label = np.zeros((8, 8), np.uint8)
    label[2:6, 2:6] = 1
    half = label.copy()
    half[2:6, 2:4] = 0  # half of the object missed: IoU of class 1 = 8/16
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "labels", {"a": label, "b": label})
    (tmp_path / "data" / "dataset.yaml").write_text(yaml.safe_dump({"classes": ["bg", "thing"]}))
    _write(tmp_path / "pred", {"a": label, "b": label})
    _write(tmp_path / "pred" / "blurred", {"a": half, "b": half})
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}}, "conditions": ["clean", "blurred"],
                                        "models": [{"name": "m", "predictions": str(tmp_path / "pred")},
                                                   {"name": "oracle", "baseline": "oracle"}]}))
    args = ["run", protocol, "--data", tmp_path / "data", "--out", tmp_path / "run", "--workers", "0"]
    rc, out, err = zeg_eval_inprocess(capsys, *args)
    assert rc == 0, err
    run = tmp_path / "run"
    assert read_json(run / "summary.json")["m"]["mIoU"] == 100  # summary.json: the clean condition
    by_condition = read_json(run / "summary_conditions.json")
    assert by_condition["clean"]["m"]["mIoU"] == 100
    # blurred: bg IoU = 48 / 56, thing IoU = 8 / 16
    assert by_condition["blurred"]["m"]["mIoU"] == (100 * 48 / 56 + 100 * 8 / 16) / 2
    assert by_condition["blurred"]["oracle"]["mIoU"] == 100  # made from the ground truth
    table = pd.read_csv(run / "summary.csv")
    assert sorted(zip(table["model"], table["condition"])) == [("m", "blurred"), ("m", "clean"),
                                                               ("oracle", "blurred"), ("oracle", "clean")]
    images = pd.read_parquet(run / "records" / "images")
    assert len(images) == 8 and not images.duplicated(["model", "condition", "image"]).any()
    # a rerun recomputes nothing under either condition
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    assert rc == 0, err
    timings = read_json(run / "manifest.json")["models"]["m"]["timings"]
    assert [t["condition"] for t in timings[-2:]] == ["clean", "blurred"]
    assert all("images" not in t for t in timings[-2:])  # nothing computed
    # a condition without its prediction folder is one line
    protocol.write_text(protocol.read_text().replace("- blurred", "- jpeg10"))
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    one_line_error(rc, err, "no predictions for condition 'jpeg10'")


def test_condition_names_are_plain_names(tmp_path, capsys):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}}, "conditions": ["../x"]}))
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--predictions", tmp_path)
    one_line_error(rc, err, protocol, "line 2: condition '../x' must be a plain name")


def test_prediction_folders_under_corruptions_need_no_corruption_library(tmp_path, capsys, monkeypatch):
    """A folder model's maps of `fog-3` were made elsewhere: zeg-eval makes no image, so neither the
    corruption library nor its version enters (its records' identity holds the condition's name)."""
    from harness.conditions import corruptions

    def absent():
        raise AssertionError("the corruption library was asked for")

    monkeypatch.setattr(corruptions, "version", absent)
    monkeypatch.setattr(corruptions, "library_problem", absent)
    label = np.zeros((8, 8), np.uint8)
    label[2:6, 2:6] = 1
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "labels", {"a": label})
    (tmp_path / "data" / "dataset.yaml").write_text(yaml.safe_dump({"classes": ["bg", "thing"]}))
    _write(tmp_path / "pred", {"a": label})
    _write(tmp_path / "pred" / "fog-3", {"a": np.zeros_like(label)})
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}}, "conditions": ["fog-3"],
                                        "robustness": {"bootstrap": 0},
                                        "models": [{"name": "m", "predictions": str(tmp_path / "pred")}]}))
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", tmp_path / "data", "--out", tmp_path / "run",
                                    "--workers", "0")
    assert rc == 0, err
    table = pd.read_csv(tmp_path / "run" / "robustness.csv")
    row = table[(table["condition"] == "fog-3") & (table["metric"] == "mIoU")]
    assert (row["corruption"].item(), row["severity"].item()) == ("fog", 3)
    assert row["value"].item() == 100 * 48 / 64 / 2  # bg IoU 48/64, thing IoU 0
