"""The defaults zeg-eval ships: protocols, ZegCLIP configs, text embeddings and splits.

Their source of truth is the checkout's top-level `protocols/`, `configs/` and `third_party/`
folders. Building the package (`pip install .`, a wheel) copies those three folders whole into it as
`harness/_shipped/` (setup.py's build step), so a new protocol or config file ships without a list
to update; a checkout used in place (`pip install -e .`, PYTHONPATH) reads them where they are.
Both keep the checkout's layout under one root, so the relative paths inside them (a protocol's
`config: ../configs/...`, a config's `text_embedding='third_party/...'`) hold either way.
"""
from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from harness.errors import UserError

FOLDERS = ("protocols", "configs", "third_party")  # what the build copies into harness/_shipped/
PACKAGED = "_shipped"
PROTOCOL_SUFFIXES = (".yaml", ".yml")


def root() -> Path:
    """The folder holding protocols/, configs/ and third_party/: the package's copy when installed,
    else the checkout this module lies in."""
    packaged = resources.files("harness").joinpath(PACKAGED)
    if packaged.is_dir():
        return Path(str(packaged))  # an installed wheel lies on disk: its Traversable is a path
    return Path(__file__).resolve().parents[1]


def protocol_names() -> list[str]:
    """The shipped protocols, by name (the file stem)."""
    folder = root() / "protocols"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in PROTOCOL_SUFFIXES and p.is_file())


def _shipped_protocol(name: str) -> Path | None:
    for suffix in PROTOCOL_SUFFIXES:
        path = root() / "protocols" / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def find_protocol(text: str | Path) -> Path:
    """The protocol file `text` names: a path to a file (as given, relative to the current folder),
    else a shipped protocol's name (`small_targets`, `all`; `small_targets.yaml` too), from any folder.
    Neither: one line that names the closest shipped protocol."""
    path = Path(text).expanduser()
    if path.is_file():
        return path
    text = str(text)
    stem = path.stem if path.suffix in PROTOCOL_SUFFIXES else path.name
    if "/" not in text and "\\" not in text:  # a bare name: the shipped protocol of that name
        shipped = _shipped_protocol(stem)
        if shipped is not None:
            return shipped
    names = protocol_names()
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    what = "no such protocol file" if ("/" in text or "\\" in text or path.suffix) else "no such protocol"
    raise UserError(f"{what} '{text}'{hint} (a YAML file, or a shipped protocol by name: "
                    f"{', '.join(names) or 'none found'})")
