"""The families as an mmseg evaluator give the numbers of `zeg-eval run` and, for the standard
family, of mmseg's own IoUMetric."""
import numpy as np
import pytest
import torch
from helpers.data import write_dataset, write_predictions, write_protocol

import harness.evaluation.mmseg_metric  # noqa: F401  (registers ZegEvalMetric)
from harness.run.command import run_from_args

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


def _maps(seed=3, n=4, num_classes=5):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n):
        gt = np.zeros((40, 48), np.uint8)
        for _ in range(6):
            y, x = rng.integers(0, 36), rng.integers(0, 44)
            gt[y: y + rng.integers(2, 12), x: x + rng.integers(2, 12)] = rng.integers(1, num_classes)
        gt[rng.random(gt.shape) < 0.02] = 255
        pred = np.where(rng.random(gt.shape) < 0.85, np.where(gt == 255, 0, gt), rng.integers(0, num_classes, gt.shape))
        gts.append(gt), preds.append(pred.astype(np.uint8))
    return gts, preds


def _evaluate(metric, gts, preds):
    for i, (gt, pred) in enumerate(zip(gts, preds)):
        metric.process({}, [{"img_path": f"im{i}", "pred_sem_seg": {"data": torch.from_numpy(pred)[None]},
                             "gt_sem_seg": {"data": torch.from_numpy(gt)[None]}}])
    return metric.compute_metrics(metric.results)


def test_registered_evaluator_equals_the_cli(tmp_path):
    from mmseg.registry import METRICS

    classes = ["bg", "a", "b", "c", "d"]
    gts, preds = _maps()
    metric = METRICS.build(dict(type="ZegEvalMetric", families=dict(standard={}, size={}), unseen=["d"]))
    metric.dataset_meta = {"classes": classes}
    ours = _evaluate(metric, gts, preds)

    data = write_dataset(tmp_path / "data", {f"im{i}": g for i, g in enumerate(gts)}, classes, unseen=["d"])
    pred_dir = write_predictions(tmp_path / "pred", {f"im{i}": p for i, p in enumerate(preds)})
    protocol = write_protocol(tmp_path / "p.yaml", {"standard": {}, "size": {}})
    _, cli = run_from_args(protocol, data, [f"m={pred_dir}"], tmp_path / "run")
    for key in ("mIoU", "aAcc", "hIoU", "object_recall@small", "object_IoU@small"):
        assert ours[key] == pytest.approx(cli["m"][key], nan_ok=True), key

    from mmseg.evaluation.metrics import IoUMetric

    reference = IoUMetric(iou_metrics=["mIoU"])
    reference.dataset_meta = {"classes": classes}
    ref = _evaluate(reference, gts, preds)
    assert ours["mIoU"] == pytest.approx(ref["mIoU"], abs=0.006)  # mmseg rounds to 2 decimals
    assert ours["aAcc"] == pytest.approx(ref["aAcc"], abs=0.006)
