"""Shared test helpers: tiny datasets written to tmp folders, and the real samples' location."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.data.imageio import write_label_png

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
if not REALDATA.is_dir():  # CI clones the repo next to ../shared as well; fall back to the fixed path
    REALDATA = Path("/work/shared/realdata")


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


@pytest.fixture
def realdata() -> Path:
    assert REALDATA.is_dir(), f"the real samples are expected at {REALDATA}"
    return REALDATA
