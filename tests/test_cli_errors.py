"""Bad input: a non-zero exit and one line that names the file and the problem, never a traceback."""
import subprocess
import sys

import numpy as np
import pytest
from helpers.data import write_dataset, write_predictions, write_protocol

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


def zeg_eval(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(rc, stderr, *needles):
    assert rc != 0
    assert "Traceback" not in stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert str(needle) in lines[0], lines[0]


@pytest.fixture
def setup(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[2:4, 2:5] = 1
    data = write_dataset(tmp_path / "data", {"a": label, "b": label}, ["bg", "thing"])
    pred = write_predictions(tmp_path / "pred", {"a": label, "b": label})
    protocol = write_protocol(tmp_path / "p.yaml", {"standard": {}})
    return tmp_path, data, pred, protocol


def test_good_input_runs(setup):
    tmp, data, pred, protocol = setup
    rc, out, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert rc == 0, err
    assert (tmp / "run" / "summary.json").is_file()


def test_corrupt_png(setup):
    tmp, data, pred, protocol = setup
    (pred / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, pred / "b.png", "decode")


def test_prediction_of_another_size(setup):
    tmp, data, pred, protocol = setup
    write_predictions(pred, {"a": np.zeros((6, 9), np.uint8)})
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, pred / "a.png", "9x6", "8x6")


def test_missing_prediction(setup):
    tmp, data, pred, protocol = setup
    (pred / "b.png").unlink()
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, pred / "b.png", "missing prediction")


def test_label_value_out_of_range(setup):
    tmp, data, pred, protocol = setup
    bad = np.zeros((6, 8), np.uint8)
    bad[0, 0] = 7
    write_dataset(data, {"b": bad}, ["bg", "thing"])
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, data / "labels" / "b.png", "7", "out of range")


def test_yaml_error_names_file_and_line(setup):
    tmp, data, pred, _ = setup
    protocol = tmp / "typo.yaml"
    protocol.write_text("name: t\nfamilies:\n  standard: {}\n  boundery: {}\n")
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, protocol, "line 4", "boundery")
    protocol.write_text("name: t\nfamilies: [standard\n")
    rc, _, err = zeg_eval("run", protocol, "--data", data, "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, protocol, "YAML syntax error")


def test_data_folder_that_does_not_exist(setup):
    tmp, _, pred, protocol = setup
    rc, _, err = zeg_eval("run", protocol, "--data", tmp / "nope", "--predictions", pred, "--out", tmp / "run")
    assert_one_line_error(rc, err, tmp / "nope", "does not exist")


def test_text_embeddings_module_run_directly_gives_one_line():
    """`python -m harness.zegclip.text_embeddings` (the module the docs' zegclip-embed runs) with a bad
    argument: the command line's one-line error, not argparse's traceback (Python's own runpy warning
    about the package importing the module may precede it)."""
    proc = subprocess.run([sys.executable, "-m", "harness.zegclip.text_embeddings", "--bogus"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "RuntimeWarning" not in line]
    assert len(lines) == 1 and "zegclip-embed" in lines[0] and "required" in lines[0], proc.stderr
