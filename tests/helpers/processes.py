"""A process's children and their state, read from Linux's /proc (tests that kill metric workers)."""
from __future__ import annotations

from pathlib import Path

HAS_PROC = Path("/proc/self/task").is_dir()


def children(pid: int) -> list[int]:
    """The pids of the process's children (its metric workers, for a run)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def state(pid: int) -> str:
    """The process's state letter (R running, S sleeping, Z zombie, ...); '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
