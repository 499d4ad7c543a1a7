"""A model given as saved label maps `<stem>.png` (e.g. written by another codebase)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.data.imageio import read_label_png


class FolderPredictor:
    """Reads `<path>/<stem>.png`; picklable, runs in the metric worker processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError("prediction folder does not exist", self.path)

    def predict(self, stem: str, gt: np.ndarray, instances) -> np.ndarray:
        pred_path = self.path / f"{stem}.png"
        if not pred_path.is_file():
            raise UserError(f"missing prediction for '{stem}'", pred_path)
        return read_label_png(pred_path)

    def where(self, stem: str):
        return self.path / f"{stem}.png"
