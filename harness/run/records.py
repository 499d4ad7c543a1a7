"""Per-image records on disk: chunked parquet tables, written atomically, resumable.

Layout (hive-partitioned, so `pd.read_parquet("RUN/records/objects")` reads one table of every
model and condition, with `model` and `condition` columns):

    RUN/records/<table>/model=<model>/condition=<condition>/<part>-<k>.parquet

for the tables of `harness.evaluation.tables.TABLES`. `part` is `whole`, or `shard-<i>-of-<n>` for a
shard of a split run (`--shard i/n`, torchrun). Chunk k of a part is committed by its `images`
file, which is renamed into place last: a chunk without it (an interrupted write) is deleted on
the next open, so a rerun recomputes exactly the images that were not committed and never
duplicates a row. Readers take the union of every part, so shards merge into one model, and an
image recorded by any part counts as done for every later run.

A committed chunk that cannot be read (a torn or overwritten file) is damaged: a writer deletes
it with a one-line warning and its images are computed again; a strict reader (the report)
refuses it in one line.

The `images` table also holds what each image's records were made from: `identity` (a digest of
the model's setup, the protocol and the condition), `data_digest` (its label, instance and amodal
files) and `input_digest` (the model's own input file: a prediction or the image, where it has
one). A rerun checks them before it trusts a record (harness.run.identity).

Chunks are written with pyarrow from the workers' numpy columns; pandas (0.2 s to import) is only
needed to read records back, and is imported there: the scoring loop forks its metric workers
before it is loaded (harness.run.scoring).
"""
from __future__ import annotations

import fcntl
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import UserError
from harness.evaluation.tables import TABLES, concat_tables
from harness.files import atomic_write, check_component, is_temporary

if TYPE_CHECKING:
    import pandas as pd

RECORDS = "records"
WHOLE = "whole"
_CHUNK = re.compile(r"^(?P<part>whole|shard-\d+-of-\d+)-(?P<k>\d{5})\.parquet$")


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


def part_name(shard: tuple[int, int] | None) -> str:
    return WHOLE if shard is None else f"shard-{shard[0]}-of-{shard[1]}"


@dataclass(frozen=True)
class RecordSet:
    """The records of one model under one condition in a run folder."""
    run_dir: Path
    model: str
    condition: str = "clean"

    def __post_init__(self):
        check_component(self.model, "model name")
        check_component(self.condition, "condition name")

    def folder(self, table: str) -> Path:
        return Path(self.run_dir) / RECORDS / table / f"model={self.model}" / f"condition={self.condition}"

    def exists(self) -> bool:
        return self.folder("images").is_dir()


def record_sets(run_dir: Path) -> list[RecordSet]:
    """Every (model, condition) with an images partition in the run folder, sorted."""
    root = Path(run_dir) / RECORDS / "images"
    out = []
    if root.is_dir():
        for model_dir in sorted(root.glob("model=*")):
            for cond_dir in sorted(model_dir.glob("condition=*")):
                out.append(RecordSet(Path(run_dir), model_dir.name[6:], cond_dir.name[10:]))
    return out


@dataclass(frozen=True)
class _Chunk:
    part: str
    k: int

    def file(self, records: RecordSet, table: str) -> Path:
        return records.folder(table) / f"{self.part}-{self.k:05d}.parquet"


def _committed(records: RecordSet) -> list[_Chunk]:
    folder = records.folder("images")
    if not folder.is_dir():
        return []
    chunks = [_Chunk(m["part"], int(m["k"])) for p in folder.iterdir() if (m := _CHUNK.match(p.name))]
    return sorted(chunks, key=lambda c: (c.part != WHOLE, c.part, c.k))


def _damage(records: RecordSet, chunk: _Chunk) -> str | None:
    """Why a committed chunk cannot be read (None when every table file of it is sound)."""
    pq = _parquet()
    for table in TABLES:
        path = chunk.file(records, table)
        if table != "images" and not path.exists():
            continue  # a table without rows in this chunk is not written
        try:
            meta = pq.read_metadata(path)
            if table == "images" and meta.num_rows == 0:
                return f"{path.name} of {table} has no rows"
        except Exception as exc:  # pyarrow raises several types for a torn or foreign file
            return f"{table}/{path.name}: {' '.join(str(exc).split())[:120]}"
    return None


def check_chunks(records: RecordSet, parts: set[str] | None = None, strict: bool = False) -> list[str]:
    """Delete the damaged committed chunks of `parts` (all parts when None), saying so in one line
    each, and return what was wrong. strict: raise a UserError instead (and delete nothing)."""
    problems = []
    for chunk in _committed(records):
        if parts is not None and chunk.part not in parts:
            continue
        why = _damage(records, chunk)
        if why is None:
            continue
        where = records.folder("images").parent.parent
        if strict:
            raise UserError(f"damaged record chunk {chunk.part}-{chunk.k:05d} of model '{records.model}', condition "
                            f"'{records.condition}' ({why}); rerun `zeg-eval run` into this folder to recompute it",
                            where)
        for table in TABLES[::-1]:  # the commit file first: the chunk stops counting at once
            chunk.file(records, table).unlink(missing_ok=True)
        problems.append(why)
        print(f"zeg-eval: warning: damaged records of model '{records.model}' ({why}); "
              "their images are computed again", file=sys.stderr, flush=True)
    return problems


