"""torchrun: each process evaluates one shard (its rank of the world), on its own GPU where there are GPUs."""
from __future__ import annotations

import os


class Distributed:
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
        return Distributed()
    return None
