"""The run folder's manifest.json, and the only module that reads or writes it.

    {status: running | complete | interrupted | failed, created, finished, command, options,
     protocol, protocol_path, dataset, images, versions,
     models: {name: {kind, spec, identity, status, conditions: {condition: status}, run_info,
                     skipped, seconds, timings: [...]}}}

Every change is a read-modify-write under a lock (`update`), written atomically, so shards of a
split run never lose each other's entries and a reader never sees half a file. A manifest that
cannot be read (torn, empty, not JSON) is rebuilt by the next run, with a one-line warning: the
records, not the manifest, say what is done.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from harness import __version__
from harness.errors import UserError
from harness.files import atomic_write_text

MANIFEST = "manifest.json"
_TIMINGS_KEPT = 20


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict:
    out = {"python": platform.python_version(), "zeg-eval": __version__}  # the code that ran, installed or not
    for package in ("numpy", "pandas", "opencv-python", "connected-components-3d", "torch",
                    "mmengine", "mmcv", "mmsegmentation"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def read(run_dir: Path, strict: bool = True) -> dict:
    """The manifest ({} when there is none). A damaged one is a UserError when strict, else {}
    with a warning (a run then rebuilds it)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        return manifest
    except (ValueError, UnicodeDecodeError) as exc:
        why = " ".join(str(exc).split())[:120]
        if strict:
            raise UserError(f"damaged manifest ({why}); rerun `zeg-eval run` into this folder to rebuild it", path) \
                from None
        print(f"zeg-eval: warning: {path}: damaged manifest ({why}); rebuilding it from this run",
              file=sys.stderr, flush=True)
        return {}


@contextlib.contextmanager
def lock(run_dir: Path):
    """Serialises read-modify-write of the manifest between the shards of a split run."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(run_dir) / ".manifest.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write(run_dir: Path, manifest: dict) -> None:
    atomic_write_text(Path(run_dir) / MANIFEST, json.dumps(manifest, indent=1, allow_nan=True, default=str))


def update(run_dir: Path, change) -> dict:
    """Read the manifest, apply `change(manifest)` (in place), write it back atomically; returns it."""
    with lock(run_dir):
        manifest = read(run_dir, strict=False)
        change(manifest)
        write(run_dir, manifest)
    return manifest


def start(manifest: dict, *, protocol, dataset_entry: dict, stems, options_entry: dict, models: list[dict]) -> None:
    """A run begins: its settings, and an entry per model ({name, kind, spec, identity})."""
    entries = manifest.setdefault("models", {})
    for model in models:
        entry = entries.setdefault(model["name"], {"status": "pending"})
        entry.update(kind=model["kind"], spec=model["spec"])
        if model.get("identity") is not None:
            entry["identity"] = model["identity"]
    manifest.update(protocol=protocol.to_dict(), protocol_path=str(protocol.path), dataset=dataset_entry,
                    images=list(stems), versions=versions(), created=manifest.get("created", now()),
                    status="running", command=" ".join(sys.argv), options=options_entry)


def model_update(run_dir: Path, name: str, **fields) -> None:
    update(run_dir, lambda m: m.setdefault("models", {}).setdefault(name, {}).update(fields))


def record_timing(entry: dict, *, status: str, seconds: float, result, condition: str, shard_key) -> None:
    """One model x condition finished (or stopped) in this process: its status and timing."""
    timing = {"seconds": round(seconds, 3)}
    if result is not None and result.computed:
        timing.update(images=result.computed, images_per_s=round(result.computed / max(result.seconds, 1e-9), 3),
                      predict_seconds=round(result.predict_seconds, 3),
                      metric_wait_seconds=round(result.metric_wait_seconds, 3))
    entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 3)
    entry["images_computed_last_run"] = 0 if result is None else result.computed
    runs = entry.setdefault("timings", [])
    runs.append({"condition": condition, "shard": shard_key, "status": status, **timing})
    del runs[:-_TIMINGS_KEPT]
    conditions = entry.setdefault("conditions", {})
    if shard_key is None:
        conditions[condition] = status
    else:
        key = shard_key if condition == "clean" else f"{condition}:{shard_key}"
        entry.setdefault("shards", {})[key] = status
        conditions[condition] = "running" if status == "complete" else status  # complete once every image is
    entry["status"] = _overall(conditions.values())


def _overall(statuses) -> str:
    statuses = set(statuses)
    for status in ("failed", "interrupted", "running", "pending"):
        if status in statuses:
            return status
    return "complete" if statuses else "pending"


def finish(manifest: dict, summarized: list[str]) -> None:
    for name in summarized:
        entry = manifest["models"][name]
        entry["conditions"] = {c: "complete" for c in entry.get("conditions", {})} or {"clean": "complete"}
        entry["status"] = "complete"
    manifest.update(status="complete", finished=now(), summarized_models=summarized)
