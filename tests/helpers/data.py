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


def reference_prediction(gt: np.ndarray, num_classes: int, kind: str) -> np.ndarray:
    """The predictions the peers' reference outputs were made with (tests/reference/*.json):
    `shift7`, the label with ignore pixels set to 0 rolled 7 pixels right; `swap_left`, its left half
    (columns < W // 2) moved to the next class id (c + 1) % C."""
    base = np.where(gt == 255, 0, gt).astype(np.int64)
    if kind == "shift7":
        return np.roll(base, 7, axis=1)
    out = base.copy()
    half = gt.shape[1] // 2
    out[:, :half] = (out[:, :half] + 1) % num_classes
    return out


def score_reference_predictions(sample: str, kind: str, families: dict, tmp_path: Path, capsys) -> dict:
    """summary.json's values for model `m`: `families` run on the real sample with its reference prediction."""
    from harness.data.dataset import load_dataset
    from helpers.cli import read_json, zeg_eval_inprocess
    from helpers.realdata import write_real_dataset

    data = write_real_dataset(sample, tmp_path / "data")
    dataset = load_dataset(data)
    preds = tmp_path / "pred"
    preds.mkdir()
    for stem in dataset.stems():
        gt = dataset.load_label(stem).astype(np.int64)
        write_label_png(preds / f"{stem}.png", reference_prediction(gt, dataset.num_classes, kind))
    protocol = write_protocol(tmp_path / "p.yaml", families, name="reference")
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", f"m={preds}",
                                    "--out", tmp_path / "run", "--workers", "0")
    assert rc == 0, err
    return read_json(tmp_path / "run" / "summary.json")["m"]
