"""A model given as saved label maps `<stem>.png` (e.g. written by another codebase).

    models:
      - name: other_codebase
        predictions: preds/other        # or on the command line: --predictions NAME=DIR

Under a condition other than `clean` (a protocol's `conditions:`), the maps are read from
`<folder>/<condition>/<stem>.png`.

Its records are tied to the content of each prediction file (its digest is recorded with the
image), not to the folder's path: a moved folder resumes, a swapped one is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.imageio import read_label_png
from harness.errors import UserError
from harness.files import check_component
from harness.models.base import (
    NAME,
    ModelKind,
    Predictor,
    check_allowed,
    check_name,
    check_type,
    resolve_path,
)


@dataclass(frozen=True)
class FolderSpec:
    name: str
    path: Path

    kind = "predictions"


class FolderPredictor(Predictor):
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

    def input_path(self, stem: str) -> Path:
        return self.path / f"{stem}.png"

    def where(self, stem: str):
        return self.path / f"{stem}.png"

    def run_info(self) -> dict:
        return {"path": str(self.path.resolve())}

    def under(self, condition) -> Predictor:
        """A condition's maps lie in <folder>/<condition name>/ (the clean ones in the folder itself)."""
        if condition.is_clean:
            return self
        folder = self.path / check_component(condition.name, "condition")
        if not folder.is_dir():
            raise UserError(f"no predictions for condition '{condition.name}' (expected {folder}/<stem>.png)", folder)
        return FolderPredictor(folder)


class FolderKind(ModelKind):
    name = "predictions"
    key = "predictions"

    def parse(self, entry: dict, where: str, protocol_path) -> FolderSpec:
        check_allowed(entry, {"name", "predictions"}, "predictions", where, protocol_path)
        name = entry.get("name")
        check_name(name, where, protocol_path)
        check_type(entry, "predictions", str, f"{where} ({name})", protocol_path, "a folder path")
        base = protocol_path.parent if protocol_path is not None else None
        return FolderSpec(name=name, path=resolve_path(entry["predictions"], base))

    def describe(self, spec: FolderSpec) -> dict:
        return {"kind": self.name, "name": spec.name, "path": str(spec.path.resolve())}

    def identity(self, spec: FolderSpec) -> dict:
        return {"kind": self.name}  # the files themselves are checked image by image

    def open(self, spec: FolderSpec, dataset, runtime) -> Predictor:
        return FolderPredictor(spec.path)


def parse_prediction_arg(text: str) -> FolderSpec:
    """`--predictions NAME=DIR` or `DIR` (the model is then named after the folder)."""
    name, sep, path = text.partition("=")
    if not sep:
        path, name = text, Path(text.rstrip("/")).name
    if not name or not NAME.match(name):
        raise UserError(f"bad model name in --predictions '{text}'")
    return FolderSpec(name=name, path=Path(path))
