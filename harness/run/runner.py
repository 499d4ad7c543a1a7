"""A run: one protocol, one dataset, one or more models -> one run folder.

For every model: dataset -> predictor -> per-image records (harness.run.scoring) -> aggregation
(harness.evaluation.aggregate) -> summary files (harness.run.runfolder). Records are committed in chunks, so a
rerun of the same command recomputes nothing that is done and an interrupted run continues to the
same summary. A split run (`--shard i/n`, or torchrun) evaluates every n-th image in each process;
the shards' records merge into one model, and the summary is written once every image is
recorded (by torchrun's rank 0, or by whichever `--shard` process finishes last, or by a rerun
without --shard).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.run import records, runfolder
from harness.data.dataset import DatasetSpec, load_dataset
from harness.errors import SkipModel, UserError
from harness.models import spec as specs
from harness.models.spec import BaselineSpec, FolderSpec, MmsegSpec
from harness.evaluation.protocol import Protocol, load_protocol
from harness.run.scoring import score_model

# Kept for callers of the first version.
PredictionFolder = FolderSpec
parse_prediction_arg = specs.parse_prediction_arg


@dataclass
class RunOptions:
    out: Path
    limit: int | None = None
    workers: int | None = None             # metric worker processes
    models: list = field(default_factory=list)  # ModelSpec list
    device: str = "auto"
    precision: str | None = None           # overrides every mmseg model's precision
    batch_size: int | None = None
    loader_workers: int | None = None
    save_predictions: bool = False
    shard: tuple[int, int] | None = None   # (i, n), 0 <= i < n
    chunk_size: int = 64
    distributed: object | None = None      # a _Distributed when launched by torchrun


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must be i/n with 0 <= i < n (e.g. 0/2), not '{text}'") from None
    if not 0 <= i < n:
        raise UserError(f"--shard must be i/n with 0 <= i < n (e.g. 0/2), not '{text}'")
    return (i, n)


def _log(message: str) -> None:
    if os.environ.get("RANK", "0") != "0" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return  # under torchrun, rank 0 speaks for every rank
    print(f"zeg-eval: {message}", file=sys.stderr, flush=True)


def run(protocol: Protocol, dataset: DatasetSpec, options: RunOptions) -> dict:
    """Evaluate every model, resuming what is recorded; write summaries; return summary.json's content
    (empty when this process is a shard whose siblings have not finished yet)."""
    if not options.models:
        raise UserError("no models to evaluate: give --predictions DIR or list models in the protocol", protocol.path)
    specs.check_unique(options.models, protocol.path)
    for model in options.models:  # before anything runs: a typo must not surface hours later
        if isinstance(model, MmsegSpec) and not model.config.is_file():
            raise UserError(f"model '{model.name}': config file does not exist", model.config)
    stems = dataset.stems()
    if options.limit is not None:
        stems = stems[: options.limit]
    mine = stems if options.shard is None else stems[options.shard[0]:: options.shard[1]]
    out = Path(options.out)
    shard_key = None if options.shard is None else f"{options.shard[0]}/{options.shard[1]}"
    part = records.part_name(options.shard)
    with records.RunLock(out, options.shard):
        runfolder.update_manifest(out, lambda m: _start_manifest(m, protocol, dataset, stems, options, out))
        failed, interrupted = True, False
        try:
            for model in options.models:
                _run_model(model, protocol, dataset, mine, options, out, part, shard_key)
            failed = False
        except KeyboardInterrupt:
            interrupted = True
            runfolder.update_manifest(out, lambda m: m.update(status="interrupted"))
            raise
        finally:
            # Every rank reaches this (also after an error), so no rank waits for a failed one.
            if options.distributed is not None and not interrupted:
                others_failed = options.distributed.all_failed_any(failed)
        if options.distributed is not None and others_failed:
            raise UserError("another shard of this run failed; see its message")
        if options.distributed is not None and options.distributed.rank != 0:
            return {}
        summaries = _merge(out, protocol, dataset, stems, options)
    if summaries is None:
        _log(f"shard {shard_key} done; the summary is written when every shard is (or rerun without --shard)")
        return {}
    return {m: s.scalars for m, s in summaries.items()}


def _start_manifest(manifest: dict, protocol, dataset, stems, options: RunOptions, out: Path) -> None:
    _check_same_setup(manifest, protocol, dataset, out)
    models = manifest.setdefault("models", {})
    for model in options.models:
        entry = models.get(model.name)
        if entry and entry.get("identity") not in (None, specs.identity(model)) \
                and records.done_images(runfolder.model_dir(out, model.name)):
            raise UserError(f"model '{model.name}' was run into this folder with another setup "
                            f"({_difference(entry['identity'], specs.identity(model))}); "
                            "use another --out or another model name", out)
    for model in options.models:
        entry = models.setdefault(model.name, {"status": "pending"})
        entry.update(kind=model.kind, spec=specs.describe(model), identity=specs.identity(model))
        if model.kind == "predictions":  # the first version's fields, kept for readers of manifests
            entry["path"] = entry["spec"]["path"]
    manifest.update(protocol=protocol.to_dict(), protocol_path=str(protocol.path),
                    dataset=_dataset_entry(dataset), images=stems, versions=runfolder.versions(),
                    created=manifest.get("created", runfolder.now()), status="running",
                    command=" ".join(sys.argv), options=_options_entry(options))


def _difference(old: dict, new: dict) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3])


def _options_entry(options: RunOptions) -> dict:
    return {"limit": options.limit, "workers": options.workers, "device": options.device,
            "precision": options.precision, "batch_size": options.batch_size,
            "save_predictions": options.save_predictions, "chunk_size": options.chunk_size,
            "shard": None if options.shard is None else list(options.shard)}


def _predictor(model, protocol, dataset, options: RunOptions, out: Path, entry_updates: dict):
    """(predictor, stream) for score_model; raises SkipModel for a model that cannot run here."""

    if isinstance(model, FolderSpec):
        from harness.models.folder import FolderPredictor

        return FolderPredictor(model.path), None
    if isinstance(model, BaselineSpec):
        from harness.models.baselines import BaselinePredictor

        return BaselinePredictor(model, dataset), None
    assert isinstance(model, MmsegSpec)
    if not model.config.is_file():
        raise UserError(f"model '{model.name}': config file does not exist", model.config)
    if model.checkpoint is None:
        raise SkipModel(f"no checkpoint (checkpoint: '{model.checkpoint_text}' is empty"
                        + (" or its variable is unset)" if "$" in model.checkpoint_text else ")"))
    if not model.checkpoint.is_file():
        hint = f" (set it with: {model.checkpoint_text})" if "$" in model.checkpoint_text else ""
        raise SkipModel(f"checkpoint not found: {model.checkpoint}{hint}")

    def stream(pending):
        from harness.models import mmseg_predictor

        inference = mmseg_predictor.InferenceOptions(device=_device(options), precision=options.precision,
                                                     batch_size=options.batch_size,
                                                     loader_workers=options.loader_workers)
        entry_updates["device"] = mmseg_predictor.pick_device(inference.device)
        entry_updates["precision"] = options.precision or model.precision
        yield from mmseg_predictor.predict_stream(model, dataset, pending, inference)

    return None, stream


def _device(options: RunOptions) -> str:
    if options.distributed is not None and options.device in (None, "", "auto", "cuda"):
        return options.distributed.device(options.device)
    return options.device


def _run_model(model, protocol, dataset, stems, options: RunOptions, out: Path, part, shard_key) -> None:

    name = model.name
    model_dir = runfolder.model_dir(out, name)
    updates: dict = {}
    label = name if shard_key is None else f"{name} [{shard_key}]"
    try:
        predictor, stream = _predictor(model, protocol, dataset, options, out, updates)
    except SkipModel as exc:
        reason = str(exc)
        _log(f"skipping model '{name}': {reason}")
        runfolder.update_manifest(out, lambda m: m["models"][name].update(status="skipped", skipped=reason))
        return
    pending = [s for s in stems if s not in records.done_images(model_dir)]
    if isinstance(model, MmsegSpec) and pending:
        sha = runfolder.file_sha256(model.checkpoint)
        recorded = runfolder.read_manifest(out)["models"][name].get("checkpoint_sha256")
        if recorded and recorded != sha and records.done_images(model_dir):
            raise UserError(f"model '{name}': the checkpoint changed since its records were made "
                            f"(sha256 {recorded[:12]}... then, {sha[:12]}... now); use another --out", model.checkpoint)
        updates.update(checkpoint_sha256=sha, checkpoint=str(model.checkpoint.resolve()))
    runfolder.update_manifest(out, lambda m: m["models"][name].update(status="running", skipped=None, **updates))
    save_dir = runfolder.predictions_dir(out, name) if options.save_predictions else None
    start = time.perf_counter()
    status = "interrupted"
    result = None
    try:
        result = score_model(dataset, protocol, model_dir, stems, predictor=predictor, stream=stream,
                             workers=options.workers, label=label, chunk_size=options.chunk_size, part=part,
                             save_dir=save_dir)
        status = "complete"
    except UserError:
        status = "failed"
        raise
    finally:
        seconds = time.perf_counter() - start
        runfolder.update_manifest(out, lambda m: _record_timing(m["models"][name], status, seconds, result,
                                                                updates, shard_key))


def _record_timing(entry: dict, status: str, seconds: float, result, updates: dict, shard_key) -> None:
    entry.update(updates)
    timing = {"seconds": round(seconds, 3)}
    if result is not None and result.computed:
        timing.update(images=result.computed, images_per_s=round(result.computed / max(result.seconds, 1e-9), 3),
                      predict_seconds=round(result.predict_seconds, 3),
                      metric_wait_seconds=round(result.metric_wait_seconds, 3))
    entry["seconds"] = round(entry.get("seconds", 0.0) + seconds, 3)
    entry["images_computed_last_run"] = 0 if result is None else result.computed
    runs = entry.setdefault("timings", [])
    runs.append({"shard": shard_key, "status": status, **timing})
    del runs[:-20]  # the last 20 runs of this model
    if shard_key is None:
        entry["status"] = status
    else:
        entry.setdefault("shards", {})[shard_key] = status
        entry["status"] = "running" if status == "complete" else status  # complete once every image is


def _merge(out: Path, protocol, dataset, stems, options: RunOptions):
    """Summaries of every model that ran, once every image is recorded; None while shards remain."""
    from harness.evaluation.aggregate import summarize  # pandas: imported after the metric workers are forked

    with runfolder.manifest_lock(out):
        manifest = runfolder.read_manifest(out)
        this_run = {m.name for m in options.models}
        names, tables = [], {}
        # Every model of the folder with records of all these images, not only this run's models.
        for name, entry in manifest["models"].items():
            if entry.get("status") == "skipped":
                continue
            frames = records.read_tables(runfolder.model_dir(out, name), images=stems, pixel_sums=True)
            if len(frames["images"]) < len(stems):
                if name not in this_run:
                    continue  # a model of an earlier run over other images
                if options.shard is None:
                    raise UserError(f"model '{name}': {len(frames['images'])} of {len(stems)} images recorded", out)
                return None
            names.append(name)
            tables[name] = frames
        summaries = {name: summarize(tables[name], dataset, protocol) for name in names}
        runfolder.write_outputs(out, summaries)
        for name in names:
            manifest["models"][name]["status"] = "complete"
        manifest.update(status="complete", finished=runfolder.now(), summarized_models=names)
        runfolder.write_json_atomic(out / runfolder.MANIFEST, manifest)
    return summaries


def _dataset_entry(dataset: DatasetSpec) -> dict:
    return {"name": dataset.name, "root": str(dataset.root.resolve()), "num_classes": dataset.num_classes,
            "classes": list(dataset.classes), "unseen": list(dataset.unseen), "ignore_index": dataset.ignore_index,
            "reduce_zero_label": dataset.reduce_zero_label,
            "things": None if dataset.things is None else list(dataset.things)}


def _check_same_setup(manifest: dict, protocol: Protocol, dataset: DatasetSpec, out: Path) -> None:
    """Resuming into a folder made with another protocol or dataset would mix records: refuse."""
    if not manifest:
        return
    families = json.loads(json.dumps(protocol.to_dict()["families"], default=str))  # tuples read back as lists
    if manifest.get("protocol", {}).get("families") != families:
        raise UserError("this run folder was made with another protocol; use another --out", out)
    if manifest.get("dataset", {}).get("classes") != list(dataset.classes):
        raise UserError("this run folder was made with another dataset; use another --out", out)


class _Distributed:
    """torchrun: this process is rank `rank` of `world`; it evaluates shard rank/world."""

    def __init__(self):
        import datetime

        import torch
        import torch.distributed as dist

        self.dist, self.torch = dist, torch
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
            # Shards may take hours; the final all-reduce waits for the slowest.
            dist.init_process_group(backend, timeout=datetime.timedelta(hours=72))

    def device(self, requested: str) -> str:
        if self.torch.cuda.is_available() and requested in (None, "", "auto", "cuda"):
            return f"cuda:{self.local_rank % self.torch.cuda.device_count()}"
        return "cpu" if requested in (None, "", "auto") else requested

    def all_failed_any(self, failed: bool) -> bool:
        """True on every rank when any rank failed (all ranks reach this, also after an error)."""
        t = self.torch.tensor([1.0 if failed else 0.0])
        if self.dist.get_backend() == "nccl":
            t = t.cuda(self.local_rank % self.torch.cuda.device_count())
        self.dist.all_reduce(t)
        return bool(t.item() > 0)

    def close(self):
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def distributed_from_env():
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        return _Distributed()
    return None


def resolve_data(data, protocol: Protocol) -> DatasetSpec:
    """--data, else the protocol's `data:`: a dataset folder (or its yaml), or `sample`."""
    if data is None and protocol.data is None:
        raise UserError("no data: give --data DIR (a folder with dataset.yaml) or 'sample'", protocol.path)
    if data is None:
        text = str(protocol.data)
        if text == "sample":
            data = _sample()
        else:
            data = specs.resolve_path(text, protocol.path.parent if protocol.path else None)
    elif str(data) == "sample":
        data = _sample()
    return load_dataset(data)


