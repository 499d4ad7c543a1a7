"""A run folder: records of every model plus summary.json/csv, per_class.csv, per_bucket.csv, manifest.json.

    RUN/manifest.json         protocol, data, models (source, status, timings), versions, times
    RUN/summary.json          {model: {metric: value}}
    RUN/summary.csv           one row per model
    RUN/per_class.csv         one row per (model, class)
    RUN/per_bucket.csv        one row per (model, family, bucket kind, bucket)
    RUN/records/<model>/      per-image tables (harness.records)
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from harness.aggregate import ModelSummary

MANIFEST = "manifest.json"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("zeg-eval", "numpy", "pandas", "opencv-python", "connected-components-3d", "torch",
                    "mmengine", "mmcv", "mmsegmentation"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def model_dir(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / "records" / model


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True, default=str))
    os.replace(tmp, path)


def _finite(value):
    # JSON has no NaN: absent metrics (e.g. a bucket with no objects) are written as null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_outputs(run_dir: Path, summaries: dict[str, ModelSummary]) -> None:
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / "summary.json",
                      {m: {k: _finite(v) for k, v in s.scalars.items()} for m, s in summaries.items()})
    summary = pd.DataFrame([{"model": m, **s.scalars} for m, s in summaries.items()])
    summary.to_csv(run_dir / "summary.csv", index=False)
    per_class = [s.per_class.assign(model=m) for m, s in summaries.items()]
    per_bucket = [s.per_bucket.assign(model=m) for m, s in summaries.items() if len(s.per_bucket)]
    for name, frames in (("per_class.csv", per_class), ("per_bucket.csv", per_bucket)):
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"model": []})
        frame[["model"] + [c for c in frame.columns if c != "model"]].to_csv(run_dir / name, index=False)
