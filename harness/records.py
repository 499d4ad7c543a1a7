"""Per-image records on disk: chunked parquet tables, written atomically, resumable.

A model's records live in `RUN/records/<model>/` as `<table>-<k>.parquet` for the tables of
`harness.evaluate.TABLES`. Chunk k is committed by its `images-<k>.parquet`, which is renamed into
place last: a chunk without it (an interrupted write) is deleted on the next open, so a rerun
recomputes exactly the images that were not committed and never duplicates a row.
"""
from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.evaluate import TABLES

_CHUNK = re.compile(r"^(?P<table>[a-z_]+)-(?P<k>\d{5})\.parquet$")


def _write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RecordWriter:
    """Buffers per-image tables and writes them as one committed chunk every `chunk_size` images."""

    def __init__(self, model_dir: str | Path, chunk_size: int = 64):
        self.dir = Path(model_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.chunk_size = chunk_size
        self._buffer: list[tuple[str, dict]] = []
        committed = self._clean_uncommitted()
        self._next_chunk = max(committed, default=-1) + 1

    def _clean_uncommitted(self) -> set[int]:
        files = [(p, _CHUNK.match(p.name)) for p in self.dir.iterdir()]
        committed = {int(m["k"]) for p, m in files if m and m["table"] == "images"}
        for path, match in files:
            if path.name.endswith(".tmp") or (match and int(match["k"]) not in committed):
                path.unlink()
        return committed

    def done_images(self) -> set[str]:
        paths = sorted(self.dir.glob("images-*.parquet"))
        if not paths:
            return set()
        return set(pd.concat([pd.read_parquet(p, columns=["image"]) for p in paths])["image"])

    def add(self, image: str, tables: dict[str, dict[str, np.ndarray]]) -> None:
        self._buffer.append((image, tables))
        if len(self._buffer) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        k = self._next_chunk
        for table in TABLES:  # "images" is last: it commits the chunk
            frames = []
            for image, tables in self._buffer:
                columns = tables.get(table) or {}
                n = len(next(iter(columns.values()))) if columns else 0
                if n:
                    frames.append(pd.DataFrame({"image": [image] * n, **columns}))
            if table == "images" or frames:
                frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"image": []})
                _write_parquet_atomic(frame, self.dir / f"{table}-{k:05d}.parquet")
        self._buffer.clear()
        self._next_chunk += 1


def read_tables(model_dir: str | Path) -> dict[str, pd.DataFrame]:
    """All committed records of one model, table name -> DataFrame (empty frames for absent tables)."""
    model_dir = Path(model_dir)
    committed = {m["k"] for p in model_dir.glob("images-*.parquet") if (m := _CHUNK.match(p.name))}
    out = {}
    for table in TABLES:
        paths = sorted(p for p in model_dir.glob(f"{table}-*.parquet")
                       if (m := _CHUNK.match(p.name)) and m["k"] in committed)
        frames = [pd.read_parquet(p) for p in paths]
        out[table] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"image": []})
    return out


class RunLock:
    """An exclusive lock on a run folder: a second run writing into it at the same time is refused."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ".lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise UserError("another zeg-eval run is writing into this folder; wait for it or use another --out",
                            self.path.parent) from None
        self._handle.write(str(os.getpid()))
        self._handle.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        return False
