"""Files: writing atomically, digests of inputs, and paths made from data kept inside their folder."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable

from harness.errors import UserError

# A name that becomes one path component (a model, a condition, a stem): no separators, no '..'.
_UNSAFE = re.compile(r"[/\\\x00]")


def atomic_write(path: str | Path, write: Callable[[Path], None], fsync: bool = False) -> None:
    """`write(tmp)` into a temporary file beside `path`, then rename it into place: a reader sees the
    old file or the whole new one, never a torn one (also when the process is killed midway)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def is_temporary(path: Path) -> bool:
    """A leftover of an interrupted `atomic_write`."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def digest_files(*paths: Path | None) -> str:
    """A short content digest (BLAKE2b, 128 bit) of the given files in order; None or a missing file
    counts as absent (so adding one later changes the digest)."""
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        if path is None or not Path(path).is_file():
            h.update(b"\x00absent\x00")
            continue
        data = Path(path).read_bytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def sha256_file(path: Path, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def check_component(name: str, what: str, source=None) -> str:
    """`name` as one plain path component (a stem, a model or condition name), else a UserError."""
    if not isinstance(name, str) or not name or name in (".", "..") or _UNSAFE.search(name) \
            or name != name.strip() or len(name) > 255:
        raise UserError(f"{what} {name!r} is not a plain file name (no '/', '\\\\', '..' or empty names)", source)
    return name


def inside(root: str | Path, *parts: str) -> Path:
    """root/parts..., refused when the result is not inside root (after resolving '..' and links)."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    if not path.resolve().is_relative_to(base):
        raise UserError(f"'{'/'.join(parts)}' would be written outside {root}", root)
    return path
