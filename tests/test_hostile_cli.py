"""Hostile or mistaken command lines and files that ended in a traceback or wrote where they should
not (issue 12): each is now one line naming the file and the problem, exit 2, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import one_line_error, tree, zeg_eval_inprocess

from harness.data.sample import SampleConfig, make_sample

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "protocols" / "small_targets.yaml"
ALL = ROOT / "protocols" / "all.yaml"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return make_sample(tmp_path_factory.mktemp("hostile_cli") / "sample", SampleConfig(n_images=3))


def _copy(sample: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(sample, to))


def test_out_that_is_a_file(sample, tmp_path, capsys):
    out = tmp_path / "f"
    out.write_text("mine")
    rc, _, err = zeg_eval_inprocess(capsys, "run", SMALL, "--data", sample, "--out", out, "--model", "oracle")
    one_line_error(rc, err, str(out), "--out is a file")
    assert out.read_text() == "mine"


def test_out_that_is_someone_elses_folder(sample, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("x")
    rc, _, err = zeg_eval_inprocess(capsys, "run", SMALL, "--data", sample, "--out", out, "--model", "oracle")
    one_line_error(rc, err, str(out), "not a zeg-eval run folder")
    assert tree(out) == {Path("chapter1.tex")}


def test_empty_folder_and_a_run_folder_are_fine(sample, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    args = ("run", SMALL, "--data", sample, "--out", out, "--model", "oracle", "--workers", "0")
    assert zeg_eval_inprocess(capsys, *args)[0] == 0
    assert zeg_eval_inprocess(capsys, *args)[0] == 0  # resuming the run folder it became


@pytest.mark.parametrize("args, needles", [
    (["run", "p.yaml", "--bogus"], ["unrecognized arguments: --bogus", "zeg-eval --help"]),
    ([], ["required: command"]),
    (["run", "p.yaml", "--workers", "-2"], ["--workers", "must be an integer >= 0, not -2"]),
    (["run", "p.yaml", "--loader-workers", "-3"], ["--loader-workers", "must be an integer >= 0"]),
    (["run", "p.yaml", "--batch-size", "0"], ["--batch-size", "must be an integer >= 1, not 0"]),
    (["run", "p.yaml", "--limit", "abc"], ["--limit", "not 'abc'"]),
    (["run", "p.yaml", "--chunk-size", "0"], ["--chunk-size", ">= 1"]),
    (["make-sample", "x", "--images", "-1"], ["--images", ">= 1"]),
])
def test_command_line_errors_are_one_line(capsys, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    one_line_error(rc, err, *needles)
    assert "usage:" not in err
    assert not list(tmp_path.iterdir())


def test_instance_map_of_another_size(sample, tmp_path, capsys):
    data = _copy(sample, tmp_path / "data")
    path = data / "instances" / "sample_0001.png"
    cv2.imwrite(str(path), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:100, :90])
    rc, _, err = zeg_eval_inprocess(capsys, "run", ALL, "--data", data, "--out", tmp_path / "run",
                                    "--model", "oracle", "--workers", "0")
    one_line_error(rc, err, str(path), "instance map is 90x100, its label map 320x240")


def test_amodal_masks_of_another_size(sample, tmp_path, capsys):
    data = _copy(sample, tmp_path / "data")
    path = data / "amodal" / "sample_0000.npz"
    with np.load(path) as stored:
        ids, masks = stored["ids"], stored["masks"]
    np.savez(path, ids=ids, masks=masks[:, :50, :60])
    rc, _, err = zeg_eval_inprocess(capsys, "run", ALL, "--data", data, "--out", tmp_path / "run",
                                    "--model", "oracle", "--workers", "0")
    one_line_error(rc, err, str(path), "amodal masks are 60x50, the label map 320x240")


def _coco(tmp_path: Path, images, annotations) -> Path:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": []}))
    return path


SQUARE = [[1, 1, 6, 1, 6, 6, 1, 6]]


@pytest.mark.parametrize("images, annotations, needle", [
    ([{"id": 1, "file_name": "a.jpg", "width": 10}], [], "missing key 'height'"),
    ([{"id": 1, "file_name": "a.jpg", "width": 10, "height": -4}], [], "is 10x-4"),
    ([{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
     [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": {"counts": "!!", "size": [10, 10]}}],
     "annotation 7: cannot decode its segmentation"),
    ([{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
     [{"id": 8, "image_id": 1, "category_id": 1, "segmentation": {"counts": [200], "size": [10, 10]}}],
     "annotation 8: cannot decode"),
    ([{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
     [{"id": 9, "category_id": 1, "segmentation": SQUARE}], "annotation 9: needs image_id"),
    ([{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
     [{"id": 3, "image_id": 2, "category_id": 1, "segmentation": SQUARE}], "annotation 3 of unknown image id 2"),
])
def test_coco_instance_files_with_faults(tmp_path, capsys, images, annotations, needle):
    path = _coco(tmp_path, images, annotations)
    rc, _, err = zeg_eval_inprocess(capsys, "coco-instances", path, tmp_path / "out")
    one_line_error(rc, err, str(path), needle)
    assert not (tmp_path / "out").exists()


def test_coco_file_names_cannot_leave_the_output_folder(tmp_path, capsys):
    images = [{"id": 1, "file_name": "../../escape.jpg", "width": 10, "height": 10}]
    path = _coco(tmp_path / "", images, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": SQUARE}])
    out = tmp_path / "deep" / "out"
    rc, _, err = zeg_eval_inprocess(capsys, "coco-instances", path, out)
    assert rc == 0, err
    assert tree(tmp_path) == {Path("instances.json"), Path("deep"), Path("deep/out"), Path("deep/out/escape.png")}
    written = cv2.imread(str(out / "escape.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == (10, 10) and written[3, 3] == 1 and written[8, 8] == 0


def test_class_names_with_mathtext_and_markup_are_data(sample, tmp_path, capsys):
    """'$' (matplotlib mathtext, unbalanced), '<script>' and '=' (a CSV formula) in class names: the
    run and the report work, and the names come back unchanged in the CSVs (a formula neutralised by a
    leading ') and escaped in the HTML."""
    import html

    import pandas as pd
    import yaml

    data = _copy(sample, tmp_path / "data")
    spec = yaml.safe_load((data / "dataset.yaml").read_text())
    names = {spec["classes"][0]: "$\\frac{sky", spec["classes"][1]: "tree$", spec["classes"][2]: "<script>x</script>",
             spec["classes"][3]: "=1+1"}
    for key in ("classes", "unseen", "things"):
        if spec.get(key):
            spec[key] = [names.get(c, c) for c in spec[key]]
    (data / "dataset.yaml").write_text(yaml.safe_dump(spec))
    run = tmp_path / "run"
    rc, _, err = zeg_eval_inprocess(capsys, "run", ALL, "--data", data, "--out", run, "--model", "oracle",
                                    "--model", "drop_small", "--workers", "0")
    assert rc == 0, err
    rc, _, err = zeg_eval_inprocess(capsys, "report", run, "--out", tmp_path / "report", "--bootstrap", "20")
    assert rc == 0, err
    per_class = pd.read_csv(tmp_path / "report" / "per_class.csv")
    # a cell a spreadsheet would run as a formula gets a leading ' (harness/report/names.py)
    assert {"$\\frac{sky", "tree$", "<script>x</script>", "'=1+1"} <= set(per_class["class"])
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<script>x</script>" not in page and html.escape("<script>x</script>") in page


@pytest.mark.parametrize("args, needles", [
    (["zegclip-embed", "--bogus"], ["zegclip-embed:", "required"]),
    (["report", "r", "--bootstrap", "-5"], ["report:", "--bootstrap", ">= 0"]),
    (["report", "r", "--gallery", "x"], ["--gallery", "not 'x'"]),
])
def test_other_commands_errors_are_one_line(capsys, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    one_line_error(rc, err, *needles)
    assert "usage:" not in err