def _sample() -> Path:
    from harness.data.sample import ensure_sample

    return ensure_sample()


def run_from_args(protocol_path, data, predictions, out, limit=None, workers=None, *, models=None,
                  device="auto", precision=None, batch_size=None, loader_workers=None, save_predictions=False,
                  shard=None, chunk_size=64) -> tuple[Path, dict]:
    """The `run` command. `models` names protocol models to run (default: all of them, unless
    --predictions folders are given, which then replace the protocol's models)."""
    protocol = load_protocol(protocol_path)
    model_specs = specs.parse_models(protocol.models, protocol.path)
    if models:
        known = {m.name: m for m in model_specs}
        unknown = [n for n in models if n not in known]
        if unknown:
            raise UserError(f"--model '{unknown[0]}' is not in the protocol (its models: "
                            f"{', '.join(known) or 'none'})", protocol_path)
        chosen = [known[n] for n in models]
    else:
        chosen = [] if predictions else model_specs
    chosen += [specs.parse_prediction_arg(p) for p in predictions or []]
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    dataset = resolve_data(data, protocol)
    out = Path(out) if out else Path("runs") / protocol.name
    distributed = distributed_from_env()
    if distributed is not None and shard is not None:
        raise UserError("give --shard or launch with torchrun, not both")
    try:
        options = RunOptions(out=out, limit=limit, workers=workers, models=chosen, device=device or "auto",
                             precision=precision, batch_size=batch_size, loader_workers=loader_workers,
                             save_predictions=save_predictions, chunk_size=chunk_size,
                             shard=(distributed.rank, distributed.world) if distributed else parse_shard(shard),
                             distributed=distributed)
        return out, run(protocol, dataset, options)
    finally:
        if distributed is not None:
            distributed.close()
