"""Per-image records on disk: chunked parquet tables, written atomically, resumable.

A model's records live in `RUN/records/<model>/` as `<table>-<k>.parquet` for the tables of
`harness.evaluation.tables.TABLES`. Chunk k is committed by its `images-<k>.parquet`, which is renamed into
place last: a chunk without it (an interrupted write) is deleted on the next open, so a rerun
recomputes exactly the images that were not committed and never duplicates a row.

A shard of a split run (`--shard i/n`, torchrun) writes into its own part folder
`RUN/records/<model>/shard-<i>-of-<n>/`; readers take the union of every part, so shards merge
into one model, and an image recorded by any part counts as done for every later run.

Chunks are written with pyarrow from the workers' numpy columns; pandas (0.2 s to import) is only
needed to read records back, and is imported there: the scoring loop forks its metric workers
before it is loaded (harness.run.scoring).
"""
from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import UserError
from harness.evaluation.tables import TABLES, concat_tables

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = re.compile(r"^(?P<table>[a-z_]+)-(?P<k>\d{5})\.parquet$")


def _parquet():
    """pyarrow.parquet, with the system allocator as pyarrow's default memory pool.

    pyarrow's own default (mimalloc) keeps what a read frees: reading the records back for a
    summary grew the run's peak memory by about 100 KB per image (48 -> 384 images: +42 -> +77
    MiB); with the system allocator, by about the size of the rows read (+18 -> +31 MiB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    return pq


def _write_parquet_atomic(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa

    tmp = path.with_name(path.name + ".tmp")
    _parquet().write_table(pa.table(columns), tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def part_name(shard: tuple[int, int] | None) -> str | None:
    return None if shard is None else f"shard-{shard[0]}-of-{shard[1]}"


def _parts(model_dir: Path) -> list[Path]:
    """The model folder and its shard part folders, in a fixed order."""
    if not model_dir.is_dir():
        return []
    return [model_dir] + sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.startswith("shard-"))


def done_images(model_dir: str | Path) -> set[str]:
    """Images with committed records in any part of a model's folder."""
    paths = [p for part in _parts(Path(model_dir)) for p in sorted(part.glob("images-*.parquet"))]
    if not paths:
        return set()
    pq = _parquet()
    return {image for p in paths for image in pq.read_table(p, columns=["image"]).column("image").to_pylist()}


class RecordWriter:
    """Buffers per-image tables and writes them as one committed chunk every `chunk_size` images."""

    def __init__(self, model_dir: str | Path, chunk_size: int = 64, part: str | None = None):
        self.model_dir = Path(model_dir)
        self.dir = self.model_dir / part if part else self.model_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.chunk_size = chunk_size
        self._buffer: list[tuple[str, dict]] = []
        committed = self._clean_uncommitted()
        self._next_chunk = max(committed, default=-1) + 1

    def _clean_uncommitted(self) -> set[int]:
        files = [(p, _CHUNK.match(p.name)) for p in self.dir.iterdir() if p.is_file()]
        committed = {int(m["k"]) for p, m in files if m and m["table"] == "images"}
        for path, match in files:
            if path.name.endswith(".tmp") or (match and int(match["k"]) not in committed):
                path.unlink()
        return committed

    def done_images(self) -> set[str]:
        """Images committed by any part of the model (this one and other shards)."""
        return done_images(self.model_dir)

    def add(self, image: str, tables: dict[str, dict[str, np.ndarray]]) -> None:
        self._buffer.append((image, tables))
        if len(self._buffer) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        k = self._next_chunk
        columns = concat_tables(self._buffer)
        for table in TABLES:  # "images" is last: it commits the chunk
            if table == "images" or len(columns[table]["image"]):
                _write_parquet_atomic(columns[table], self.dir / f"{table}-{k:05d}.parquet")
        self._buffer.clear()
        self._next_chunk += 1


