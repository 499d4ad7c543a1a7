"""Scoring prediction folders starts fast: it never imports torch, mmcv, mmseg or matplotlib."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.data import write_dataset, write_predictions

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "all.yaml"


def test_scoring_predictions_imports_no_heavy_stack(tmp_path):
    label = np.zeros((8, 8), np.uint8)
    label[2:5, 2:5] = 1
    data = write_dataset(tmp_path / "data", {"a": label}, ["bg", "thing"])
    pred = write_predictions(tmp_path / "pred", {"a": label})
    code = ("import sys; from harness.cli import main; "
            f"rc = main(['run', {str(PROTOCOL)!r}, '--data', {str(data)!r}, '--predictions', {str(pred)!r}, "
            f"'--out', {str(tmp_path / 'run')!r}]); "
            "print(sorted(m for m in ('torch', 'mmcv', 'mmseg', 'mmengine', 'matplotlib') if m in sys.modules)); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_metric_workers_are_forked_before_pandas_is_imported():
    """pandas (0.2 s of import) is loaded only after the workers start: `harness.run.runner` and the
    scoring path must not import it at module level."""
    code = ("import sys; import harness.cli, harness.run.runner, harness.run.scoring, harness.models.folder, "
            "harness.models.baselines, harness.evaluation.evaluate; "
            "from harness.metrics import boundary, objects, occlusion, size, standard; "
            "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
