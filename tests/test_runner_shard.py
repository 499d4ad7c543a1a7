"""Split runs: `--shard i/n` processes and torchrun (2 processes, gloo on CPU) merge into one summary
equal to the summary of a whole run."""
import sys

import pytest
import yaml
from helpers.cli import manifest, summary, zeg_eval_subprocess
from helpers.data import CONFIGS
from helpers.models import save_checkpoint

from harness.data.sample import SampleConfig, make_sample
from harness.run.records import RecordSet, read_tables

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard")
    data = make_sample(root / "sample", SampleConfig(n_images=7, height=96, width=128))
    ckpt = save_checkpoint(CONFIGS / "tiny_fcn.py", root / "tiny.pth")
    protocol = root / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "shard", "families": {"standard": {}, "size": {}}, "models": [
        {"name": "erode", "baseline": "boundary_shift", "pixels": -1},
        {"name": "tiny", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt)}]}))
    whole = root / "whole"
    rc, _, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", whole, "--workers", "1")
    assert rc == 0, err
    return root, data, protocol, summary(whole)


def test_shards_merge_into_the_whole_summary(setup, tmp_path):
    root, data, protocol, whole = setup
    run = tmp_path / "run"
    rc, out, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", run, "--shard", "1/2", "--workers", "1")
    assert rc == 0, err
    assert "shard 1/2 done" in err and not (run / "summary.json").exists()
    assert len(read_tables(RecordSet(run, "tiny"))["images"]) == 3  # images 1, 3, 5
    rc, out, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", run, "--shard", "0/2", "--workers", "1")
    assert rc == 0, err  # the last shard to finish writes the summary
    assert summary(run) == whole
    m = manifest(run)
    assert m["status"] == "complete" and m["models"]["tiny"]["shards"] == {"0/2": "complete", "1/2": "complete"}
    rc, _, err = zeg_eval_subprocess("run", protocol, "--data", data, "--out", run, "--shard", "2/2")
    assert rc == 2 and "--shard must be i/n" in err


def test_torchrun_two_processes(setup, tmp_path):
    root, data, protocol, whole = setup
    run = tmp_path / "run"
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "harness.cli", "run", str(protocol), "--data", str(data), "--out", str(run),
                           "--workers", "1", "--loader-workers", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert summary(run) == whole
    chunks = RecordSet(run, "tiny").folder("images").iterdir()
    assert sorted(p.name for p in chunks) == ["shard-0-of-2-00000.parquet", "shard-1-of-2-00000.parquet"]
    assert proc.stdout.count("tiny: mIoU") == 1  # rank 0 reports


def test_torchrun_rank_failure_stops_every_rank(setup, tmp_path):
    """A rank that fails (an undecodable image in its shard) makes the other stop, not wait."""
    import shutil
    import subprocess

    root, data, protocol, _ = setup
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "images" / "sample_0001.png").write_bytes(b"broken")  # image 1: rank 1's shard
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "harness.cli", "run", str(protocol), "--data", str(copy), "--out", str(tmp_path / "run"),
                           "--workers", "1", "--loader-workers", "0", "--model", "tiny"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    assert "sample_0001.png: cannot decode image" in proc.stderr
    assert "another shard of this run failed" in proc.stderr
    # (torchrun itself then prints its ChildFailedError report)
