"""Models that look at images, run under conditions: the condition reaches the model's input, every
(model, condition) is resumable (Ctrl-C during a condition, then a rerun, gives the uninterrupted
result), and a run's robustness tables are the same bytes when it is run again."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.cli import manifest, read_json, zeg_eval_subprocess
from helpers.data import CONFIGS
from helpers.models import save_checkpoint

from harness.conditions.spec import named
from harness.data.dataset import load_dataset
from harness.data.imageio import read_rgb
from harness.data.sample import SampleConfig, make_sample
from harness.run.records import RecordSet, read_tables

pytestmark = pytest.mark.slow  # subprocesses, torch and mmseg
N_IMAGES = 48
CONDITIONS = ["noise-32", "resolution-0.5", "jpeg-10"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditions")
    data = make_sample(root / "sample", SampleConfig(n_images=N_IMAGES, height=96, width=128))
    ckpt = save_checkpoint(CONFIGS / "tiny_fcn.py", root / "tiny.pth")
    protocol = root / "p.yaml"
    protocol.write_text(yaml.safe_dump({
        "name": "cond", "families": {"standard": {}, "size": {}}, "conditions": CONDITIONS,
        "robustness": {"bootstrap": 50},
        "models": [{"name": "oracle", "baseline": "oracle"},
                   {"name": "tiny", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt)}]}))
    return root, data, protocol


def test_the_condition_is_what_the_model_sees(setup):
    """The images the DataLoader hands the model's pipeline are the condition's image of the file (a
    pipeline that only packs them, so they can be compared); the label's shape is kept as ori_shape,
    so that mmseg brings the scores back to it."""
    from mmseg.utils import register_all_modules

    from harness.models.mmseg_predictor import ImageDataset

    register_all_modules(init_default_scope=True)
    root, data, _ = setup
    dataset = load_dataset(data)
    pipeline = [dict(type="PackSegInputs")]
    stem = dataset.stems()[3]
    clean = read_rgb(dataset.image_path(stem))
    for name in CONDITIONS:
        condition = named(name)
        item = ImageDataset(dataset, [stem], pipeline, condition=condition)[0]
        expected = condition.apply(clean, stem)[:, :, ::-1]  # BGR, as mmcv's loader gives it
        got = item["inputs"].numpy().transpose(1, 2, 0)
        assert got.shape == expected.shape and np.array_equal(got, expected), name
        assert tuple(item["data_samples"].metainfo["ori_shape"]) == clean.shape[:2]
    assert not np.array_equal(ImageDataset(dataset, [stem], pipeline)[0]["inputs"].numpy().transpose(1, 2, 0),
                              named("noise-32").apply(clean, stem)[:, :, ::-1])


def _run(args, out):
    rc, _, err = zeg_eval_subprocess(*args, "--out", out)
    assert rc == 0, err
    return out


def test_sigint_during_a_condition_then_rerun(setup, tmp_path):
    root, data, protocol = setup
    args = ["run", protocol, "--data", data, "--chunk-size", "2", "--workers", "2", "--loader-workers", "1"]
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    noisy = RecordSet(run, "tiny", "resolution-0.5")
    first_chunk = noisy.folder("images") / "whole-00001.parquet"
    deadline = time.time() + 300
    while not first_chunk.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    m = manifest(run)
    assert m["models"]["tiny"]["conditions"]["noise-32"] == "complete"
    assert m["models"]["tiny"]["conditions"]["resolution-0.5"] == "interrupted"
    done = len(read_tables(noisy)["images"])
    assert 4 <= done < N_IMAGES
    _run(args, run)
    timings = manifest(run)["models"]["tiny"]["timings"]
    last = {t["condition"]: t for t in timings[-4:]}
    assert "images" not in last["clean"] and "images" not in last["noise-32"]  # nothing recomputed
    for condition in ["clean", *CONDITIONS]:
        images = read_tables(RecordSet(run, "tiny", condition))["images"]["image"]
        assert len(images) == N_IMAGES and images.is_unique, condition
    uninterrupted = _run(args, tmp_path / "uninterrupted")
    for file in ("summary.json", "summary_conditions.json", "per_bucket.csv", "robustness.csv",
                 "robustness_summary.csv"):
        assert (run / file).read_bytes() == (uninterrupted / file).read_bytes(), file


def test_robustness_tables(setup, tmp_path):
    root, data, protocol = setup
    run = _run(["run", protocol, "--data", data, "--workers", "2", "--save-inputs"], tmp_path / "a")
    by_condition = read_json(run / "summary_conditions.json")
    table = pd.read_csv(run / "robustness.csv")
    assert set(table.columns) >= {"model", "corruption", "severity", "metric", "value"}
    assert set(table["condition"]) == {"clean", *CONDITIONS}
    assert set(table.loc[table["condition"] == "clean", "severity"]) == {0}
    row = table[(table["model"] == "tiny") & (table["condition"] == "jpeg-10") & (table["metric"] == "mIoU")].iloc[0]
    assert (row["corruption"], row["severity"]) == ("jpeg", 10)
    assert row["value"] == pytest.approx(by_condition["jpeg-10"]["tiny"]["mIoU"])
    assert row["difference"] == pytest.approx(by_condition["clean"]["tiny"]["mIoU"] - row["value"])
    assert row["difference_lo"] <= row["difference"] <= row["difference_hi"]
    # the oracle does not look at the image: the same under every condition, no difference at all
    oracle = table[(table["model"] == "oracle") & (table["metric"] == "mIoU")]
    assert (oracle["value"] == 100).all() and (oracle["difference_hi"] == 0).all()
    # --save-inputs: each condition's images, what the model saw
    dataset = load_dataset(data)
    stem = dataset.stems()[0]
    saved = read_rgb(run / "inputs" / "noise-32" / f"{stem}.png")
    assert np.array_equal(saved, named("noise-32").apply(read_rgb(dataset.image_path(stem)), stem))
    assert read_rgb(run / "inputs" / "resolution-0.5" / f"{stem}.png").shape == (48, 64, 3)
    assert not (run / "inputs" / "clean").exists()
    # run again from nothing: the same bytes
    again = _run(["run", protocol, "--data", data, "--workers", "1"], tmp_path / "b")
    for file in ("robustness.csv", "robustness_summary.csv"):
        assert (run / file).read_bytes() == (again / file).read_bytes(), file


def test_shards_under_conditions_merge_into_the_whole(setup, tmp_path):
    root, data, protocol = setup
    args = ["run", protocol, "--data", data, "--workers", "1", "--limit", "8"]
    whole = _run(args, tmp_path / "whole")
    run = tmp_path / "run"
    rc, _, err = zeg_eval_subprocess(*args, "--out", run, "--shard", "1/2")
    assert rc == 0, err
    assert not (run / "robustness.csv").exists()  # written once every shard is done
    assert len(read_tables(RecordSet(run, "tiny", "jpeg-10"))["images"]) == 4
    rc, _, err = zeg_eval_subprocess(*args, "--out", run, "--shard", "0/2")
    assert rc == 0, err
    for file in ("summary_conditions.json", "robustness.csv", "robustness_summary.csv"):
        assert (run / file).read_bytes() == (whole / file).read_bytes(), file
