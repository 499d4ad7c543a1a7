"""Model specs: the entries of a protocol's `models:` list, parsed and checked (no heavy imports).

Each entry is a mapping with a `name` and exactly one of `baseline`, `config` or `predictions`:

    models:
      - name: oracle                 # baselines: made from the ground truth, no weights
        baseline: oracle
      - name: drop_small
        baseline: drop_small
        max_area: 1024               # objects with fewer pixels are painted over by their surroundings
      - name: erode_2
        baseline: boundary_shift
        pixels: -2                   # < 0 erodes every object, > 0 dilates
      - name: seen_bias
        baseline: seen_bias
        seed: 0
        rate: 1.0                    # share of unseen objects relabelled
        target: null                 # a seen class name; null = a seeded random seen class per unseen class
      - name: zegclip_coco           # an mmseg 1.x model
        config: configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py
        checkpoint: ${ZEGCLIP_COCO_CKPT:-checkpoints/zegclip_coco_inductive.pth}
        loader: zegclip              # mmseg (default: strict key check) | zegclip (the port's loader)
        precision: fp16              # fp32 (default) | fp16 | bf16, autocast on GPU only
        batch_size: 1
        weights_only: true           # false: unpickle a trusted old checkpoint (torch >= 2.6)
        cfg_options: {model.decode_head.num_classes: 171}   # mmengine-style overrides; a value
                                     # "${dataset.classes}" / num_classes / seen_ids / unseen_ids /
                                     # ignore_index is the dataset's (open-vocabulary models)
      - name: other_codebase         # saved label maps <stem>.png
        predictions: preds/other

Relative paths are looked up beside the protocol file first, then in the current folder.
`${VAR}` and `${VAR:-default}` are replaced from the environment; an unset variable without a
default leaves the path empty, and such a model is skipped like one whose checkpoint is missing.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError

BASELINES = ("oracle", "drop_small", "boundary_shift", "seen_bias")
# The parameters each baseline uses (the others are ignored and left out of the manifest).
BASELINE_PARAMS = {"oracle": (), "drop_small": ("max_area", "connectivity"),
                   "boundary_shift": ("pixels", "connectivity"), "seen_bias": ("seed", "rate", "target", "connectivity")}
PRECISIONS = ("fp32", "fp16", "bf16")
LOADERS = ("mmseg", "zegclip")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    baseline: str
    max_area: int = 1024       # drop_small: objects with area < max_area pixels are removed
    pixels: int = 2            # boundary_shift: > 0 dilate, < 0 erode, by |pixels| (Euclidean disc)
    seed: int = 0              # seen_bias: class mapping and object choice
    rate: float = 1.0          # seen_bias: share of unseen objects relabelled
    target: str | None = None  # seen_bias: one seen class for every unseen one
    connectivity: int = 8      # objects = instances where the dataset has them, else connected components

    kind = "baseline"


@dataclass(frozen=True)
class MmsegSpec:
    name: str
    config: Path
    checkpoint: Path | None            # None: not given or its variable is unset
    checkpoint_text: str = ""          # as written (before variables and lookup), for messages
    loader: str = "mmseg"
    precision: str = "fp32"
    batch_size: int = 1
    weights_only: bool = True
    cfg_options: dict = field(default_factory=dict)

    kind = "mmseg"


@dataclass(frozen=True)
class FolderSpec:
    name: str
    path: Path

    kind = "predictions"


ModelSpec = BaselineSpec | MmsegSpec | FolderSpec


def describe(spec: ModelSpec) -> dict:
    """A JSON-able description for the manifest (also used to refuse resuming with another setup)."""
    out = {"kind": spec.kind}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        out[f.name] = str(value) if isinstance(value, Path) else value
    if isinstance(spec, BaselineSpec):
        for key in set(BASELINE_PARAMS) - set(BASELINE_PARAMS[spec.baseline]):
            out.pop(key, None)
    if isinstance(spec, MmsegSpec):
        out["config"] = str(spec.config.resolve())
        out["checkpoint"] = None if spec.checkpoint is None else str(spec.checkpoint.resolve())
    if isinstance(spec, FolderSpec):
        out["path"] = str(spec.path.resolve())
    return out


def identity(spec: ModelSpec) -> dict:
    """The fields whose change would make old records of the model wrong."""
    out = describe(spec)
    for key in ("checkpoint", "checkpoint_text", "batch_size", "path"):
        out.pop(key, None)  # the checkpoint is compared by its hash; a folder may move
    return out


def expand_vars(text: str) -> str:
    def repl(m):
        name = m["name"] or m["bare"]
        value = os.environ.get(name)
        if value:
            return value
        return m["default"] if m["default"] is not None else ""

    return _VAR.sub(repl, text)


def resolve_path(text: str, base: Path | None) -> Path:
    """A path from a protocol: variables expanded; relative = beside the protocol, else the cwd."""
    path = Path(expand_vars(text)).expanduser()
    if path.is_absolute() or base is None:
        return path
    beside = base / path
    if beside.exists() or not path.exists():
        return beside
    return path


def _check_type(entry, key, types, where, path, what):
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise UserError(f"{where}: '{key}' must be {what}", path)
    return value


def parse_model(entry, where: str, protocol_path: Path | None) -> ModelSpec:
    """One `models:` entry; `where` names it in messages (e.g. 'line 12: models[2]')."""
    path = protocol_path
    base = protocol_path.parent if protocol_path is not None else None
    if not isinstance(entry, dict):
        raise UserError(f"{where}: a model must be a mapping with 'name' and one of baseline/config/predictions", path)
    kinds = [k for k in ("baseline", "config", "predictions") if k in entry]
    if len(kinds) != 1:
        raise UserError(f"{where}: a model needs exactly one of 'baseline', 'config', 'predictions'"
                        + (f" (has {', '.join(kinds)})" if kinds else ""), path)
    kind = kinds[0]
    name = entry.get("name", entry["baseline"] if kind == "baseline" else None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{where}: a model needs a 'name' of letters, digits, '_', '-', '.', '+'", path)
    if kind == "baseline":
        allowed = {f.name for f in dataclasses.fields(BaselineSpec)}
    elif kind == "config":
        allowed = {"name", "config", "checkpoint", "loader", "precision", "batch_size",
                                   "weights_only", "cfg_options"}
    else:
        allowed = {"name", "predictions"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' for a {kind} model (allowed: {', '.join(sorted(allowed))})", path)
    where = f"{where} ({name})"
    if kind == "baseline":
        if entry["baseline"] not in BASELINES:
            raise UserError(f"{where}: unknown baseline '{entry['baseline']}' (known: {', '.join(BASELINES)})", path)
        for key in ("max_area", "pixels", "seed", "connectivity"):
            if key in entry:
                _check_type(entry, key, int, where, path, "an integer")
        if "rate" in entry:
            _check_type(entry, "rate", (int, float), where, path, "a number")
            if not 0 <= entry["rate"] <= 1:
                raise UserError(f"{where}: 'rate' must be between 0 and 1", path)
        if entry.get("target") is not None:
            _check_type(entry, "target", str, where, path, "a class name")
        if entry.get("connectivity", 8) not in (4, 8):
            raise UserError(f"{where}: 'connectivity' must be 4 or 8", path)
        if entry["baseline"] == "boundary_shift" and entry.get("pixels", 2) == 0:
            raise UserError(f"{where}: 'pixels' must not be 0 (> 0 dilates, < 0 erodes)", path)
        return BaselineSpec(**{k: v for k, v in entry.items()} | {"name": name})
    if kind == "predictions":
        _check_type(entry, "predictions", str, where, path, "a folder path")
        return FolderSpec(name=name, path=resolve_path(entry["predictions"], base))
    _check_type(entry, "config", str, where, path, "a config file path")
    ckpt_text = entry.get("checkpoint")
    if ckpt_text is not None:
        _check_type(entry, "checkpoint", str, where, path, "a file path")
    checkpoint = resolve_path(ckpt_text, base) if ckpt_text and expand_vars(ckpt_text) else None
    loader = entry.get("loader", "mmseg")
    if loader not in LOADERS:
        raise UserError(f"{where}: 'loader' must be one of {', '.join(LOADERS)}", path)
    precision = entry.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise UserError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}", path)
    batch_size = entry.get("batch_size", 1)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserError(f"{where}: 'batch_size' must be a positive integer", path)
    weights_only = entry.get("weights_only", True)
    if not isinstance(weights_only, bool):
        raise UserError(f"{where}: 'weights_only' must be true or false", path)
    cfg_options = entry.get("cfg_options") or {}
    if not isinstance(cfg_options, dict):
        raise UserError(f"{where}: 'cfg_options' must be a mapping of dotted keys to values", path)
    return MmsegSpec(name=name, config=resolve_path(entry["config"], base), checkpoint=checkpoint,
                     checkpoint_text=ckpt_text or "", loader=loader, precision=precision, batch_size=batch_size,
                     weights_only=weights_only, cfg_options=dict(cfg_options))


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


def parse_models(entries, protocol_path: Path | None = None) -> list[ModelSpec]:
    """Every entry of a protocol's `models:` list; names must be unique."""
    lines = _entry_lines(protocol_path)
    specs: list[ModelSpec] = []
    for i, entry in enumerate(entries or ()):
        where = (f"line {lines[i]}: " if i < len(lines) else "") + f"models[{i}]"
        specs.append(parse_model(entry, where, protocol_path))
    check_unique(specs, protocol_path)
    return specs


def check_unique(specs, path=None) -> None:
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise UserError(f"two models are named '{spec.name}'; names must be unique", path)
        seen.add(spec.name)


def parse_prediction_arg(text: str) -> FolderSpec:
    """`--predictions NAME=DIR` or `DIR` (the model is then named after the folder)."""
    name, sep, path = text.partition("=")
    if not sep:
        path, name = text, Path(text.rstrip("/")).name
    if not name or not _NAME.match(name):
        raise UserError(f"bad model name in --predictions '{text}'")
    return FolderSpec(name=name, path=Path(path))
