"""Hostile YAML in any file the tool reads (a protocol, a dataset.yaml) and in any field: alias bombs
("billion laughs"), recursive aliases, tags (!!python/..., !!binary, !custom), deep nesting, huge or
non-UTF-8 files. Each is refused at once with exit 2 and ONE short line naming the file, the line
and the problem; nothing is written, nothing in the file runs. And every error line the CLI prints
is short, whatever the message."""
import time

import numpy as np
import pytest
import yaml
from helpers.cli import one_line_error, tree, zeg_eval_inprocess

from harness.config.yamlcfg import parse_yaml
from harness.data.imageio import write_label_png
from harness.errors import UserError

MAX_ALIAS_NODES = 10_000  # harness.config.yamlcfg.MAX_ALIAS_NODES


def laughs(levels: int, width: int = 9) -> str:
    """A one-line flow list whose level k aliases level k-1 `width` times: width**levels leaves."""
    items = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&l{k} [" + ", ".join([f"*l{k - 1}"] * width) + "]" for k in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def hostile_values(marker):
    """(kind, YAML value, what the line must say)."""
    return [
        ("alias_bomb", laughs(6), f"YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes"),
        ("recursive_alias", "&r [a, *r]", "YAML alias *r refers to its own anchor"),
        ("python_apply", f'!!python/object/apply:os.system ["touch {marker}"]',
         "YAML tag !!python/object/apply:os.system is not allowed"),
        ("python_name", "!!python/name:os.system", "YAML tag !!python/name:os.system is not allowed"),
        ("binary", "!!binary aGVsbG8=", "YAML tag !!binary is not allowed"),
        ("custom_tag", "!custom {a: 1}", "YAML tag !custom is not allowed"),
        ("deep_nesting", "[" * 3000 + "]" * 3000, "YAML nesting deeper than 100 levels"),
    ]


KINDS = [kind for kind, _, _ in hostile_values("m")]

# Where in a protocol a value goes ({V}); a model's cfg_options is read even when --predictions
# replaces the protocol's models.
PROTOCOL_PLACES = {
    "name": "name: {V}\nfamilies:\n  standard: {}\n",
    "description": "name: t\ndescription: {V}\nfamilies:\n  standard: {}\n",
    "families.size.buckets": "name: t\nfamilies:\n  size:\n    buckets: {V}\n",
    "models.cfg_options": ("name: t\nfamilies:\n  standard: {}\nmodels:\n  - name: m\n    config: cfg.py\n"
                           "    checkpoint: absent.pth\n    cfg_options:\n      model.x: {V}\n"),
    "conditions": "name: t\nfamilies:\n  standard: {}\nconditions: {V}\n",
}
DATASET_PLACES = {
    "classes": "name: d\nclasses: {V}\n",
    "unseen": "classes: [bg, x]\nunseen: {V}\n",
    "labels_dir": "classes: [bg, x]\nlabels_dir: {V}\n",
}


def _line_of(template: str) -> int:
    return template[: template.index("{V}")].count("\n") + 1


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    (data / "labels").mkdir(parents=True)
    write_label_png(data / "labels" / "a.png", np.zeros((4, 4), np.uint8))
    (data / "dataset.yaml").write_text(yaml.safe_dump({"classes": ["bg", "x"]}))
    (tmp_path / "pred").mkdir()
    write_label_png(tmp_path / "pred" / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "cfg.py").write_text("model = dict(type='EncoderDecoder')\n")
    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: t\nfamilies:\n  standard: {}\n")
    return tmp_path, protocol, data


def _run(capsys, tmp_path, protocol, data):
    before = tree(tmp_path)
    start = time.perf_counter()
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--predictions", tmp_path / "pred",
                                    "--out", tmp_path / "run")
    seconds = time.perf_counter() - start
    assert tree(tmp_path) == before  # nothing written
    return rc, err, seconds


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("place", list(PROTOCOL_PLACES))
def test_hostile_value_in_a_protocol(setup, capsys, place, kind):
    tmp_path, protocol, data = setup
    marker = tmp_path / "PAYLOAD_RAN"
    value, needle = next((v, n) for k, v, n in hostile_values(marker) if k == kind)
    template = PROTOCOL_PLACES[place]
    protocol.write_text(template.replace("{V}", value))
    rc, err, seconds = _run(capsys, tmp_path, protocol, data)
    one_line_error(rc, err, protocol, f"line {_line_of(template)}: ", needle)
    assert seconds < 2, seconds
    assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("place", list(DATASET_PLACES))
