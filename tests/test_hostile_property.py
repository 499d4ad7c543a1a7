"""Property (hypothesis): whatever a dataset.yaml or a protocol holds, `zeg-eval run` either works or
ends with exit 2 and ONE short line (no traceback), and writes nothing outside its run folder.

The files are generated in two ways: a mapping of the file's own keys (and a few unknown ones) with
values of any YAML type, and byte-level damage (truncation, flipped or inserted characters) of a
valid file, so that both typed-schema checks and the YAML reader are exercised."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from helpers.cli import tree, zeg_eval_inprocess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.data.sample import SampleConfig, make_sample

pytestmark = pytest.mark.slow  # about a hundred runs

DATASET_KEYS = ["name", "classes", "preset", "ignore_index", "unseen", "things", "reduce_zero_label", "labels_dir",
                "images_dir", "instances_dir", "amodal_dir", "label_suffix", "split_file"]
PROTOCOL_KEYS = ["name", "description", "families", "data", "models", "conditions"]
FAMILY_KEYS = {"standard": ["beta"], "size": ["buckets", "relative_buckets", "percentiles", "hit_threshold",
                                              "connectivity", "worst_fraction"],
               "occlusion": ["buckets", "hit_threshold", "connectivity"],
               "boundary": ["boundary_iou_ratio", "band_widths", "bf_tolerance_ratio"],
               "image_level": ["percent"], "bogus_family": ["x"]}
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["", "sky", "../..", "/etc", "..", "a/b", "$x$", "=1+1", "sample", "no",
                                     "coco_stuff164k", "labels", "${HOME}", "💥", "x" * 300]),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)


@pytest.fixture(scope="module")
def world():
    root = Path(tempfile.mkdtemp(prefix="zeg-property-"))
    sample = make_sample(root / "sample", SampleConfig(n_images=2, height=48, width=64))
    yield root, sample
    shutil.rmtree(root, ignore_errors=True)


def _mutate(text: str, data) -> str:
    """A valid file damaged at byte level: cut, a character flipped, or junk inserted."""
    kind = data.draw(st.sampled_from(["cut", "flip", "insert"]))
    at = data.draw(st.integers(0, max(0, len(text) - 1)))
    if kind == "cut":
        return text[:at]
    junk = data.draw(st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t\n ") + ["\x00", "é", "\\"]))
    return text[:at] + junk + text[at + (kind == "flip"):]


def _run(capsys, protocol: Path, data: Path, out: Path):
    return zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--out", out, "--workers", "0")


def _check(rc: int, err: str) -> None:
    assert "Traceback" not in err, err
    if rc != 0:
        assert rc == 2, (rc, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and len(lines[0]) <= 400, err
        assert lines[0].startswith("zeg-eval: error: "), lines[0]


def _case(world, name: str):
    """A fresh copy of the sample, a protocol beside it, and a run folder path: (data, protocol, out, case)."""
    root, sample = world
    case = Path(tempfile.mkdtemp(prefix=name, dir=root))
    data = Path(shutil.copytree(sample, case / "data"))
    protocol = case / "protocol.yaml"
    protocol.write_text("name: p\nfamilies:\n  standard: {}\n  size: {}\nmodels:\n  - {name: oracle, baseline: oracle}\n")
    return data, protocol, case / "run", case


def _outside(case: Path) -> set:
    return {p for p in tree(case) if p.parts[0] != "run"}


@SETTINGS
@given(data=st.data())
def test_any_dataset_yaml(world, capsys, data):
    data_dir, protocol, out, case = _case(world, "ds")
    valid = (data_dir / "dataset.yaml").read_text()
    if data.draw(st.booleans()):
        keys = data.draw(st.lists(st.sampled_from(DATASET_KEYS + ["colour", "clases"]), max_size=5, unique=True))
        content = yaml.safe_load(valid)
        content.update({k: data.draw(values) for k in keys})
        text = yaml.safe_dump(content, allow_unicode=True)
    else:
        text = _mutate(valid, data)
    (data_dir / "dataset.yaml").write_text(text)
    before = _outside(case)
    rc, _, err = _run(capsys, protocol, data_dir, out)
    _check(rc, err)
    assert _outside(case) == before
    shutil.rmtree(case)


@SETTINGS
@given(data=st.data())
def test_any_protocol(world, capsys, data):
    data_dir, protocol, out, case = _case(world, "pr")
    if data.draw(st.booleans()):
        content = {"name": "p", "families": {"standard": {}},
                   "models": [{"name": "oracle", "baseline": "oracle"}]}
        for key in data.draw(st.lists(st.sampled_from(PROTOCOL_KEYS + ["famlies"]), max_size=3, unique=True)):
            content[key] = data.draw(values)
        if data.draw(st.booleans()):  # family parameters of any type
            family = data.draw(st.sampled_from(sorted(FAMILY_KEYS)))
            params = {k: data.draw(values) for k in data.draw(st.lists(st.sampled_from(FAMILY_KEYS[family]),
                                                                       min_size=1, max_size=3, unique=True))}
            content["families"] = {family: params}
        text = yaml.safe_dump(content, allow_unicode=True)
    else:
        text = _mutate(protocol.read_text(), data)
    protocol.write_text(text)
    before = _outside(case)
    rc, _, err = _run(capsys, protocol, data_dir, out)
    _check(rc, err)
    assert _outside(case) == before
    shutil.rmtree(case)
