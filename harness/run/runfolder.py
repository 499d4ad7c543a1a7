"""A run folder's layout, and its summary files.

    RUN/manifest.json          protocol, data, models (source, status, timings), versions (harness.run.manifest)
    RUN/summary.json           {model: {metric: value}} under the clean condition
    RUN/summary_conditions.json  {condition: {model: {metric: value}}}, when a run has other conditions
    RUN/summary.csv            one row per (model, condition)
    RUN/per_class.csv          one row per (model, condition, class)
    RUN/per_bucket.csv         one row per (model, condition, family, bucket kind, bucket)
    RUN/confusion.csv          one row per (model, condition, family, class, class predicted instead),
                               with a family that makes it (miss_attribution)
    RUN/records/<table>/model=<m>/condition=<c>/   per-image tables (harness.run.records)
    RUN/predictions/<model>/<condition>/<stem>.png label maps, with --save-predictions (clean: no
                               condition level: RUN/predictions/<model>/<stem>.png)
    RUN/inputs/<condition>/<stem>.png  the images a condition made (what the models saw), with --save-inputs
    RUN/robustness.csv         one row per (model, condition, metric): value, clean value, difference
                               with its paired interval, relative value (harness.evaluation.robustness)
    RUN/robustness_summary.csv one row per (model, metric, corruption, measure): mPC, rPC, CE, mCE
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.files import atomic_write, atomic_write_text, check_component, inside

if TYPE_CHECKING:
    from harness.evaluation.aggregate import ModelSummary

CLEAN = "clean"
# What only a run folder holds: a folder with none of these is someone else's and is not written into.
RUN_MARKERS = ("manifest.json", "records", ".lock", ".manifest.lock")


def check_out(run_dir: Path) -> Path:
    """`run_dir` may become or stay a run folder: absent, empty, or a run folder already (resume).
    A file, or a non-empty folder of something else, is refused before anything is written."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError("--out is a file; give a folder (new, empty, or a run folder to resume)", run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not any((run_dir / m).exists() for m in RUN_MARKERS):
        raise UserError("--out is a non-empty folder that is not a zeg-eval run folder; give a new or empty folder, "
                        "or a run folder to resume", run_dir)
    return run_dir


def predictions_dir(run_dir: Path, model: str, condition: str = CLEAN) -> Path:
    check_component(model, "model name")
    parts = ("predictions", model) if condition == CLEAN else ("predictions", model, check_component(condition, "condition"))
    return inside(run_dir, *parts)


def inputs_dir(run_dir: Path, condition: str) -> Path:
    return inside(run_dir, "inputs", check_component(condition, "condition"))


def _finite(value):
    # JSON has no NaN: absent metrics (e.g. a bucket with no objects) are written as null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _json(data) -> str:
    return json.dumps(data, indent=1, allow_nan=False, default=str)


def write_outputs(run_dir: Path, summaries: dict[tuple[str, str], ModelSummary]) -> None:
    """summary.json / .csv, per_class.csv, per_bucket.csv (and confusion.csv) of {(model, condition): summary}."""
    import pandas as pd  # imported when needed: a run forks its metric workers before pandas is loaded

    run_dir = Path(run_dir)
    by_condition: dict[str, dict] = {}
    for (model, condition), s in summaries.items():
        by_condition.setdefault(condition, {})[model] = {k: _finite(v) for k, v in s.scalars.items()}
    atomic_write_text(run_dir / "summary.json", _json(by_condition.get(CLEAN, {})))
    if set(by_condition) - {CLEAN}:
        atomic_write_text(run_dir / "summary_conditions.json", _json(by_condition))
    keys = ["model", "condition"]
    summary = pd.DataFrame([{"model": m, "condition": c, **s.scalars} for (m, c), s in summaries.items()])
    per_class = [s.per_class.assign(model=m, condition=c) for (m, c), s in summaries.items()]
    per_bucket = [s.per_bucket.assign(model=m, condition=c) for (m, c), s in summaries.items() if len(s.per_bucket)]
    confusion = [s.confusion.assign(model=m, condition=c) for (m, c), s in summaries.items()
                 if s.confusion is not None]
    frames = {"summary.csv": summary}
    if confusion:
        frames["confusion.csv"] = pd.concat(confusion, ignore_index=True)
    for name, parts in (("per_class.csv", per_class), ("per_bucket.csv", per_bucket)):
        frames[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"model": [], "condition": []})
    for name, frame in frames.items():
        if not len(frame.columns):
            frame = pd.DataFrame({"model": [], "condition": []})
        frame = frame[keys + [c for c in frame.columns if c not in keys]]
        atomic_write(run_dir / name, lambda tmp, f=frame: f.to_csv(tmp, index=False))