def _read(path: Path, columns=None) -> pd.DataFrame:
    # pyarrow's reader directly: pandas' read_parquet adds ~5 ms a file
    return _parquet().read_table(path, columns=columns).to_pandas()


def image_rows(records: RecordSet, columns=None) -> pd.DataFrame | None:
    """The committed `images` rows of every part (first part wins for an image recorded twice);
    None when nothing is committed (without importing pandas: a fresh run forks its metric
    workers before pandas and pyarrow are loaded)."""
    chunks = _committed(records)
    if not chunks:
        return None
    import pandas as pd

    frames = []
    for chunk in chunks:
        try:
            frames.append(_read(chunk.file(records, "images"), columns=columns).assign(_part=chunk.part))
        except Exception:  # damaged: not done (a writer deletes it, a strict reader refuses it)
            continue
    if not frames:
        return pd.DataFrame({"image": pd.Series(dtype=str), "_part": pd.Series(dtype=str)})
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates("image", keep="first", ignore_index=True)


def done_images(records: RecordSet) -> set[str]:
    """Images with committed records in any part."""
    rows = image_rows(records, columns=["image"])
    return set() if rows is None else set(rows["image"].tolist())


class RecordWriter:
    """Buffers per-image tables and writes them as one committed chunk every `chunk_size` images."""

    def __init__(self, records: RecordSet, chunk_size: int = 64, part: str = WHOLE):
        self.records = records
        self.part = part
        self.chunk_size = chunk_size
        self._buffer: list[tuple[str, dict]] = []
        for table in TABLES:
            records.folder(table).mkdir(parents=True, exist_ok=True)
        self._clean_uncommitted()
        # A damaged chunk is lost whoever wrote it (committed chunks are never rewritten): any
        # writer may delete one, so that its images count as pending.
        check_chunks(records)
        mine = [c.k for c in _committed(records) if c.part == part]
        self._next_chunk = max(mine, default=-1) + 1

    def _clean_uncommitted(self) -> None:
        committed = {c.k for c in _committed(self.records) if c.part == self.part}
        for table in TABLES:
            for path in self.records.folder(table).iterdir():
                match = _CHUNK.match(path.name)
                if (is_temporary(path) and f".{self.part}-" in path.name) or (
                        match and match["part"] == self.part and int(match["k"]) not in committed):
                    path.unlink()

    def add(self, image: str, tables: dict[str, dict[str, np.ndarray]]) -> None:
        self._buffer.append((image, tables))
        if len(self._buffer) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        import pyarrow as pa

        chunk = _Chunk(self.part, self._next_chunk)
        columns = concat_tables(self._buffer)
        for table in TABLES:  # "images" is last: it commits the chunk
            if table == "images" or len(columns[table]["image"]):
                atomic_write(chunk.file(self.records, table),
                             lambda tmp, t=table: _parquet().write_table(pa.table(columns[t]), tmp), fsync=True)
        self._buffer.clear()
        self._next_chunk += 1


def read_tables(records: RecordSet, images=None, *, pixel_sums: bool = False,
                strict: bool = False) -> dict[str, pd.DataFrame]:
    """All committed records of one model and condition (every part), table name -> DataFrame.

    Rows are ordered by image name (stably: an image's rows keep their order), so the tables are
    the same whatever the order in which chunks, resumed runs or shards wrote them. `images`
    (optional) keeps only those images. An image recorded by two parts is taken from the first.
    Absent tables are empty frames. strict: a damaged chunk is a UserError (else it is skipped).

    pixel_sums: the pixel table summed per class instead (one row per class, no `image` column),
    chunk by chunk. Its columns are additive, and it is the largest table (one row per class of
    every image), so a summary's memory does not grow with it.
    """
    import pandas as pd

    check_chunks(records, strict=strict)
    owner: dict[str, str] = {}
    sound = []
    for chunk in _committed(records):
        try:
            names = _read(chunk.file(records, "images"), columns=["image"])["image"]
        except Exception:
            continue
        sound.append(chunk)
        for image in names:
            owner.setdefault(image, chunk.part)
    wanted = None if images is None else set(images)
    owned = {part: {im for im, p in owner.items() if p == part and (wanted is None or im in wanted)}
             for part in set(owner.values())}
    out = {}
    for table in TABLES:
        frames = []
        summed = table == "pixel" and pixel_sums
        for chunk in sound:
            path = chunk.file(records, table)
            if not path.exists():
                continue
            frame = _read(path)
            frame = frame[frame["image"].isin(owned.get(chunk.part, ())).to_numpy(dtype=bool)]
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
