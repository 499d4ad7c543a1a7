"""A run folder: records of every model plus summary.json/csv, per_class.csv, per_bucket.csv, manifest.json.

    RUN/manifest.json         protocol, data, models (source, status, timings), versions, times
    RUN/summary.json          {model: {metric: value}}
    RUN/summary.csv           one row per model
    RUN/per_class.csv         one row per (model, class)
    RUN/per_bucket.csv        one row per (model, family, bucket kind, bucket)
    RUN/records/<model>/      per-image tables (harness.run.records)
    RUN/predictions/<model>/  label maps <stem>.png, with --save-predictions
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.evaluation.aggregate import ModelSummary

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


def file_sha256(path: Path, chunk_size: int = 1 << 22) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def model_dir(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / "records" / model


def predictions_dir(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / "predictions" / model


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


@contextlib.contextmanager
def manifest_lock(run_dir: Path):
    """Serialises read-modify-write of the manifest between the shards of a split run."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(run_dir) / ".manifest.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_manifest(run_dir: Path, change) -> dict:
    """Read the manifest, apply `change(manifest)` (in place), write it back atomically; returns it."""
    with manifest_lock(run_dir):
        manifest = read_manifest(run_dir)
        change(manifest)
        write_json_atomic(Path(run_dir) / MANIFEST, manifest)
    return manifest


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True, default=str))
    os.replace(tmp, path)


def _finite(value):
    # JSON has no NaN: absent metrics (e.g. a bucket with no objects) are written as null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_outputs(run_dir: Path, summaries: dict[str, ModelSummary]) -> None:
    import pandas as pd  # imported when needed: a run forks its metric workers before pandas is loaded

    run_dir = Path(run_dir)
    write_json_atomic(run_dir / "summary.json",
                      {m: {k: _finite(v) for k, v in s.scalars.items()} for m, s in summaries.items()})
    summary = pd.DataFrame([{"model": m, **s.scalars} for m, s in summaries.items()])
    tmp = run_dir / f".summary.csv.{os.getpid()}.tmp"
    summary.to_csv(tmp, index=False)
    os.replace(tmp, run_dir / "summary.csv")
    per_class = [s.per_class.assign(model=m) for m, s in summaries.items()]
    per_bucket = [s.per_bucket.assign(model=m) for m, s in summaries.items() if len(s.per_bucket)]
    for name, frames in (("per_class.csv", per_class), ("per_bucket.csv", per_bucket)):
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"model": []})
        tmp = run_dir / f".{name}.{os.getpid()}.tmp"
        frame[["model"] + [c for c in frame.columns if c != "model"]].to_csv(tmp, index=False)
        os.replace(tmp, run_dir / name)