def _chunk_files(part: Path, table: str) -> list[Path]:
    """The committed chunk files of one table in one part, in chunk order."""
    committed = {m["k"] for p in part.glob("images-*.parquet") if (m := _CHUNK.match(p.name))}
    return sorted(p for p in part.glob(f"{table}-*.parquet") if (m := _CHUNK.match(p.name)) and m["k"] in committed)


def _read_chunk(path: Path) -> pd.DataFrame:
    # pyarrow's reader directly: pandas' read_parquet adds ~5 ms a file
    return _parquet().read_table(path).to_pandas()


def read_tables(model_dir: str | Path, images=None, *, pixel_sums: bool = False) -> dict[str, pd.DataFrame]:
    """All committed records of one model (every part), table name -> DataFrame.

    Rows are ordered by image name (stably: an image's rows keep their order), so the tables are
    the same whatever the order in which chunks, resumed runs or shards wrote them. `images`
    (optional) keeps only those images. An image recorded by two parts is taken from the first.
    Absent tables are empty frames.

    pixel_sums: the pixel table summed per class instead (one row per class, no `image` column),
    chunk by chunk. Its columns are additive, and it is the largest table (one row per class of
    every image), so a summary's memory does not grow with it.
    """
    import pandas as pd

    parts = _parts(Path(model_dir))
    owner: dict[str, int] = {}
    for index, part in enumerate(parts):
        for path in _chunk_files(part, "images"):
            for image in _read_chunk(path)["image"]:
                owner.setdefault(image, index)
    wanted = None if images is None else set(images)
    owned = [[im for im, i in owner.items() if i == index and (wanted is None or im in wanted)]
             for index in range(len(parts))]
    out = {}
    for table in TABLES:
        frames = []
        summed = table == "pixel" and pixel_sums
        for index, part in enumerate(parts):
            for path in _chunk_files(part, table):
                frame = _read_chunk(path)
                frame = frame[frame["image"].isin(owned[index]).to_numpy(dtype=bool)]
                if summed:  # keep the running per-class sum only
                    frames = [pd.concat([*frames, frame.drop(columns="image")]).groupby("class", as_index=False).sum()]
                else:
                    frames.append(frame)
        frames = [f for f in frames if len(f)] or frames[:1]
        if frames:
            frame = pd.concat(frames, ignore_index=True)
            if not summed:
                frame = frame.sort_values("image", kind="stable", ignore_index=True)
        else:
            frame = pd.DataFrame({"image": []})
        out[table] = frame
    return out


class RunLock:
    """A lock on a run folder: a second run writing into it at the same time is refused.

    A whole run holds `.lock` exclusively. The shards of a split run hold `.lock` shared (so shards
    run side by side but never beside a whole run) and their own `.lock-shard-<i>-of-<n>` exclusively.
    Locks are flock(2) locks: they vanish with the process, a killed run leaves nothing to clean.
    """

    def __init__(self, run_dir: str | Path, shard: tuple[int, int] | None = None):
        self.dir = Path(run_dir)
        self.shard = shard
        self._handles = []

    def _take(self, name: str, mode: int, message: str) -> None:
        handle = open(self.dir / name, "a+")
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            self.release()
            raise UserError(message, self.dir) from None
        self._handles.append(handle)

    def __enter__(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        busy = "another zeg-eval run is writing into this folder; wait for it or use another --out"
        if self.shard is None:
            self._take(".lock", fcntl.LOCK_EX, busy)
        else:
            self._take(".lock", fcntl.LOCK_SH, busy + " (a whole run, not a shard, holds it)")
            i, n = self.shard
            self._take(f".lock-shard-{i}-of-{n}", fcntl.LOCK_EX,
                       f"shard {i}/{n} is already running into this folder")
        return self

    def release(self) -> None:
        for handle in reversed(self._handles):
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self._handles.clear()

    def __exit__(self, *exc):
        self.release()
        return False
