"""Hostile checkpoints through the public loading functions (the ZegCLIP port's read_checkpoint /
load_zegclip_checkpoint / convert_checkpoint, the mmseg loader's read_state_dict, and `zeg-eval run`
with an mmseg model): a pickle that calls os.system is refused without running, and the message says
what was blocked, that the file is not a plain state dict and how to convert a trusted one; random
bytes are "not a PyTorch checkpoint". torch's own advice (weights_only=False) never shows."""
import os
import pickle
import random

import pytest
import torch
import yaml
from helpers.cli import one_line_error, zeg_eval_inprocess

from harness.errors import UserError

pytestmark = pytest.mark.slow  # torch (and mmseg for the runner)

TESTS = os.path.dirname(os.path.abspath(__file__))
TINY_FCN = os.path.join(TESTS, "configs", "tiny_fcn.py")
TORCH_ADVICE = ("weights_only=False", "will likely succeed", "load it with trusted=True", "add_safe_globals")


class Payload:
    """Unpickling this runs `command` with os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _state():
    return {"conv.weight": torch.zeros(2, 2), "conv.bias": torch.zeros(2)}


def hostile_files(tmp_path):
    """(name, path, marker the payload would create or None, what the message must say)."""
    marker = tmp_path / "PAYLOAD_RAN"
    payload = Payload(f"touch {marker}")
    files = []

    def add(name, write, needles):
        path = tmp_path / f"{name}.pth"
        write(path)
        files.append((name, path, needles))

    blocked = ("posix.system", "while unpickling; refused", "not a plain state dict", "weights_only: false",
               "convert_checkpoint")
    add("os_system_in_meta", lambda p: torch.save({"state_dict": _state(), "meta": {"x": payload}}, p), blocked)
    add("os_system_as_a_tensor", lambda p: torch.save({"state_dict": {"conv.weight": payload}}, p), blocked)
    add("os_system_legacy_format", lambda p: torch.save({"state_dict": _state(), "x": payload}, p,
                                                         _use_new_zipfile_serialization=False), blocked)
    add("os_system_pickle_protocol_4", lambda p: torch.save({"state_dict": _state(), "x": payload}, p,
                                                             pickle_protocol=4), blocked)
    add("os_system_plain_pickle", lambda p: p.write_bytes(pickle.dumps(payload, protocol=4)), blocked)
    noise = random.Random(0).randbytes(4096)
    add("random_bytes", lambda p: p.write_bytes(b"\x00" + noise), ("not a PyTorch checkpoint (",))
    add("random_bytes_after_a_pickle_header", lambda p: p.write_bytes(b"\x80\x02" + noise),
        ("not a PyTorch checkpoint",))
    return marker, files


CASES = ["os_system_in_meta", "os_system_as_a_tensor", "os_system_legacy_format", "os_system_pickle_protocol_4",
         "os_system_plain_pickle", "random_bytes", "random_bytes_after_a_pickle_header"]


def _check(message, path, needles, marker):
    assert not marker.exists(), "the payload ran"
    assert "\n" not in message and message.startswith(str(path)), message
    for needle in needles:
        assert needle in message, message
    for advice in TORCH_ADVICE:
        assert advice not in message, message
    assert len(message) <= 400, message


def _case(tmp_path, name):
    marker, files = hostile_files(tmp_path)
    _, path, needles = next(f for f in files if f[0] == name)
    return marker, path, needles


@pytest.mark.parametrize("name", CASES)
def test_zegclip_read_checkpoint(tmp_path, name):
    from harness.zegclip.checkpoint import CheckpointError, read_checkpoint

    marker, path, needles = _case(tmp_path, name)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    _check(str(info.value), path, needles, marker)


@pytest.mark.parametrize("name", CASES)
def test_zegclip_load_and_convert_refuse_it_too(tmp_path, name):
    from harness.zegclip.checkpoint import (
        CheckpointError,
        convert_checkpoint,
        load_zegclip_checkpoint,
    )

    marker, path, needles = _case(tmp_path, name)
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(torch.nn.Conv2d(2, 2, 1), path)
    _check(str(info.value), path, needles, marker)
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(path, tmp_path / "converted.pth")
    _check(str(info.value), path, needles, marker)
    assert not (tmp_path / "converted.pth").exists()


@pytest.mark.parametrize("name", CASES)
def test_mmseg_read_state_dict(tmp_path, name):
    from harness.models.mmseg_predictor import read_state_dict

    marker, path, needles = _case(tmp_path, name)
    with pytest.raises(UserError) as info:
        read_state_dict(path, True, "m")
    _check(str(info.value), path, needles, marker)
    assert f"{path}: model 'm': " in str(info.value)


@pytest.mark.parametrize("name", ["os_system_in_meta", "random_bytes"])
def test_through_zeg_eval_run(tmp_path, capsys, name):
    """The whole command with an mmseg model: exit 2, one line, and the payload never ran."""
    from harness.data.sample import SampleConfig, make_sample

    marker, path, needles = _case(tmp_path, name)
    data = make_sample(tmp_path / "sample", SampleConfig(n_images=2, height=64, width=64))
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "mm", "families": {"standard": {}},
                                        "models": [{"name": "m", "config": TINY_FCN, "checkpoint": str(path)}]}))
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", data, "--out", tmp_path / "run",
                                    "--workers", "0", "--device", "cpu")
    line = one_line_error(rc, err, path, "model 'm'", *needles)
    assert not marker.exists()
    for advice in TORCH_ADVICE:
        assert advice not in line, line
