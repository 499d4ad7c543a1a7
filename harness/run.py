"""A run: one protocol, one dataset, one or more models -> one run folder."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import records, runfolder
from harness.aggregate import summarize
from harness.dataset import DatasetSpec, load_dataset
from harness.errors import UserError
from harness.protocol import Protocol, load_protocol
from harness.scoring import score_predictions


@dataclass(frozen=True)
class PredictionFolder:
    """A model given as saved label maps (e.g. written by another codebase)."""
    name: str
    path: Path


@dataclass
class RunOptions:
    out: Path
    limit: int | None = None
    workers: int | None = None
    models: list = field(default_factory=list)


def parse_prediction_arg(text: str) -> PredictionFolder:
    """`NAME=DIR` or `DIR` (the model is then named after the folder)."""
    name, sep, path = text.partition("=")
    if not sep:
        path, name = text, Path(text.rstrip("/")).name
    if not name or "/" in name:
        raise UserError(f"bad model name in --predictions '{text}'")
    return PredictionFolder(name=name, path=Path(path))


def run(protocol: Protocol, dataset: DatasetSpec, options: RunOptions) -> dict:
    """Evaluate every model, resuming what is recorded; write summaries; return summary.json's content."""
    if not options.models:
        raise UserError("no models to evaluate: give --predictions DIR (or models in the protocol)",
                        protocol.path)
    stems = dataset.stems()
    if options.limit is not None:
        stems = stems[: options.limit]
    out = Path(options.out)
    with records.RunLock(out):
        manifest = runfolder.read_manifest(out)
        _check_same_setup(manifest, protocol, dataset, stems, out)
        manifest.update(protocol=protocol.to_dict(), protocol_path=str(protocol.path),
                        dataset=_dataset_entry(dataset), images=stems, versions=runfolder.versions(),
                        created=manifest.get("created", runfolder.now()), status="running")
        models = manifest.setdefault("models", {})
        runfolder.write_json_atomic(out / runfolder.MANIFEST, manifest)
        summaries = {}
        for model in options.models:
            entry = models.setdefault(model.name, {"kind": "predictions", "path": str(model.path.resolve())})
            start = time.perf_counter()
            computed = score_predictions(dataset, protocol, model.path, runfolder.model_dir(out, model.name),
                                         stems, workers=options.workers, label=model.name)
            entry.setdefault("seconds", 0.0)
            entry["seconds"] += time.perf_counter() - start
            entry.update(status="complete", images_computed_last_run=computed)
            runfolder.write_json_atomic(out / runfolder.MANIFEST, manifest)
            tables = records.read_tables(runfolder.model_dir(out, model.name))
            summaries[model.name] = summarize(tables, dataset, protocol)
        runfolder.write_outputs(out, summaries)
        manifest.update(status="complete", finished=runfolder.now())
        runfolder.write_json_atomic(out / runfolder.MANIFEST, manifest)
    return {m: s.scalars for m, s in summaries.items()}


def _dataset_entry(dataset: DatasetSpec) -> dict:
    return {"name": dataset.name, "root": str(dataset.root.resolve()), "num_classes": dataset.num_classes,
            "classes": list(dataset.classes), "unseen": list(dataset.unseen), "ignore_index": dataset.ignore_index,
            "reduce_zero_label": dataset.reduce_zero_label,
            "things": None if dataset.things is None else list(dataset.things)}


def _check_same_setup(manifest: dict, protocol: Protocol, dataset: DatasetSpec, stems, out: Path) -> None:
    """Resuming into a folder made with another protocol or dataset would mix records: refuse."""
    if not manifest:
        return
    if manifest.get("protocol", {}).get("families") != protocol.to_dict()["families"]:
        raise UserError("this run folder was made with another protocol; use another --out", out)
    if manifest.get("dataset", {}).get("classes") != list(dataset.classes):
        raise UserError("this run folder was made with another dataset; use another --out", out)


def run_from_args(protocol_path, data, predictions, out, limit=None, workers=None) -> tuple[Path, dict]:
    protocol = load_protocol(protocol_path)
    data = data or protocol.data
    if data is None:
        raise UserError("no data: give --data DIR (a folder with dataset.yaml)", protocol_path)
    dataset = load_dataset(data)
    out = Path(out) if out else Path("runs") / protocol.name
    options = RunOptions(out=out, limit=limit, workers=workers,
                         models=[parse_prediction_arg(p) for p in predictions or []])
    return out, run(protocol, dataset, options)
