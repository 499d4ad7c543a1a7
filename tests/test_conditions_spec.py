"""A protocol's `conditions:`: every form parses to the conditions it names, and every mistake is one
line naming the protocol file and the line, before anything is computed."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.cli import one_line_error, zeg_eval_inprocess

from harness.conditions.spec import CLEAN, IMAGENET_C, Condition, named
from harness.errors import UserError
from harness.evaluation.protocol import load_protocol


def _protocol(tmp_path, conditions: str, extra: str = ""):
    path = tmp_path / "p.yaml"
    path.write_text("name: t\nfamilies: {standard: {}}\nconditions:\n" + textwrap.indent(conditions, "  ") + extra)
    return path


def test_every_form(tmp_path):
    protocol = load_protocol(_protocol(tmp_path, textwrap.dedent("""\
        - gaussian_noise-3
        - corruptions: [fog, snow]
          severities: [1, 5]
          seed: 7
        - resolution: [0.5, 0.25]
        - jpeg: [20]
        - blur: 2
        - noise: [8.5]
        - my_edit
        """)))
    names = [c.name for c in protocol.conditions]
    assert names == ["clean", "gaussian_noise-3", "fog-1", "fog-5", "snow-1", "snow-5", "resolution-0.5",
                     "resolution-0.25", "jpeg-20", "blur-2", "noise-8.5", "my_edit"]
    by_name = {c.name: c for c in protocol.conditions}
    assert by_name["fog-5"] == Condition("fog-5", "fog", 5, 7)
    assert (by_name["resolution-0.25"].corruption, by_name["resolution-0.25"].severity) == ("resolution", 0.25)
    assert by_name["my_edit"].has_transform is False
    assert by_name["clean"].is_clean and by_name["clean"].severity == 0


def test_all_corruptions_and_clean_first(tmp_path):
    protocol = load_protocol(_protocol(tmp_path, "- corruptions: all\n- clean\n"))
    assert protocol.conditions[0].name == CLEAN
    assert len(protocol.conditions) == 1 + 15 * 5
    assert {c.transform for c in protocol.conditions[1:]} == set(IMAGENET_C)


def test_names_round_trip():
    for condition in (named("gaussian_noise-3"), named("resolution-0.5"), named("jpeg-20"), named("blur-1.5")):
        assert named(condition.name) == condition
        assert Condition.from_description(condition.describe()) == condition
    assert named("blurred") == Condition("blurred", "named")
    assert Condition.from_description("jpeg-20") == named("jpeg-20")  # older manifests list names


@pytest.mark.parametrize("conditions, line, needle", [
    ("- gausian_noise-3\n", 4, "unknown corruption 'gausian_noise' in condition 'gausian_noise-3' (did you mean "
                               "'gaussian_noise'?)"),
    ("- corruptions: [gaussian_nosie]\n", 4, "unknown corruption 'gaussian_nosie' (did you mean 'gaussian_noise'?)"),
    ("- corruptions: [fog]\n  severities: [0, 1]\n", 5, "severity 0 is outside 1-5"),
    ("- corruptions: [fog]\n  severities: [6]\n", 5, "severity 6 is outside 1-5"),
    ("- fog-7\n", 4, "severity 7 is outside 1-5"),
    ("- corruptions: [fog]\n  severities: [2.5]\n", 5, "severity 2.5 must be an integer 1-5"),
    ("- resolution: [0]\n", 4, "resolution factor 0 must be > 0 and <= 1"),
    ("- resolution: [1.5]\n", 4, "resolution factor 1.5 must be > 0 and <= 1"),
    ("- resolution: [-0.5]\n", 4, "resolution factor -0.5 must be > 0 and <= 1"),
    ("- resolution-2\n", 4, "resolution factor 2 must be > 0 and <= 1"),
    ("- jpeg: [0]\n", 4, "JPEG quality 0 must be an integer 1-100"),
    ("- jpeg: [50.5]\n", 4, "JPEG quality 50.5 must be an integer 1-100"),
    ("- blur: [0]\n", 4, "blur sigma 0 must be > 0"),
    ("- noise: [300]\n", 4, "noise sigma 300 must be > 0 and <= 255"),
    ("- noise: [yes]\n", 4, "must be a number"),
    ("- jpeg: []\n", 4, "jpeg must be a number or a non-empty list"),
    ("- fog\n", 4, "condition 'fog' needs a level: e.g. 'fog-3'"),
    ("- jpeg-20\n- jpeg: [20]\n", 5, "condition 'jpeg-20' is listed twice"),
    ("- {jpeg: [20], blur: [1]}\n", 4, "needs exactly one of corruptions"),
    ("- corruptions: [fog]\n  severity: [1]\n", 5, "unknown key 'severity' in a condition (did you mean 'severities'?)"),
    ("- jpeg: [20]\n  severities: [1]\n", 5, "severities go with corruptions"),
    ("- corruptions: fog\n  seed: -1\n", 5, "seed must be a non-negative integer"),
    ("- ../x\n", 4, "must be a plain name"),
    ("- [a, b]\n", 4, "a condition must be a name or a mapping"),
])
def test_bad_conditions_are_one_line_with_file_and_line(tmp_path, capsys, conditions, line, needle):
    path = _protocol(tmp_path, conditions)
    with pytest.raises(UserError) as caught:
        load_protocol(path)
    assert f"line {line}:" in str(caught.value) and needle in str(caught.value), str(caught.value)
    assert str(path) in str(caught.value)
    # through the command line: one line, exit 2, nothing written
    out = tmp_path / "run"
    rc, _, err = zeg_eval_inprocess(capsys, "run", path, "--data", "sample", "--out", out)
    one_line_error(rc, err, path, f"line {line}:", needle)
    assert not out.exists()


def test_conditions_must_be_a_list(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: t\nfamilies: {standard: {}}\nconditions: fog-3\n")
    with pytest.raises(UserError, match="line 3: conditions must be a non-empty list"):
        load_protocol(path)


def test_robustness_settings(tmp_path):
    path = _protocol(tmp_path, "- fog-1\n", "robustness: {reference: base, bootstrap: 200}\n")
    settings = load_protocol(path).robustness
    assert (settings.reference, settings.bootstrap, settings.seed) == ("base", 200, 0)
    path = _protocol(tmp_path, "- fog-1\n", "robustness: {refrence: base}\n")
    with pytest.raises(UserError, match=r"line 5: unknown key 'refrence' in robustness \(did you mean 'reference'"):
        load_protocol(path)
    path = _protocol(tmp_path, "- fog-1\n", "robustness: {bootstrap: -3}\n")
    with pytest.raises(UserError, match="line 5: robustness.bootstrap must be a non-negative integer"):
        load_protocol(path)


def test_image_seed_is_the_same_in_another_process():
    condition = named("gaussian_noise-3")
    here = [condition.image_seed(s) for s in ("a", "b", "000000139")]
    assert len(set(here)) == 3
    code = ("from harness.conditions.spec import named; "
            "print([named('gaussian_noise-3').image_seed(s) for s in ('a', 'b', '000000139')])")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=str(Path.cwd()))
    assert there.stdout.strip() == str(here)
    assert named("gaussian_noise-3").image_seed("a") != Condition.make("gaussian_noise", 3, seed=1).image_seed("a")
