"""A run: one protocol, one dataset, one or more models, one or more conditions -> one run folder.

For every model and condition: dataset -> predictor -> per-image records (harness.run.scoring) ->
aggregation (harness.evaluation.aggregate) -> summary files (harness.run.runfolder). Records are
committed in chunks, and each rerun checks what a record was made from (harness.run.identity), so
a rerun of the same command recomputes nothing that is done, an interrupted run continues to the
same summary, and a changed input is refused instead of silently reused. A split run (`--shard
i/n`, or torchrun) evaluates every n-th image in each process; the shards' records merge into one
model, and the summary is written once every image is recorded (by torchrun's rank 0, or by
whichever `--shard` process finishes last, or by a rerun without --shard).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.dataset import DatasetSpec
from harness.errors import SkipModel, UserError
from harness.evaluation.protocol import Protocol
from harness.files import check_component
from harness.models.base import check_unique
from harness.models.registry import kind_of
from harness.run import manifest, records, runfolder
from harness.run.identity import digest, model_identity, verified_done
from harness.run.options import RunOptions
from harness.run.scoring import score_model


def _log(message: str) -> None:
    if os.environ.get("RANK", "0") != "0" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return  # under torchrun, rank 0 speaks for every rank
    print(f"zeg-eval: {message}", file=sys.stderr, flush=True)


def run(protocol: Protocol, dataset: DatasetSpec, options: RunOptions) -> dict:
    """Evaluate every model, resuming what is recorded; write summaries; return summary.json's content
    (empty when this process is a shard whose siblings have not finished yet)."""
    if not options.models:
        raise UserError("no models to evaluate: give --predictions DIR or list models in the protocol", protocol.path)
    check_unique(options.models, protocol.path)
    for model in options.models:  # before anything runs: a typo must not surface hours later
        kind_of(model).check(model)
    for condition in options.conditions:
        check_component(condition.name, "condition")
    stems = dataset.stems()
    if options.limit is not None:
        stems = stems[: options.limit]
    mine = stems if options.shard is None else stems[options.shard[0]:: options.shard[1]]
    out = Path(options.out)
    shard_key = None if options.shard is None else f"{options.shard[0]}/{options.shard[1]}"
    with records.RunLock(out, options.shard):
        manifest.update(out, lambda m: _start(m, protocol, dataset, stems, options, out))
        failed, interrupted = True, False
        try:
            for opened in _open_models(options, dataset):
                _run_model(opened, protocol, dataset, mine, options, out, shard_key)
            failed = False
        except KeyboardInterrupt:
            interrupted = True
            manifest.update(out, lambda m: m.update(status="interrupted"))
            raise
        finally:
            if failed and not interrupted:
                manifest.update(out, lambda m: m.update(status="failed"))
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
    return {m: s.scalars for (m, c), s in summaries.items() if c == runfolder.CLEAN}


def _start(m: dict, protocol, dataset, stems, options: RunOptions, out: Path) -> None:
    _check_same_setup(m, protocol, dataset, out)
    models = [{"name": spec.name, "kind": spec.kind, "spec": kind_of(spec).describe(spec)} for spec in options.models]
    manifest.start(m, protocol=protocol, dataset_entry=_dataset_entry(dataset), stems=stems,
                   options_entry=options.entry(), models=models)


def _check_same_setup(m: dict, protocol: Protocol, dataset: DatasetSpec, out: Path) -> None:
    """One run folder holds one protocol over one dataset's classes (its summaries compare models)."""
    if not m.get("protocol"):
        return
    families = json.loads(json.dumps(protocol.to_dict()["families"], default=str))  # tuples read back as lists
    if m["protocol"].get("families") != families:
        raise UserError("this run folder was made with another protocol; use another --out", out)
    if m.get("dataset", {}).get("classes") != list(dataset.classes):
        raise UserError("this run folder was made with another dataset; use another --out", out)


def _dataset_entry(dataset: DatasetSpec) -> dict:
    return {"name": dataset.name, "root": str(dataset.root.resolve()), "num_classes": dataset.num_classes,
            "classes": list(dataset.classes), "unseen": list(dataset.unseen), "ignore_index": dataset.ignore_index,
            "reduce_zero_label": dataset.reduce_zero_label,
            "things": None if dataset.things is None else list(dataset.things),
            "instance_sizes": dataset.instance_sizes, "instance_ids": dataset.instance_ids,
            "crowd_id": dataset.crowd_id}


@dataclass
class _Opened:
    """A model opened for this run: its predictor under each condition, or why it is skipped."""
    spec: object
    predictors: dict = field(default_factory=dict)   # condition name -> Predictor
    skipped: str | None = None


