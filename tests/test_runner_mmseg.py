"""mmseg models through the runner: a tiny config built in the tests (random weights: plumbing, not
accuracy), on the generated sample and on real COCO photos; bad input is one line each."""
import hashlib
import shutil

import numpy as np
import pytest
import yaml
from helpers.cli import manifest, one_line_error, summary, tree, zeg_eval_subprocess
from helpers.data import CONFIGS, REALDATA
from helpers.models import save_checkpoint

from harness.data.dataset import load_dataset
from harness.data.imageio import read_label_png
from harness.data.sample import SampleConfig, make_sample

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmseg")
    data = make_sample(root / "sample", SampleConfig(n_images=6, height=120, width=160))
    ckpt = save_checkpoint(CONFIGS / "tiny_fcn.py", root / "tiny.pth")
    wide = save_checkpoint(CONFIGS / "tiny_fcn_wide.py", root / "wide.pth")
    import torch

    state = torch.load(wide, weights_only=True)
    del state["state_dict"]["backbone.stem.0.weight"]  # and one key missing
    torch.save(state, wide)
    return root, data, ckpt, wide


def write_protocol(path, models, families=None, data=None):
    body = {"name": "mm", "families": families or {"standard": {}}, "models": models}
    if data:
        body["data"] = str(data)
    path.write_text(yaml.safe_dump(body))
    return path


def test_tiny_model_whole_and_slide(setup, tmp_path):
    root, data, ckpt, _ = setup
    protocol = write_protocol(tmp_path / "p.yaml", [
        {"name": "tiny", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": "${TINY_CKPT}"},
        {"name": "tiny_slide", "config": str(CONFIGS / "tiny_fcn_slide.py"), "checkpoint": str(ckpt),
         "batch_size": 2, "precision": "bf16"},
        {"name": "oracle", "baseline": "oracle"}], families={"standard": {}, "size": {}})
    run = tmp_path / "run"
    rc, out, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", run, "--save-predictions",
                            "--loader-workers", "1", env={"TINY_CKPT": str(ckpt)})
    assert rc == 0, err
    s = summary(run)
    assert set(s) == {"tiny", "tiny_slide", "oracle"} and s["tiny"]["n_images"] == 6
    assert 0 <= s["tiny"]["mIoU"] < 100 and "object_recall@small" in s["tiny"]
    m = manifest(run)
    entry = m["models"]["tiny"]
    assert entry["identities"]["clean"]["model"]["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert entry["run_info"] == {"device": "cpu", "precision": "fp32"} and entry["status"] == "complete" and entry["timings"][-1]["images"] == 6
    assert entry["timings"][-1]["predict_seconds"] > 0
    pred = read_label_png(run / "predictions" / "tiny" / "sample_0000.png")
    assert pred.shape == (120, 160) and pred.max() < 12
    assert "autocast is for GPUs" in err  # bf16 asked on CPU: said once, run in fp32


def test_tiny_model_on_real_coco_photos(setup, tmp_path, capsys):
    root, _, _, _ = setup
    coco = REALDATA / "coco_stuff_val2017_10"
    data = tmp_path / "coco"
    data.mkdir()
    (data / "dataset.yaml").write_text(yaml.safe_dump({"preset": "coco_stuff164k", "labels_dir": str(coco / "labels171"),
                                                       "images_dir": str(coco / "images"), "label_suffix": ".png"}))
    ckpt = save_checkpoint(CONFIGS / "tiny_fcn.py", tmp_path / "tiny171.pth", **{"model.decode_head.num_classes": 171})
    protocol = write_protocol(tmp_path / "p.yaml", [
        {"name": "tiny171", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt),
         "cfg_options": {"model.decode_head.num_classes": 171}},
        {"name": "oracle", "baseline": "oracle"}, {"name": "drop_small", "baseline": "drop_small"}],
        families={"standard": {}, "size": {}}, data=data)
    rc, _, err = zeg_eval_subprocess("run", protocol, "--out", tmp_path / "run", "--limit", "4")
    assert rc == 0, err
    s = summary(tmp_path / "run")
    assert s["oracle"]["mIoU"] == 100 and s["oracle"]["object_recall@small"] == 100
    assert s["drop_small"]["object_recall@small"] < 50 and s["tiny171"]["n_images"] == 4
    # The model's class count is checked against the dataset's.
    bad = write_protocol(tmp_path / "bad.yaml", [{"name": "tiny12", "config": str(CONFIGS / "tiny_fcn.py"),
                                                  "checkpoint": str(ckpt)}], data=data)
    rc, err = run_in_process(capsys, "run", bad, "--out", tmp_path / "run2", "--limit", "1")
    one_line_error(rc, err, "predicts 12 classes but the dataset has 171")


