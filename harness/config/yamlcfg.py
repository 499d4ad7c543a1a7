"""YAML with line numbers, so a typo is reported as `file: line N: ...` and never as a traceback."""
from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import UserError

def to_python(node):
    """Plain Python values from a composed node (safe tags only), remembering nothing."""
    return yaml.safe_load(yaml.serialize(node)) if node is not None else None

def parse_yaml(path: str | Path):
    """The composed root node of a YAML file; syntax errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    try:
        return yaml.compose(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}YAML syntax error: {problem}", path) from None

def mapping_items(node, path, where="top level"):
    """(key, value_node, line) of a mapping node; anything else is an error with its line."""
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1 if node is not None else 1
        raise UserError(f"line {line}: {where} must be a mapping", path)
    return [(k.value, v, k.start_mark.line + 1) for k, v in node.value]

def check_keys(items, allowed, path, where="top level"):
    for key, _, line in items:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
            raise UserError(f"line {line}: unknown key '{key}' in {where}{hint}", path)

def load_yaml_mapping(path: str | Path, allowed: set[str]) -> tuple[dict, dict]:
    """A flat mapping with only `allowed` keys: (values, {key: line})."""
    node = parse_yaml(path)
    items = mapping_items(node, path)
    check_keys(items, allowed, path)
    return {k: to_python(v) for k, v, _ in items}, {k: line for k, _, line in items}

