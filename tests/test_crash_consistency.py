"""Crash consistency: a run killed with SIGKILL at random moments (the main process, or one of its
metric workers as the OOM killer would), rerun after each kill, ends with the summary of an
uninterrupted run, and no image is recorded twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers.cli import zeg_eval_subprocess
from helpers.processes import HAS_PROC, children, state

from harness.data.sample import SampleConfig, make_sample

pytestmark = pytest.mark.slow  # many subprocesses

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "all.yaml"
MODELS = ("drop_small", "erode_2")
KILLS = 14
N_IMAGES = 40


def _args(data: Path, out: Path) -> list[str]:
    args = ["run", str(PROTOCOL), "--data", str(data), "--out", str(out), "--workers", "2", "--chunk-size", "2"]
    for model in MODELS:
        args += ["--model", model]
    return args


def _recorded_images(out: Path, model: str) -> list[str]:
    images = []
    for chunk in sorted((out / "records" / "images" / f"model={model}" / "condition=clean").glob("*.parquet")):
        images += pq.read_table(chunk, columns=["image"]).column("image").to_pylist()
    return images


@pytest.mark.skipif(not HAS_PROC, reason="finds the workers through /proc")
def test_sigkill_at_random_moments_then_rerun_gives_the_uninterrupted_summary(tmp_path):
    data = make_sample(tmp_path / "sample", SampleConfig(n_images=N_IMAGES))
    start = time.monotonic()
    rc, _, err = zeg_eval_subprocess(*_args(data, tmp_path / "whole"))
    whole_seconds = time.monotonic() - start
    assert rc == 0, err
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())

    rng = np.random.default_rng(0)
    killed = {"main": 0, "worker": 0, "finished first": 0}
    folders = [tmp_path / "killed0"]
    for _ in range(KILLS):
        out = folders[-1]
        done = sum(len(_recorded_images(out, m)) for m in MODELS) / (len(MODELS) * N_IMAGES)
        if done == 1:  # a new run folder, so that kills keep landing in the middle of work
            out = tmp_path / f"killed{len(folders)}"
            folders.append(out)
            done = 0.0
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *_args(data, out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if rng.random() < 0.35:  # a worker, once the workers compute, at a random moment after that
            while not children(proc.pid) and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0.0, 0.3)))
            workers = children(proc.pid)
            if proc.poll() is None and workers:
                os.kill(int(rng.choice(workers)), signal.SIGKILL)  # the run must notice and stop in one line
                killed["worker"] += 1
            else:
                killed["finished first"] += 1
        else:  # the main process, at a random moment of what is left of the run
            time.sleep(float(rng.uniform(0.05, max(0.1, whole_seconds * (1 - done)))))
            workers = children(proc.pid)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed["main"] += 1
            else:
                killed["finished first"] += 1
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        deadline = time.monotonic() + 10  # orphaned workers end on their own (they watch their parent)
        while any(state(w) not in ("", "Z", "X") for w in workers):
            assert time.monotonic() < deadline, "metric workers outlived their run"
            time.sleep(0.05)
    for out in folders:
        rc, _, err = zeg_eval_subprocess(*_args(data, out))
        assert rc == 0, err
        assert json.loads((out / "summary.json").read_text()) == expected
        for model in MODELS:
            images = _recorded_images(out, model)
            assert len(images) == len(set(images)) == N_IMAGES, (model, len(images), len(set(images)))
    print(f"kills: {killed}, run folders: {len(folders)}")
    assert killed["main"] >= 5 and killed["worker"] >= 2, killed