def run_in_process(capsys, *args):
    """The CLI in this process (no interpreter start, no torch import per call): (rc, stderr)."""
    from harness.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def test_bad_model_input_is_one_line_and_writes_nothing_outside(setup, tmp_path, capsys):
    root, data, ckpt, wide = setup

    def outside_run():
        return {p for p in tree(tmp_path) | tree(data) if p.parts[0] != "run"}

    def check(models, *needles, data_dir=data):
        protocol = write_protocol(tmp_path / "p.yaml", models)
        before = outside_run()
        rc, err = run_in_process(capsys, "run", protocol, "--data", data_dir, "--out", tmp_path / "run",
                                 "--limit", "2", "--workers", "1")
        one_line_error(rc, err, *needles)
        assert outside_run() == before  # nothing written outside the run folder
        shutil.rmtree(tmp_path / "run", ignore_errors=True)

    check([{"name": "m", "config": str(tmp_path / "nope.py"), "checkpoint": str(ckpt)}],
          "nope.py", "config file does not exist")
    check([{"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(wide)}],
          wide, "does not fit the model", "missing", "unexpected", "shape mismatch")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    check([{"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(garbage)}],
          garbage, "cannot read the checkpoint")
    broken = tmp_path / "broken.py"
    broken.write_text("model = dict(type='NoSuchSegmentor')\n")
    check([{"name": "m", "config": str(broken), "checkpoint": str(ckpt)}], broken, "cannot build the model")
    # A test mode mmseg does not know (was mmseg's AssertionError with a traceback).
    check([{"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt),
            "cfg_options": {"model.test_cfg.mode": "bogus"}}],
          "tiny_fcn.py", "model.test_cfg.mode must be 'whole' or 'slide', not 'bogus'")
    # Any failure inside the model's forward is one line naming the model and image.
    check([{"name": "m", "config": str(CONFIGS / "tiny_fcn_slide.py"), "checkpoint": str(ckpt),
            "cfg_options": {"model.test_cfg.stride": [0, 0]}}],
          "tiny_fcn_slide.py", "model 'm' failed on image", "check the config and cfg_options")
    # An image that cannot be decoded.
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    (copy / "images" / "sample_0001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    check([{"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt)}],
          copy / "images" / "sample_0001.png", "cannot decode image", data_dir=copy)
    # A missing checkpoint is not an error: one line, the model skipped, the run goes on.
    protocol = write_protocol(tmp_path / "p.yaml", [
        {"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(tmp_path / "absent.pth")},
        {"name": "oracle", "baseline": "oracle"}])
    rc, err = run_in_process(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--limit", "2")
    assert rc == 0 and len(err.strip().splitlines()) == 1 and "skipping model 'm'" in err, err
    assert manifest(tmp_path / "run")["models"]["m"]["status"] == "skipped"
    assert list(summary(tmp_path / "run")) == ["oracle"]


def test_pickled_checkpoint_needs_weights_only_false(setup, tmp_path, capsys):
    import torch

    root, data, ckpt, _ = setup
    state = torch.load(ckpt, weights_only=True)
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": state["state_dict"], "meta": {"array": np.arange(3)}}, legacy)
    models = [{"name": "m", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(legacy)}]
    protocol = write_protocol(tmp_path / "p.yaml", models)
    rc, err = run_in_process(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--limit", "1")
    one_line_error(rc, err, legacy, "weights_only: false")
    models[0]["weights_only"] = False
    protocol = write_protocol(tmp_path / "p.yaml", models)
    rc, err = run_in_process(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--limit", "1",
                             "--workers", "0")
    assert rc == 0, err


def test_zegclip_port_through_the_runner(setup, tmp_path, capsys):
    """The ZegCLIP port (tiny config, random weights) with the dataset's class names, its own loader."""
    import torch

    from harness.models import mmseg_predictor
    from harness.models.mmseg_model import MmsegSpec

    root, data, _, _ = setup
    config = CONFIGS.parent.parent / "configs" / "zegclip" / "tiny_test.py"
    options = {"model.class_names": "${dataset.classes}", "model.seen_idx": "${dataset.seen_ids}",
               "model.unseen_idx": "${dataset.unseen_ids}", "model.decode_head.num_classes": 9}
    spec = MmsegSpec(name="z", config=config, checkpoint=None, cfg_options=options)
    torch.manual_seed(0)
    model = mmseg_predictor.build_model(spec, mmseg_predictor.load_config(spec, load_dataset(data)), "cpu")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "z.pth")
    protocol = write_protocol(tmp_path / "p.yaml", [{"name": "zegclip_tiny", "config": str(config),
                                                      "checkpoint": str(tmp_path / "z.pth"), "loader": "zegclip",
                                                      "cfg_options": options}])
    rc, err = run_in_process(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run", "--limit", "2",
                             "--workers", "1")
    assert rc == 0, err
    assert summary(tmp_path / "run")["zegclip_tiny"]["n_images"] == 2
