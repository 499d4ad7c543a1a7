"""The model kinds zeg-eval knows, and parsing a protocol's `models:` list through them.

Adding a kind: write its module (a spec dataclass and a `ModelKind`, see harness.models.base) and
add one line here.
"""
from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.models.base import ModelKind, check_unique
from harness.models.baselines import BaselineKind
from harness.models.folder import FolderKind
from harness.models.mmseg_model import MmsegKind
from harness.models.pixel_model import PixelKind
from harness.models.zegclip_model import ZegclipKind

KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    BaselineKind(),
    FolderKind(),
    MmsegKind(),
    PixelKind(),
    ZegclipKind(),
)}
_KEYS = sorted({kind.key for kind in KINDS.values()})


def kind_of(spec) -> ModelKind:
    return KINDS[spec.kind]


def parse_model(entry, where: str, protocol_path: Path | None):
    """One `models:` entry; `where` names it in messages (e.g. 'line 12: models[2]')."""
    if not isinstance(entry, dict):
        raise UserError(f"{where}: a model must be a mapping with 'name' and one of {'/'.join(_KEYS)}", protocol_path)
    keys = [k for k in _KEYS if k in entry]
    if len(keys) != 1:
        raise UserError(f"{where}: a model needs exactly one of {', '.join(repr(k) for k in _KEYS)}"
                        + (f" (has {', '.join(keys)})" if keys else ""), protocol_path)
    matching = [kind for kind in KINDS.values() if kind.matches(entry)]
    if not matching:  # e.g. an unknown loader: the kind of that key says what is allowed
        matching = [kind for kind in KINDS.values() if kind.key == keys[0]]
    return matching[0].parse(entry, where, protocol_path)


def _entry_lines(protocol_path: Path | None) -> list[int]:
    """Line numbers of the `models:` entries in the protocol file (for messages)."""
    if protocol_path is None:
        return []
    try:
        import yaml

        from harness.config.yamlcfg import parse_yaml

        root = parse_yaml(protocol_path)
        for key, value in root.value:
            if key.value == "models" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    except Exception:  # the protocol was parsed before; lines are only a courtesy
        pass
    return []


def parse_models(entries, protocol_path: Path | None = None) -> list:
    """Every entry of a protocol's `models:` list; names must be unique."""
    lines = _entry_lines(protocol_path)
    specs = []
    for i, entry in enumerate(entries or ()):
        where = (f"line {lines[i]}: " if i < len(lines) else "") + f"models[{i}]"
        specs.append(parse_model(entry, where, protocol_path))
    check_unique(specs, protocol_path)
    return specs
