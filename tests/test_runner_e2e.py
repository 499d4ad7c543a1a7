"""The runner end to end with baselines on the generated sample: run, resume, options, refusals."""

import numpy as np
import pytest
import yaml
from helpers.cli import manifest, one_line_error, summary, tree, zeg_eval_subprocess
from helpers.data import PROTOCOL

from harness.data.dataset import load_dataset
from harness.data.imageio import read_label_png
from harness.data.sample import SampleConfig, make_sample
from harness.run.records import RunLock

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory):
    """`data: sample` generated on first use into a temporary cache folder."""
    return {"ZEG_EVAL_SAMPLE_DIR": str(tmp_path_factory.mktemp("cache") / "sample")}


def test_protocol_run_on_the_sample_and_rerun(tmp_path, sample_env):
    run = tmp_path / "run"
    rc, out, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, env=sample_env)
    assert rc == 0, err
    assert "generating the sample" in err
    skipped = [line for line in err.splitlines() if "skipping" in line]
    assert len(skipped) == 1 and "zegclip_missing" in skipped[0] and "Traceback" not in err
    s = summary(run)
    assert list(s) == ["oracle", "drop_small", "dilate_2", "erode_2", "seen_bias"]
    assert s["oracle"]["mIoU"] == 100 and s["oracle"]["n_images"] == 40
    assert s["seen_bias"]["mIoU_unseen"] == 0 < s["seen_bias"]["mIoU_seen"] < 100
    m = manifest(run)
    assert m["status"] == "complete" and len(m["images"]) == 40
    assert m["models"]["zegclip_missing"]["status"] == "skipped"
    assert "ZEG_EVAL_TEST_NO_SUCH_CKPT" in m["models"]["zegclip_missing"]["skipped"]
    assert m["models"]["oracle"]["timings"][-1]["images"] == 40
    assert {"python", "numpy", "pandas"} <= set(m["versions"]) and m["protocol"]["name"] == "runner_test"
    assert m["dataset"]["name"] == "zeg-sample"
    before = (run / "summary.json").read_bytes()
    # The same command again: nothing recomputed, the same summary.
    rc, out, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, env=sample_env)
    assert rc == 0, err
    m = manifest(run)
    assert all(m["models"][k]["images_computed_last_run"] == 0 for k in s)
    assert (run / "summary.json").read_bytes() == before
    assert "oracle: mIoU 100.00" in out


def test_limit_model_selection_and_saved_predictions(tmp_path, sample_env):
    run = tmp_path / "run"
    rc, out, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, "--limit", "5", "--model", "oracle", "--model",
                            "drop_small", "--save-predictions", "--workers", "2", "--chunk-size", "2", env=sample_env)
    assert rc == 0, err
    assert list(summary(run)) == ["oracle", "drop_small"] and summary(run)["oracle"]["n_images"] == 5
    dataset = load_dataset(sample_env["ZEG_EVAL_SAMPLE_DIR"])
    saved = sorted((run / "predictions" / "oracle").iterdir())
    assert [p.stem for p in saved] == dataset.stems()[:5]
    np.testing.assert_array_equal(read_label_png(saved[0]), dataset.load_label(saved[0].stem))
    assert len(list((run / "records" / "images" / "model=oracle" / "condition=clean").glob("whole-*.parquet"))) == 3  # chunks of 2
    # A saved prediction folder scores exactly like the model that wrote it.
    rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--out", tmp_path / "again", "--limit", "5", "--predictions",
                          f"ds={run / 'predictions' / 'drop_small'}", env=sample_env)
    assert rc == 0, err
    assert summary(tmp_path / "again")["ds"] == summary(run)["drop_small"]
    # Unknown model names are one line.
    rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, "--model", "nope", env=sample_env)
    one_line_error(rc, err, "nope", "not in the protocol")


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, sample_env):
    run = tmp_path / "run"
    with RunLock(run):
        rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, "--limit", "2", env=sample_env)
    one_line_error(rc, err, "another zeg-eval run is writing into this folder")
    with RunLock(run, shard=(0, 2)):  # shards run side by side, never beside a whole run
        rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, "--limit", "2", env=sample_env)
        one_line_error(rc, err, "another zeg-eval run")
        rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--out", run, "--limit", "2", "--shard", "0/2", env=sample_env)
        one_line_error(rc, err, "shard 0/2 is already running")


def test_changed_model_setup_is_refused(tmp_path, sample_env):
    protocol = yaml.safe_load(PROTOCOL.read_text())
    protocol["models"] = [{"name": "b", "baseline": "boundary_shift", "pixels": 2}]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(protocol))
    rc, _, err = zeg_eval_subprocess("run", path, "--out", tmp_path / "run", "--limit", "2", env=sample_env)
    assert rc == 0, err
    protocol["models"][0]["pixels"] = 3
    path.write_text(yaml.safe_dump(protocol))
    rc, _, err = zeg_eval_subprocess("run", path, "--out", tmp_path / "run", "--limit", "2", env=sample_env)
    one_line_error(rc, err, "model 'b': its records in this folder were made with another setup", "pixels: 2 -> 3")


def test_bad_protocol_models_are_one_line(tmp_path, sample_env):
    path = tmp_path / "p.yaml"
    path.write_text("name: t\nfamilies:\n  standard: {}\ndata: sample\nmodels:\n  - name: a\n    baseline: oracle\n"
                    "  - name: b\n    baseline: drop_small\n    max_aera: 3\n")
    rc, _, err = zeg_eval_subprocess("run", path, "--out", tmp_path / "run", env=sample_env)
    one_line_error(rc, err, path, "line 8", "max_aera")
    assert not (tmp_path / "run").exists()


def test_dataset_with_no_images(tmp_path, sample_env):
    data = tmp_path / "empty"
    (data / "labels").mkdir(parents=True)
    (data / "dataset.yaml").write_text("classes: [a, b]\n")
    before = tree(tmp_path)
    rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--data", data, "--out", tmp_path / "run", "--model", "oracle", env=sample_env)
    one_line_error(rc, err, data / "labels", "no label files")
    assert tree(tmp_path) == before


def test_sample_keyword_and_data_option(tmp_path, sample_env):
    root = make_sample(tmp_path / "mine", SampleConfig(n_images=3, height=64, width=80))
    rc, _, err = zeg_eval_subprocess("run", PROTOCOL, "--data", root, "--out", tmp_path / "run", "--model", "oracle",
                          env=sample_env)
    assert rc == 0, err
    assert summary(tmp_path / "run")["oracle"]["n_images"] == 3