def _open_models(options: RunOptions, dataset) -> list[_Opened]:
    """Every model opened under every condition before anything is computed: a condition a model
    cannot run (a missing prediction folder, a condition without a transform for a model that looks
    at images) is one line now, not after hours of other models' work."""
    opened = []
    for spec in options.models:
        try:
            predictor = kind_of(spec).open(spec, dataset, options.runtime)
        except SkipModel as exc:
            opened.append(_Opened(spec, skipped=str(exc)))
            continue
        opened.append(_Opened(spec, {c.name: predictor.under(c) for c in options.conditions}))
    return opened


def _run_model(opened: _Opened, protocol, dataset, stems, options: RunOptions, out: Path, shard_key) -> None:
    spec = opened.spec
    name = spec.name
    if opened.skipped is not None:
        _log(f"skipping model '{name}': {opened.skipped}")
        manifest.model_update(out, name, status="skipped", skipped=opened.skipped)
        return
    kind_identity = kind_of(spec).identity(spec)
    recorded = manifest.read(out, strict=False).get("models", {}).get(name, {}).get("identities") or {}
    part = records.part_name(options.shard)
    for condition in options.conditions:
        predictor_here = opened.predictors[condition.name]
        identity = model_identity(kind_identity, protocol, dataset, condition, predictor_here.reads_images)
        record_set = records.RecordSet(out, name, condition.name)
        records.check_chunks(record_set)  # a damaged chunk is deleted (one line): its images are pending
        done = verified_done(record_set, identity, dataset, predictor_here, stems, recorded.get(condition.name))
        manifest.update(out, lambda m: _mark_running(m["models"][name], condition.name, identity))
        save_dir = runfolder.predictions_dir(out, name, condition.name) if options.save_predictions else None
        inputs_dir = runfolder.inputs_dir(out, condition.name) \
            if options.save_inputs and condition.has_transform and not condition.is_clean else None
        label = name if condition.is_clean else f"{name} ({condition.name})"
        label = label if shard_key is None else f"{label} [{shard_key}]"
        start = time.perf_counter()
        status, result = "interrupted", None
        try:
            result = score_model(dataset, protocol, record_set, stems, predictor=predictor_here, identity=digest(identity),
                                 done=done, workers=options.workers, label=label, chunk_size=options.chunk_size,
                                 part=part, save_dir=save_dir, condition=condition, inputs_dir=inputs_dir)
            status = "complete"
        except UserError:
            status = "failed"
            raise
        finally:
            seconds = time.perf_counter() - start
            info = predictor_here.run_info()
            manifest.update(out, lambda m: _finished(m["models"][name], info, status, seconds, result, condition.name,
                                                     shard_key))


def _mark_running(entry: dict, condition: str, identity: dict) -> None:
    entry.setdefault("identities", {})[condition] = identity
    entry.setdefault("conditions", {})[condition] = "running"
    entry.update(status="running", skipped=None)


def _finished(entry: dict, info: dict, status, seconds, result, condition, shard_key) -> None:
    if info:
        entry["run_info"] = info
    manifest.record_timing(entry, status=status, seconds=seconds, result=result, condition=condition,
                           shard_key=shard_key)


def _condition_order(recorded, this_run) -> list[str]:
    """This run's conditions in the protocol's order, then those only earlier runs recorded."""
    names = [c.name for c in this_run]
    return names + sorted(set(recorded) - set(names))


def _merge(out: Path, protocol, dataset, stems, options: RunOptions):
    """Summaries of every model and condition that ran, once every image is recorded; None while
    shards remain."""
    from harness.evaluation.aggregate import (
        summarize,  # pandas: imported after the metric workers are forked
    )
    from harness.run.robustness_files import write_robustness

    with manifest.lock(out):
        m = manifest.read(out, strict=False)
        this_run = {spec.name for spec in options.models}
        summaries, names = {}, []
        # Every model of the folder with records of all these images, not only this run's models.
        for name, entry in m.get("models", {}).items():
            if entry.get("status") == "skipped":
                continue
            conditions = _condition_order(entry.get("conditions") or {}, options.conditions if name in this_run else ())
            for condition in conditions:
                frames = records.read_tables(records.RecordSet(out, name, condition), images=stems, pixel_sums=True)
                if len(frames["images"]) < len(stems):
                    if name not in this_run:
                        break  # a model of an earlier run over other images
                    if options.shard is None:
                        raise UserError(f"model '{name}': {len(frames['images'])} of {len(stems)} images recorded",
                                        out)
                    return None
                summaries[(name, condition)] = summarize(frames, dataset, protocol)
            else:
                if conditions:
                    names.append(name)
        summaries = {k: v for k, v in summaries.items() if k[0] in names}
        runfolder.write_outputs(out, summaries)
        write_robustness(out, summaries, protocol, dataset, stems)
        manifest.finish(m, names)
        manifest.write(out, m)
    return summaries
