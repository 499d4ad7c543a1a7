"""The standard family on the real samples, against mmseg's own IoUMetric and LoadAnnotations."""
import numpy as np
import pytest
import torch
import yaml
from helpers.data import write_protocol

from harness.data.dataset import load_dataset, presets
from harness.data.imageio import write_label_png
from harness.run.command import run_from_args

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


def perturb(gt: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """A plausible wrong prediction: ignore filled, a band of pixels relabelled, a class swapped."""
    rng = np.random.default_rng(seed)
    pred = np.where(gt == 255, 0, gt).copy()
    h, w = pred.shape
    y = rng.integers(0, h // 2)
    pred[y: y + h // 5] = rng.integers(0, num_classes)
    present = np.unique(gt[gt != 255])
    pred[pred == present[0]] = (present[0] + 1) % num_classes
    return pred


def mmseg_reference(gts, preds, num_classes, unseen_ids):
    from mmseg.evaluation.metrics import IoUMetric

    metric = IoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": [str(i) for i in range(num_classes)]}
    for gt, pred in zip(gts, preds):
        sample = {"pred_sem_seg": {"data": torch.from_numpy(pred)[None]},
                  "gt_sem_seg": {"data": torch.from_numpy(gt)[None]}}
        metric.process({}, [sample])
    results = tuple(zip(*metric.results))
    total = [sum(r) for r in results]
    per_class = IoUMetric.total_area_to_metrics(*total, metrics=["mIoU"], nan_to_num=None)
    iou = 100 * np.asarray(per_class["IoU"], dtype=np.float64)
    seen = np.setdiff1d(np.arange(num_classes), unseen_ids)
    return {"aAcc": 100 * float(per_class["aAcc"]), "mIoU": np.nanmean(iou),
            "mIoU_seen": np.nanmean(iou[seen]), "mIoU_unseen": np.nanmean(iou[unseen_ids])}


def test_coco_stuff_171_with_zegclip_split_matches_mmseg(realdata, tmp_path):
    root = realdata / "coco_stuff_val2017_10"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset.yaml").write_text(yaml.safe_dump(
        {"preset": "coco_stuff164k", "labels_dir": str(root / "labels171"), "images_dir": str(root / "images"),
         "label_suffix": ".png"}))
    dataset = load_dataset(tmp_path / "data")
    assert dataset.num_classes == 171 and dataset.unseen_mask.sum() == 15
    gts, preds = [], []
    (tmp_path / "pred").mkdir()
    for i, stem in enumerate(dataset.stems()):
        gt = dataset.load_label(stem)
        pred = perturb(gt, 171, i)
        write_label_png(tmp_path / "pred" / f"{stem}.png", pred)
        gts.append(gt), preds.append(pred)
    protocol = write_protocol(tmp_path / "p.yaml", {"standard": {}})
    _, summary = run_from_args(protocol, tmp_path / "data", [f"m={tmp_path / 'pred'}"], tmp_path / "run")
    unseen_ids = np.flatnonzero(dataset.unseen_mask)
    ref = mmseg_reference(gts, preds, 171, unseen_ids)
    for key, value in ref.items():
        assert summary["m"][key] == pytest.approx(value, rel=1e-6), key  # mmseg divides in float32
    s, u = ref["mIoU_seen"], ref["mIoU_unseen"]
    assert summary["m"]["hIoU"] == pytest.approx(2 * s * u / (s + u))


def test_ade20k_reduce_zero_label_matches_mmseg_loader(realdata, tmp_path):
    from mmseg.datasets.transforms import LoadAnnotations

    root = realdata / "ade20k_val_3"
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(
        {"preset": "ade20k", "labels_dir": str(root / "annotations"), "images_dir": str(root / "images")}))
    dataset = load_dataset(tmp_path)
    assert dataset.reduce_zero_label and dataset.num_classes == 150
    for stem in dataset.stems():
        ours = dataset.load_label(stem)
        loaded = LoadAnnotations(reduce_zero_label=True)({"seg_map_path": str(dataset.label_path(stem)),
                                                          "reduce_zero_label": True, "seg_fields": []})
        np.testing.assert_array_equal(ours, loaded["gt_seg_map"])
        assert (ours == 255).any() and ours[ours != 255].max() < 150


def test_presets_equal_mmseg_metainfo():
    from mmseg.datasets import (
        ADE20KDataset,
        COCOStuffDataset,
        PascalContextDataset59,
        PascalVOCDataset,
    )

    known = presets()
    assert known["coco_stuff164k"]["classes"] == list(COCOStuffDataset.METAINFO["classes"])
    assert known["ade20k"]["classes"] == list(ADE20KDataset.METAINFO["classes"])
    assert known["pascal_context59"]["classes"] == list(PascalContextDataset59.METAINFO["classes"])
    # ZegCLIP's VOC has 20 classes: mmseg's 21 without background
    assert known["voc12"]["classes"] == list(PascalVOCDataset.METAINFO["classes"])[1:]
    coco = known["coco_stuff164k"]["classes"]
    zegclip_unseen_ids = [19, 23, 28, 29, 36, 51, 76, 88, 94, 112, 133, 136, 137, 157, 160]  # FACTS.md section 4
    assert known["coco_stuff164k"]["unseen"] == [coco[i] for i in zegclip_unseen_ids]
