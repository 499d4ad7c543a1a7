"""The `zeg-eval run` command: protocol, models, data and options from the command line -> a run."""
from __future__ import annotations

from pathlib import Path

from harness.data.dataset import DatasetSpec, load_dataset
from harness.errors import UserError
from harness.evaluation.protocol import Protocol, load_protocol
from harness.models.base import Runtime, resolve_path
from harness.models.folder import parse_prediction_arg
from harness.models.registry import parse_models
from harness.run import runfolder
from harness.run.distributed import distributed_from_env
from harness.run.options import RunOptions, parse_shard
from harness.run.runner import run
from harness.shipped import find_protocol


def resolve_data(data, protocol: Protocol) -> DatasetSpec:
    """--data, else the protocol's `data:`: a dataset folder (or its yaml), an mmseg config, or `sample`."""
    if data is None and protocol.data is None:
        raise UserError("no data: give --data DIR (a folder with dataset.yaml) or 'sample'", protocol.path)
    if data is None:
        text = str(protocol.data)
        data = _sample() if text == "sample" else resolve_path(text, protocol.path.parent if protocol.path else None)
    elif str(data) == "sample":
        data = _sample()
    if Path(data).suffix == ".py" and Path(data).is_file():  # an mmseg dataset config
        from harness.data.mmseg_config import dataset_from_mmseg_config

        return dataset_from_mmseg_config(data)
    return load_dataset(data)


def _sample() -> Path:
    from harness.data.sample import ensure_sample

    return ensure_sample()


def choose_models(protocol: Protocol, names, predictions) -> list:
    """The protocol's models (or those named by --model), plus --predictions folders, which replace
    the protocol's models when no --model is given."""
    specs = parse_models(protocol.models, protocol.path)
    if names:
        known = {m.name: m for m in specs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UserError(f"--model '{unknown[0]}' is not in the protocol (its models: "
                            f"{', '.join(known) or 'none'})", protocol.path)
        chosen = [known[n] for n in names]
    else:
        chosen = [] if predictions else specs
    return chosen + [parse_prediction_arg(p) for p in predictions or []]


def run_from_args(protocol_path, data, predictions, out, limit=None, workers=None, *, models=None,
                  device="auto", precision=None, batch_size=None, loader_workers=None, save_predictions=False, save_inputs=False,
                  shard=None, chunk_size=64) -> tuple[Path, dict]:
    """The `run` command; returns (run folder, summary.json's content)."""
    protocol = load_protocol(find_protocol(protocol_path))
    chosen = choose_models(protocol, models, predictions)
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    dataset = resolve_data(data, protocol)
    out = runfolder.check_out(Path(out) if out else Path("runs") / protocol.name)  # a name is a plain folder name
    distributed = distributed_from_env()
    if distributed is not None and shard is not None:
        raise UserError("give --shard or launch with torchrun, not both")
    try:
        device = device or "auto"
        if distributed is not None and device in ("", "auto", "cuda"):
            device = distributed.device(device)
        options = RunOptions(out=out, limit=limit, workers=workers, models=chosen, conditions=protocol.conditions,
                             runtime=Runtime(device=device, precision=precision, batch_size=batch_size,
                                             loader_workers=loader_workers),
                             save_predictions=save_predictions, save_inputs=save_inputs, chunk_size=chunk_size,
                             shard=(distributed.rank, distributed.world) if distributed else parse_shard(shard),
                             distributed=distributed)
        return out, run(protocol, dataset, options)
    finally:
        if distributed is not None:
            distributed.close()
