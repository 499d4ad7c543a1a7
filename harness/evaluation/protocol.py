"""Protocols: which metric families to compute, with which parameters (declarative YAML).

    name: small_targets
    description: ...
    families:
      standard: {}                 # defaults are the conventions in README.md
      size: {buckets: {small: [0, 1024], medium: [1024, 9216], large: [9216, null]}}
    data: sample                   # default dataset for `zeg-eval run` without --data
    models: [...]                  # models to run (harness.models); optional for scoring folders
    conditions: [clean, gaussian_noise-3, {resolution: [0.5]}]   # image conditions (harness.conditions.spec;
                                   # default: clean only); a prediction folder holds a condition's
                                   # maps in <folder>/<condition>/<stem>.png
    robustness: {reference: m}     # the model mean Corruption Errors are relative to (optional)

Unknown keys anywhere are errors naming the file and line.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from harness.conditions.spec import CLEAN_CONDITION, parse_conditions
from harness.config.yamlcfg import check_keys, mapping_items, parse_yaml, to_python
from harness.errors import UserError
from harness.metrics.registry import FAMILIES

# A protocol's name is the default run folder's name: one plain path component, never '..' or '/x'.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


def family_config(family: str, given: dict | None = None):
    """The config dataclass of `family` from keyword values (ValueError on a bad value or key)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family '{family}' (known: {', '.join(FAMILIES)})")
    return FAMILIES[family].config_type(**(given or {}))


@dataclass(frozen=True)
class RobustnessSettings:
    """How a run with conditions summarises them (harness.evaluation.robustness)."""
    reference: str | None = None   # the model whose errors mean Corruption Errors divide by
    bootstrap: int = 1000          # resamples for the intervals of clean - corrupted (0: none)
    seed: int = 0                  # of the resamples

    def __post_init__(self):
        if self.reference is not None and (not isinstance(self.reference, str) or not SAFE_NAME.match(self.reference)):
            raise ValueError(f"reference must be a model name, not {self.reference!r}")
        for name in ("bootstrap", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


@dataclass(frozen=True)
class Protocol:
    name: str
    families: dict  # family name -> its config dataclass, in a fixed order
    description: str = ""
    data: str | None = None
    models: tuple = ()
    path: Path | None = None
    conditions: tuple = (CLEAN_CONDITION,)   # harness.conditions.spec.Condition, clean first
    robustness: RobustnessSettings = RobustnessSettings()

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "data": self.data,
                "families": {k: dataclasses.asdict(v) for k, v in self.families.items()},
                "models": list(self.models), "conditions": [c.describe() for c in self.conditions],
                "robustness": dataclasses.asdict(self.robustness)}


def _family_config(cls, node, path, family):
    if node is None or (hasattr(node, "value") and node.value in ("", None, [])):
        return cls()
    items = mapping_items(node, path, where=f"families.{family}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(items, set(names), path, where=f"families.{family}")
    kwargs = {}
    for key, value_node, line in items:
        value = to_python(value_node)
        default = names[key].default_factory() if names[key].default_factory is not dataclasses.MISSING else names[key].default
        if isinstance(default, dict):
            if not isinstance(value, dict) or not all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value.values()):
                raise UserError(f"line {line}: families.{family}.{key} must map bucket names to [low, high]", path)
            value = {str(k): (v[0], v[1]) for k, v in value.items()}
        elif isinstance(default, tuple):
            if not isinstance(value, list):
                raise UserError(f"line {line}: families.{family}.{key} must be a list", path)
            value = tuple(value)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise UserError(f"line {line}: families.{family}.{key} must be a number", path)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        line = next((ln for key, _, ln in items if str(exc).startswith(key)), items[0][2] if items else 1)
        raise UserError(f"line {line}: families.{family}.{exc}", path) from None


def _robustness(entry, path) -> RobustnessSettings:
    node, line = entry
    items = mapping_items(node, path, where="robustness")
    check_keys(items, {f.name for f in dataclasses.fields(RobustnessSettings)}, path, where="robustness")
    values = {key: to_python(value) for key, value, _ in items}
    try:
        return RobustnessSettings(**values)
    except ValueError as exc:
        line = next((ln for key, _, ln in items if str(exc).startswith(key)), line)
        raise UserError(f"line {line}: robustness.{exc}", path) from None


def load_protocol(path: str | Path) -> Protocol:
    path = Path(path)
    root = parse_yaml(path)
    items = mapping_items(root, path)
    check_keys(items, {"name", "description", "families", "data", "models", "conditions", "robustness"}, path)
    top = {k: (v, line) for k, v, line in items}
    if "families" not in top:
        raise UserError("a protocol needs 'families' (standard, size, occlusion, boundary)", path)
    families_node, _ = top["families"]
    families = {}
    fam_items = mapping_items(families_node, path, where="families")
    check_keys(fam_items, set(FAMILIES), path, where="families")
    if not fam_items:
        raise UserError(f"line {top['families'][1]}: 'families' is empty; name at least one of "
                        f"{', '.join(FAMILIES)}", path)
    given = {k: v for k, v, _ in fam_items}
    for name, family in FAMILIES.items():  # fixed order, whatever the file's order
        if name in given:
            families[name] = _family_config(family.config_type, given[name], path, name)
    models = to_python(top["models"][0]) if "models" in top else []
    if not isinstance(models, list):
        raise UserError(f"line {top['models'][1]}: models must be a list", path)
    name = to_python(top["name"][0]) if "name" in top else path.stem
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        line = top["name"][1] if "name" in top else 1
        raise UserError(f"line {line}: name must be letters, digits, '_', '-', '.', '+' (it names the run "
                        f"folder), not {name!r}", path)
    description = to_python(top["description"][0]) if "description" in top else ""
    if not isinstance(description, (str, type(None))):
        raise UserError(f"line {top['description'][1]}: description must be text", path)
    data = to_python(top["data"][0]) if "data" in top else None
    if not isinstance(data, (str, type(None))):
        raise UserError(f"line {top['data'][1]}: data must be a dataset folder, its yaml, or 'sample'", path)
    conditions = parse_conditions(top["conditions"][0], path) if "conditions" in top else (CLEAN_CONDITION,)
    robustness = _robustness(top["robustness"], path) if "robustness" in top else RobustnessSettings()
    if robustness.reference is not None and len(conditions) == 1:
        raise UserError(f"line {top['robustness'][1]}: robustness needs conditions besides clean", path)
    return Protocol(
        conditions=conditions,
        robustness=robustness,
        name=name,
        description=description or "",
        families=families,
        data=data,
        models=tuple(models),
        path=path,
    )
