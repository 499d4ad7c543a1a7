"""What every model with weights needs from the run: a device, autocast, and the dataset's values
for `${dataset.*}` placeholders. torch is imported only inside these functions."""
from __future__ import annotations

import contextlib
import sys

import numpy as np

from harness.errors import UserError

PRECISIONS = ("fp32", "fp16", "bf16")


def pick_device(requested: str = "auto") -> str:
    """auto: CUDA when present, else the CPU; cuda / cuda:N only where CUDA is available."""
    import torch

    if requested in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: CUDA is not available on this machine")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N (got '{requested}')")
    return requested


def autocast(device: str, precision: str, name: str):
    """torch autocast for fp16 / bf16 on a GPU; fp32 (with a note) elsewhere."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if not device.startswith("cuda"):
        print(f"zeg-eval: model '{name}': {precision} autocast is for GPUs; running fp32 on {device}",
              file=sys.stderr, flush=True)
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def effective_precision(device: str, precision: str) -> str:
    """The precision a model really ran with on `device` (autocast is for GPUs only)."""
    return precision if device.startswith("cuda") else "fp32"


def dataset_values(dataset) -> dict:
    """What `${dataset.<key>}` stands for in a model's cfg_options (open-vocabulary models)."""
    unseen = dataset.unseen_mask
    return {"classes": list(dataset.classes), "num_classes": dataset.num_classes,
            "seen_ids": [int(i) for i in np.flatnonzero(~unseen)], "unseen_ids": [int(i) for i in np.flatnonzero(unseen)],
            "ignore_index": dataset.ignore_index}


def resolve_placeholders(options: dict, dataset) -> dict:
    """options with every value "${dataset.<key>}" replaced by the dataset's value."""
    values = dataset_values(dataset) if dataset is not None else {}
    out = {}
    for key, value in options.items():
        if isinstance(value, str) and value.startswith("${dataset.") and value.endswith("}"):
            name = value[len("${dataset."):-1]
            if name not in values:
                raise UserError(f"cfg_options {key}: unknown placeholder '{value}' "
                                f"(known: {', '.join('${dataset.' + k + '}' for k in values)})")
            value = values[name]
        out[key] = value
    return out
