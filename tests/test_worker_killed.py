"""A metric worker killed by the OS (SIGKILL, as the OOM killer does) mid-run: the run ends within
seconds with one line and a non-zero exit (before, it waited forever at 0% CPU for the lost image),
what was committed stays, and a rerun completes to the same summary as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import zeg_eval_subprocess
from helpers.data import write_dataset, write_predictions
from helpers.processes import HAS_PROC, children, state

pytestmark = pytest.mark.slow  # subprocesses

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "all.yaml"
N_IMAGES, HEIGHT, WIDTH, CLASSES = 40, 1080, 1440, 20  # about 7 s of metrics on 2 workers


def _scene(rng):
    grid = rng.integers(0, CLASSES, (HEIGHT // 48, WIDTH // 48)).astype(np.uint8)
    label = cv2.resize(grid, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    for _ in range(60):  # small objects
        y, x, s = rng.integers(0, HEIGHT - 20), rng.integers(0, WIDTH - 20), rng.integers(3, 20)
        label[y:y + s, x:x + s] = rng.integers(0, CLASSES)
    return label


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("killed")
    rng = np.random.default_rng(0)
    labels = {f"img{i:03d}": _scene(rng) for i in range(N_IMAGES)}
    data = write_dataset(root / "data", labels, [f"c{i}" for i in range(CLASSES)])
    pred = write_predictions(root / "pred", {stem: np.roll(label, 3, axis=1) for stem, label in labels.items()})
    return root, data, pred


def _args(data, pred, out):
    return ["run", PROTOCOL, "--data", data, "--predictions", pred, "--out", out, "--workers", "2",
            "--chunk-size", "2"]


def _chunks(out: Path) -> list[Path]:
    return sorted(out.glob("records/images/model=*/condition=clean/*.parquet"))


@pytest.mark.skipif(not HAS_PROC, reason="finds the workers through /proc")
def test_killed_worker_ends_the_run_in_one_line_and_a_rerun_completes(inputs):
    root, data, pred = inputs
    rc, _, err = zeg_eval_subprocess(*_args(data, pred, root / "whole"))
    assert rc == 0, err
    expected = json.loads((root / "whole" / "summary.json").read_text())

    out = root / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, _args(data, pred, out))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (_chunks(out) and len(children(proc.pid)) >= 2):  # records appear: the workers are busy
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a worker was killed"
            time.sleep(0.02)
        while (busy := next((c for c in children(proc.pid) if state(c) == "R"), None)) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "no worker seen computing"
            time.sleep(0.01)
        committed = len(_chunks(out))
        os.kill(busy, signal.SIGKILL)  # a worker computing an image: that image's result never comes
        killed_at = time.monotonic()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("the run still waits 20 s after a metric worker was killed")
        assert time.monotonic() - killed_at < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode not in (0, 2, None), (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) <= 400, err
    for needle in ("a metric worker was killed", "signal 9", "out of memory", "rerun"):
        assert needle in lines[0], lines[0]
    assert len(_chunks(out)) >= committed  # nothing committed is lost
    assert not (out / "summary.json").exists()

    rc, _, err = zeg_eval_subprocess(*_args(data, pred, out))
    assert rc == 0, err
    assert json.loads((out / "summary.json").read_text()) == expected