def test_hostile_value_in_a_dataset_yaml(setup, capsys, place, kind):
    tmp_path, protocol, data = setup
    marker = tmp_path / "PAYLOAD_RAN"
    value, needle = next((v, n) for k, v, n in hostile_values(marker) if k == kind)
    template = DATASET_PLACES[place]
    (data / "dataset.yaml").write_text(template.replace("{V}", value))
    rc, err, seconds = _run(capsys, tmp_path, protocol, data)
    one_line_error(rc, err, data / "dataset.yaml", f"line {_line_of(template)}: ", needle)
    assert seconds < 2, seconds
    assert not marker.exists()


# Whole-file problems, after a valid first part: (name, the rest of the file given a text key, what
# the line must say); the protocol's text key is `description`, the dataset's `name`.
FILE_CASES = [
    ("over_1_MB", lambda key: key + b": '" + b"x" * (1 << 20) + b"'\n", "larger than 1 MB"),
    ("not_utf8", lambda key: key + b": caf\xe9\n", "line {n}: not UTF-8 text"),
    ("unhashable_key", lambda key: b"? [a, b]\n: 1\n", "line {n}: "),
    ("impossible_date", lambda key: key + b": 2024-13-45\n", "line {n}: value '2024-13-45' cannot be read"),
]
VALID_START = {"protocol": (b"name: t\nfamilies: {standard: {}}\n", b"description"),
               "dataset.yaml": (b"classes: [bg, x]\n", b"name")}


@pytest.mark.parametrize("name,rest,needle", FILE_CASES, ids=[c[0] for c in FILE_CASES])
@pytest.mark.parametrize("which", list(VALID_START))
def test_hostile_file(setup, capsys, which, name, rest, needle):
    tmp_path, protocol, data = setup
    path = protocol if which == "protocol" else data / "dataset.yaml"
    start, key = VALID_START[which]
    path.write_bytes(start + rest(key))
    rc, err, seconds = _run(capsys, tmp_path, protocol, data)
    one_line_error(rc, err, path, needle.format(n=start.count(b"\n") + 1))
    assert seconds < 2, seconds


@pytest.mark.parametrize("place", ["classes", "description"])
def test_billion_laughs_is_refused_within_a_second(tmp_path, place):
    """Nine levels of nine: 387 million strings once expanded (gigabytes, minutes)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(f"name: t\n{place}: {laughs(9)}\n")
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        parse_yaml(path)
    assert time.perf_counter() - start < 1
    assert str(info.value).startswith(f"{path}: line 2: YAML aliases expand to more than")


def test_alias_limit_is_counted_after_expansion(tmp_path):
    """Aliases that add exactly MAX_ALIAS_NODES nodes load (anchors and aliases are fine in
    moderation); one alias more is refused, with the line of the alias that crossed the limit."""
    anchor = "a: &a [" + ", ".join(["x"] * 99) + "]\n"  # a list and its 99 items: 100 nodes per alias
    path = tmp_path / "ok.yaml"
    path.write_text(anchor + "b:\n" + "".join("  - *a\n" for _ in range(100)))
    root = parse_yaml(path)
    assert len(root.value[1][1].value) == 100
    path.write_text(anchor + "b:\n" + "".join("  - *a\n" for _ in range(101)))
    with pytest.raises(UserError, match=r"line 103: YAML aliases expand to more than 10,000 nodes"):
        parse_yaml(path)


def test_every_error_line_is_short(capsys, monkeypatch):
    """A UserError of half a megabyte, with line breaks and a terminal escape, prints as one line of
    at most 400 characters that keeps the file (its start) and the problem (its end)."""
    from harness import cli

    message = "line 3: bad value [" + "lol, " * 100_000 + "]\nsecond line\x1b[31m (allowed: a, b)"

    def command(args):
        raise UserError(message, "/data/some/protocol.yaml")

    monkeypatch.setitem(cli.COMMANDS, "make-sample", command)
    rc, _, err = zeg_eval_inprocess(capsys, "make-sample", "x")
    line = one_line_error(rc, err, "zeg-eval: error: /data/some/protocol.yaml: line 3: bad value",
                          " … ", "second line?[31m (allowed: a, b)")
    assert len(line) <= 400 and "\x1b" not in line
