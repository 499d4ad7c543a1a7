"""zeg-eval's one cache folder: what it makes on first use and can make again (the generated sample,
ZegCLIP text embeddings of a vocabulary).

`$ZEG_EVAL_CACHE` when set, else the platform's user cache folder (platformdirs:
`~/.cache/zeg-eval` on Linux, or `$XDG_CACHE_HOME/zeg-eval`; `~/Library/Caches/zeg-eval` on macOS;
`%LOCALAPPDATA%\\zeg-eval\\Cache` on Windows). Never the current folder: a command run anywhere
leaves there only what it was asked to write (a run folder, a report). Deleting the cache is safe.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "ZEG_EVAL_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (not created), or a path inside it."""
    given = os.environ.get(ENV)
    if given:
        base = Path(given).expanduser()
    else:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("zeg-eval", appauthor=False))
    return base.joinpath(*parts)
