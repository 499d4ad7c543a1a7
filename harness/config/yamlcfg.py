"""YAML with line numbers, so a typo is reported as `file: line N: ...` and never as a traceback.

Every YAML file the tool reads (protocols, dataset.yaml) comes through `parse_yaml`, which also
refuses what a hostile or broken file could do to the process, each as one line naming the file
and the line: a file over `MAX_FILE_BYTES`, text that is not UTF-8, aliases that expand to more
than `MAX_ALIAS_NODES` nodes ("billion laughs": a few lines that would take gigabytes once
expanded), an alias of its own anchor, nesting deeper than `MAX_DEPTH`, and any explicit tag but
the plain JSON-like ones (`!!python/...`, `!!binary`, `!custom`). What passes converts to plain
Python values with the safe loader, in bounded time and memory.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import UserError

MAX_FILE_BYTES = 1 << 20     # a protocol or a dataset.yaml is a few KB; class lists of any dataset fit
MAX_ALIAS_NODES = 10_000     # nodes that aliases may add once expanded (an alias counts its whole value)
MAX_DEPTH = 100              # nested mappings / lists (the composer and converter recurse)

_STD = "tag:yaml.org,2002:"
# Explicit tags that only say what a plain value already is (e.g. `!!str 0123`).
ALLOWED_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _Refused(yaml.YAMLError):
    """A file the composer stops reading; `line` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def _printable(text: str, limit: int = 60) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown_tag(tag: str) -> str:
    return _printable("!!" + tag[len(_STD):] if tag.startswith(_STD) else tag)


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader's composer, counting what aliases expand to as the document is composed."""

    def __init__(self, stream):
        super().__init__(stream)
        self._expanded = 0                  # nodes added by aliases so far
        self._sizes: dict[int, tuple] = {}  # id(node) -> (nodes, depth) once expanded
        self._open: set[str] = set()        # anchors whose node is still being composed
        self._depth = 0

    def _measure(self, node) -> tuple[int, int]:
        """(nodes, depth) of `node` with every alias expanded; nodes capped at MAX_ALIAS_NODES + 1.
        Memoised: an anchored value is measured once however often it is aliased."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = ()
        total, depth = 1, 0
        for child in children:
            size, deep = self._measure(child)
            total, depth = min(total + size, MAX_ALIAS_NODES + 1), max(depth, deep)
        self._sizes[id(node)] = total, depth + 1
        return total, depth + 1

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(line, f"YAML alias *{_printable(event.anchor)} refers to its own anchor "
                                     "(a recursive value)")
            node = self.anchors.get(event.anchor)
            if node is not None:  # else the composer's own error: undefined alias
                size, depth = self._measure(node)
                self._expanded += size
                if self._expanded > MAX_ALIAS_NODES:
                    raise _Refused(line, f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                                         "(an alias bomb?); write the values out")
                if self._depth + depth > MAX_DEPTH:
                    raise _Refused(line, f"YAML nesting deeper than {MAX_DEPTH} levels (with aliases expanded)")
            return super().compose_node(parent, index)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in ALLOWED_TAGS:
            raise _Refused(line, f"YAML tag {_shown_tag(tag)} is not allowed (plain values only)")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(line, f"YAML nesting deeper than {MAX_DEPTH} levels")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)


def to_python(node):
    """Plain Python values from a composed node, by the safe loader's constructor (safe tags only)."""
    return yaml.constructor.SafeConstructor().construct_document(node) if node is not None else None


def _read_text(path: Path) -> str:
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UserError(f"file is larger than {MAX_FILE_BYTES >> 20} MB; a YAML file here may be at most that",
                        path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})", path) from None


def _check_values(loader: _BoundedLoader, root, path: Path) -> None:
    """Every value converts (so `to_python` on any part cannot fail later): an unhashable key or a
    bad merge is a YAMLError with its line; a scalar such as `2024-13-45` (a date, implicitly) fails
    with a ValueError, which names no line: the first scalar that fails is found for it."""
    try:
        if root is not None:
            loader.construct_document(root)  # the safe constructor on these nodes, as to_python's
    except yaml.YAMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - ValueError, OverflowError ... from a scalar's constructor
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.ScalarNode):
                try:
                    to_python(node)
                except Exception as scalar_exc:  # noqa: BLE001
                    raise UserError(f"line {node.start_mark.line + 1}: value {_printable(node.value)!r} cannot be "
                                    f"read: {_printable(str(scalar_exc), 120)}", path) from None
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(reversed(node.value))
            elif isinstance(node, yaml.MappingNode):
                stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        raise UserError(f"YAML value cannot be read: {_printable(str(exc), 120)}", path) from None


def parse_yaml(path: str | Path):
    """The composed root node of a YAML file; syntax errors and hostile content name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError("file not found", path)
    text = _read_text(path)
    try:
        loader = _BoundedLoader(text)
        try:
            root = loader.get_single_node()
            _check_values(loader, root, path)
        finally:
            loader.dispose()
        return root
    except _Refused as exc:
        raise UserError(f"line {exc.line}: {exc.message}", path) from None
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
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode):
            raise UserError(f"line {k.start_mark.line + 1}: a key in {where} must be plain text", path)
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
