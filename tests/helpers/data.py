"""Tiny datasets, prediction folders and protocols written to tmp folders, and the test assets' paths."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from harness.data.imageio import write_label_png
from helpers.realdata import REALDATA  # noqa: F401 - re-exported: where the real samples lie

TESTS = Path(__file__).resolve().parents[1]
PROTOCOL = TESTS / "runner_protocol.yaml"   # the runner tests' protocol
CONFIGS = TESTS / "configs"                 # tiny mmseg configs


def write_dataset(root: Path, labels: dict[str, np.ndarray], classes, **fields) -> Path:
    """A dataset folder with dataset.yaml and labels/<stem>.png."""
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for stem, label in labels.items():
        write_label_png(root / "labels" / f"{stem}.png", label)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": list(classes), **fields}))
    return root


def write_predictions(root: Path, preds: dict[str, np.ndarray]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for stem, pred in preds.items():
        write_label_png(root / f"{stem}.png", pred)
    return root


def write_protocol(path: Path, families: dict, name="test") -> Path:
    path.write_text(yaml.safe_dump({"name": name, "families": families}))
    return path
