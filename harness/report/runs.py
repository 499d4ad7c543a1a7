"""Run folders as the report sees them: manifest, dataset, protocol and every model's records.

Nothing here needs the dataset on disk or the models: the manifest holds the class list and the
protocol, the records hold the counts. Bad input is a UserError naming the folder.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.data.dataset import DatasetSpec
from harness.errors import UserError
from harness.evaluation.protocol import Protocol
from harness.metrics.registry import FAMILIES
from harness.run import manifest as manifest_mod
from harness.run import records


@dataclass
class RunInfo:
    path: Path
    label: str                  # unique among the report's runs (the folder name, deduplicated)
    manifest: dict
    dataset: DatasetSpec
    protocol: Protocol
    partial: bool               # the run was still in progress (or interrupted) when reported
    notes: list = field(default_factory=list)

    @property
    def dataset_key(self) -> tuple:
        """Runs with the same key are on the same data: same name and class list."""
        return (self.dataset.name, self.dataset.classes)


@dataclass
class ModelRun:
    label: str                  # unique among the report's models
    name: str                   # the model's name in its run
    run: RunInfo
    entry: dict                 # the manifest's entry for the model
    tables: dict                # table name -> DataFrame (harness.run.records.read_tables)

    @property
    def images(self) -> list[str]:
        return sorted(self.tables["images"]["image"].astype(str).tolist()) if len(self.tables["images"]) else []


def _config(cls, values: dict, notes: list, family: str):
    """A family config dataclass from its JSON form (lists back to tuples); unknown keys dropped."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in (values or {}).items():
        if key not in fields:
            notes.append(f"protocol option families.{family}.{key} is unknown to this version; ignored")
            continue
        f = fields[key]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, dict) and isinstance(value, dict):
            value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        kwargs[key] = value
    return cls(**kwargs)


def _protocol(manifest: dict, path: Path, notes: list) -> Protocol:
    raw = manifest.get("protocol") or {}
    families = {}
    for name, values in (raw.get("families") or {}).items():
        if name not in FAMILIES:
            notes.append(f"metric family '{name}' is unknown to this version; not shown")
            continue
        try:
            families[name] = _config(FAMILIES[name].config_type, values, notes, name)
        except (TypeError, ValueError) as exc:
            notes.append(f"metric family '{name}': cannot read its settings ({exc}); not shown")
    return Protocol(name=str(raw.get("name") or path.name), families=families,
                    description=str(raw.get("description") or ""), data=raw.get("data"),
                    models=tuple(raw.get("models") or ()), path=path)


def _dataset(manifest: dict, path: Path) -> DatasetSpec:
    d = manifest.get("dataset")
    if not isinstance(d, dict) or not d.get("classes"):
        raise UserError("manifest.json has no dataset class list; not a complete zeg-eval run folder", path)
    return DatasetSpec(root=Path(d.get("root") or "."), name=str(d.get("name") or "?"),
                       classes=tuple(str(c) for c in d["classes"]), ignore_index=int(d.get("ignore_index", 255)),
                       unseen=tuple(d.get("unseen") or ()),
                       things=None if d.get("things") is None else tuple(d["things"]),
                       reduce_zero_label=bool(d.get("reduce_zero_label", False)),
                       instance_sizes=d.get("instance_sizes") if isinstance(d.get("instance_sizes"), dict) else None)


def load_run(path: str | Path, label: str, allow_partial: bool = False) -> tuple[RunInfo, list[ModelRun]]:
    """One run folder; a folder that is not a run, or a run still in progress, is a UserError
    (the latter unless `allow_partial`, which reports what is recorded and marks it partial)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError("run folder does not exist", path)
    manifest_path = path / manifest_mod.MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"not a zeg-eval run folder (no {manifest_mod.MANIFEST}); give the --out folder of `zeg-eval run`",
                        path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the manifest ({exc})", manifest_path) from None
    if not isinstance(manifest, dict):
        raise UserError("the manifest is not a JSON object", manifest_path)
    status = manifest.get("status")
    partial = status != "complete"
    if partial and not allow_partial:
        raise UserError(f"the run is not complete (status '{status}'): it is still running or was interrupted; "
                        "rerun `zeg-eval run` to finish it, or pass --partial to report what is recorded", path)
    notes: list[str] = []
    run = RunInfo(path=path, label=label, manifest=manifest, dataset=_dataset(manifest, path),
                  protocol=_protocol(manifest, path, notes), partial=partial, notes=notes)
    models = []
    for name, entry in (manifest.get("models") or {}).items():
        try:
            record_set = records.RecordSet(path, name, "clean")
        except UserError:
            notes.append(f"model name {name!r} in the manifest is not a plain name; not shown")
            continue
        if not record_set.exists():
            notes.append(f"model '{name}' has no records; not shown")
            continue
        tables = records.read_tables(record_set, strict=True)
        if not len(tables["images"]):
            notes.append(f"model '{name}' has no committed records yet; not shown")
            continue
        if partial or (isinstance(entry, dict) and entry.get("status") not in (None, "complete")):
            expected = len(manifest.get("images") or [])
            notes.append(f"model '{name}': {len(tables['images'])} of {expected} images recorded (partial)")
        models.append(ModelRun(label=name, name=name, run=run, entry=entry if isinstance(entry, dict) else {},
                               tables=tables))
    if not models:
        raise UserError("the run has no model with records", path)
    return run, models


def load_runs(paths, allow_partial: bool = False) -> tuple[list[RunInfo], list[ModelRun]]:
    """Several runs; run labels are folder names (made unique), model labels are the model names,
    prefixed by the run label where two runs hold models of the same name."""
    runs, models = [], []
    seen_labels: dict[str, int] = {}
    seen_paths = set()
    for p in paths:
        resolved = Path(p).resolve()
        if resolved in seen_paths:
            raise UserError("the same run folder is given twice", p)
        seen_paths.add(resolved)
        base = resolved.name or "run"
        seen_labels[base] = seen_labels.get(base, 0) + 1
        label = base if seen_labels[base] == 1 else f"{base}#{seen_labels[base]}"
        run, run_models = load_run(p, label, allow_partial)
        runs.append(run)
        models.extend(run_models)
    counts = pd.Series([m.name for m in models]).value_counts()
    for m in models:
        if counts[m.name] > 1:
            m.label = f"{m.run.label}/{m.name}"
    return runs, models
