"""Ctrl-C stops a run cleanly; the next run continues to the summary of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from helpers.cli import manifest, summary, zeg_eval_subprocess
from helpers.data import CONFIGS
from helpers.models import save_checkpoint

from harness.data.sample import SampleConfig, make_sample
from harness.run.records import RecordSet, read_tables

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop
N_IMAGES = 96


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    # enough images that the run cannot finish between the test seeing the first chunk and its Ctrl-C,
    # even when the test process is descheduled for a few seconds on a loaded machine (with 24, a run on
    # a loaded machine once exited 0 instead of 130: it had finished before the signal came)
    data = make_sample(root / "sample", SampleConfig(n_images=N_IMAGES, height=120, width=160))
    ckpt = save_checkpoint(CONFIGS / "tiny_fcn.py", root / "tiny.pth")
    protocol = root / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "resume", "families": {"standard": {}, "size": {}}, "models": [
        {"name": "drop_small", "baseline": "drop_small"},
        {"name": "tiny", "config": str(CONFIGS / "tiny_fcn.py"), "checkpoint": str(ckpt)}]}))
    return root, data, protocol


def test_sigint_then_rerun_gives_the_uninterrupted_summary(setup, tmp_path):
    root, data, protocol = setup
    args = ["run", protocol, "--data", data, "--chunk-size", "2", "--workers", "2", "--loader-workers", "1"]
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    tiny = RecordSet(run, "tiny")
    first_chunk = tiny.folder("images") / "whole-00001.parquet"
    deadline = time.time() + 120
    while not first_chunk.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err.splitlines()[-1]
    m = manifest(run)
    assert m["status"] == "interrupted" and m["models"]["tiny"]["status"] == "interrupted"
    done = len(read_tables(tiny)["images"])
    assert 4 <= done < N_IMAGES
    assert not list((run / "records").rglob("*.tmp"))
    # Rerun: continues (the baseline and the committed images are not recomputed).
    rc, out, err = zeg_eval_subprocess(*args, "--out", run)
    assert rc == 0, err
    m = manifest(run)
    assert m["models"]["drop_small"]["images_computed_last_run"] == 0
    assert m["models"]["tiny"]["images_computed_last_run"] == N_IMAGES - done
    images = read_tables(tiny)["images"]["image"]
    assert len(images) == N_IMAGES and images.is_unique
    # The same summary as a run that was never interrupted.
    rc, _, err = zeg_eval_subprocess(*args, "--out", tmp_path / "clean", "--chunk-size", "64")
    assert rc == 0, err
    assert summary(run) == summary(tmp_path / "clean")
    assert (run / "per_class.csv").read_text() == (tmp_path / "clean" / "per_class.csv").read_text()
