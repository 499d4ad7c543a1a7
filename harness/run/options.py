"""The settings of one `zeg-eval run` (what the command line gives), checked."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.conditions.spec import CLEAN_CONDITION, Condition
from harness.errors import UserError
from harness.models.base import Runtime


@dataclass
class RunOptions:
    out: Path
    limit: int | None = None
    workers: int | None = None             # metric worker processes
    models: list = field(default_factory=list)  # model specs (harness.models)
    conditions: tuple[Condition, ...] = (CLEAN_CONDITION,)  # image conditions each model is evaluated under
    runtime: Runtime = field(default_factory=Runtime)
    save_predictions: bool = False
    save_inputs: bool = False              # write each condition's images under RUN/inputs/<condition>/
    shard: tuple[int, int] | None = None   # (i, n), 0 <= i < n
    chunk_size: int = 64
    distributed: object | None = None      # a harness.run.distributed.Distributed under torchrun

    def entry(self) -> dict:
        """For the manifest."""
        r = self.runtime
        return {"limit": self.limit, "workers": self.workers, "device": r.device, "precision": r.precision,
                "batch_size": r.batch_size, "save_predictions": self.save_predictions, "chunk_size": self.chunk_size,
                "shard": None if self.shard is None else list(self.shard), "conditions": [c.name for c in self.conditions],
                "save_inputs": self.save_inputs}


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
