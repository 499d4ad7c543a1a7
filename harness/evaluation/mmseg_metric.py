"""The metric families as an mmseg evaluator, for a `val_evaluator` / `test_evaluator` config:

    custom_imports = dict(imports=['harness.evaluation.mmseg_metric'], allow_failed_imports=False)
    test_evaluator = dict(type='ZegEvalMetric', families=dict(standard={}, size={}, boundary={}),
                          unseen=['cow', 'giraffe'], things=None)

Each processed sample becomes the same per-image records as `zeg-eval run` (so the numbers are the
same as scoring saved predictions); `compute_metrics` aggregates them. Values are in percent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS

from harness.data.dataset import DatasetSpec
from harness.evaluation.aggregate import summarize
from harness.evaluation.evaluate import ImageInputs, evaluate_image
from harness.evaluation.protocol import Protocol, family_config
from harness.evaluation.tables import tables_to_frames
from harness.metrics.registry import FAMILIES


@METRICS.register_module()
class ZegEvalMetric(BaseMetric):
    """zeg-eval's families (harness.metrics.registry) computed inside an mmseg test loop."""

    default_prefix = "zeg"

    def __init__(self, families: dict | None = None, unseen=(), things=None, ignore_index: int = 255,
                 collect_device: str = "cpu", prefix: str | None = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        families = {"standard": {}} if families is None else families
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"ZegEvalMetric: unknown families {sorted(unknown)} (known: {sorted(FAMILIES)})")
        self.protocol = Protocol(name="mmseg", families={k: family_config(k, families[k])
                                                         for k in FAMILIES if k in families})
        self.unseen, self.things, self.ignore_index = tuple(unseen), things, ignore_index

    def _dataset(self) -> DatasetSpec:
        classes = tuple(self.dataset_meta["classes"])
        return DatasetSpec(root=Path("."), name="mmseg", classes=classes, ignore_index=self.ignore_index,
                           unseen=self.unseen, things=None if self.things is None else tuple(self.things))

    def process(self, data_batch, data_samples) -> None:
        dataset = self._dataset()
        for sample in data_samples:
            pred = sample["pred_sem_seg"]["data"].squeeze().cpu().numpy().astype(np.int32)
            gt = sample["gt_sem_seg"]["data"].squeeze().cpu().numpy().astype(np.int32)
            tables = evaluate_image(ImageInputs(gt=gt, pred=pred), dataset, self.protocol)
            self.results.append((sample.get("img_path", str(len(self.results))), tables))

    def compute_metrics(self, results: list) -> dict:
        # index-prefixed names keep images apart when several share a file name
        merged = tables_to_frames((f"{i}:{image}", tables) for i, (image, tables) in enumerate(results))
        summary = summarize(merged, self._dataset(), self.protocol)
        return {k: float(v) for k, v in summary.scalars.items()}
