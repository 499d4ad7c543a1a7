"""Installed like a library: shipped protocols by name from any folder, one cache folder (never the
current one), a model whose extra is missing skipped in one line, and a wheel that holds the defaults."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import one_line_error, summary, tree, zeg_eval_inprocess, zeg_eval_subprocess
from helpers.data import write_dataset, write_predictions

from harness import shipped
from harness.cache import cache_dir
from harness.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _tiny(tmp_path):
    label = np.zeros((16, 16), np.uint8)
    label[2:6, 2:6] = 1
    pred = label.copy()
    pred[2, 2:6] = 0  # 4 of the 16 object pixels missed: IoU(thing) 12/16, IoU(bg) 240/244
    data = write_dataset(tmp_path / "data", {"a": label}, ["bg", "thing"])
    return data, write_predictions(tmp_path / "pred", {"a": pred})


def test_shipped_protocols_are_the_checkouts_top_level_files():
    top = sorted(p.stem for p in (REPO / "protocols").glob("*.yaml"))
    assert shipped.protocol_names() == top and "small_targets" in top
    assert shipped.find_protocol("small_targets").read_bytes() == (REPO / "protocols/small_targets.yaml").read_bytes()
    assert shipped.find_protocol("all.yaml").name == "all.yaml"


def test_a_path_still_names_a_file(tmp_path, monkeypatch):
    mine = tmp_path / "small_targets"  # a file that shadows a shipped name is the user's
    mine.write_text("name: mine\nfamilies: {standard: {}}\n")
    monkeypatch.chdir(tmp_path)
    assert shipped.find_protocol("small_targets") == Path("small_targets")


def test_unknown_protocol_name_is_one_line_with_a_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, err = zeg_eval_inprocess(capsys, "run", "smal_targets")
    one_line_error(rc, err, "no such protocol 'smal_targets'", "did you mean 'small_targets'?", "occlusion")
    # a checkout's path given from elsewhere: the name to use instead
    rc, out, err = zeg_eval_inprocess(capsys, "run", "protocols/boundary.yaml")
    one_line_error(rc, err, "no such protocol file 'protocols/boundary.yaml'", "did you mean 'boundary'?")
    with pytest.raises(UserError) as info:
        shipped.find_protocol("zzzz")
    assert "did you mean" not in str(info.value) and "small_targets" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_run_by_name_from_another_folder(tmp_path, monkeypatch, capsys):
    data, pred = _tiny(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc, out, err = zeg_eval_inprocess(capsys, "run", "small_targets", "--data", data, "--predictions", f"m={pred}")
    assert rc == 0, err
    s = summary(elsewhere / "runs" / "small_targets")
    assert s["m"]["mIoU"] == pytest.approx(100 * (12 / 16 + 240 / 244) / 2, abs=0.01)


def test_cache_folder_is_the_env_or_the_users_never_the_current_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEG_EVAL_CACHE", str(tmp_path / "c"))
    assert cache_dir("x") == tmp_path / "c" / "x"
    monkeypatch.delenv("ZEG_EVAL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # platformdirs' rule on Linux
    monkeypatch.chdir(tmp_path)
    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "xdg" / "zeg-eval"
    assert cache_dir().is_absolute()


def test_model_whose_extra_is_missing_is_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    """The shipped ZegCLIP entry, as a plain install (no torch, no mmseg) sees it."""
    import importlib.util

    real = importlib.util.find_spec
    absent = {"torch", "mmseg"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in absent else real(name, *a, **k))
    data, _ = _tiny(tmp_path)
    rc, out, err = zeg_eval_inprocess(capsys, "run", "small_targets", "--data", data, "--model",
                                      "zegclip_coco_inductive", "--model", "oracle", "--out", tmp_path / "run")
    assert rc == 0, err
    skipped = [line for line in err.splitlines() if "skipping" in line]
    assert skipped == ["zeg-eval: skipping model 'zegclip_coco_inductive': needs the extra 'mmseg' "
                       "(pip install 'zeg-eval[mmseg]'; not installed: torch, mmseg)"]
    assert list(summary(tmp_path / "run")) == ["oracle"]


def test_coco_tools_without_their_extra_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import fails as if not installed
    (tmp_path / "i.json").write_text("{}")
    rc, out, err = zeg_eval_inprocess(capsys, "coco-instances", tmp_path / "i.json", tmp_path / "out")
    one_line_error(rc, err, "needs the extra 'coco'", "pip install 'zeg-eval[coco]'", "pycocotools")


@pytest.mark.slow
def test_main_job_by_name_writes_nothing_but_the_run_in_the_current_folder(tmp_path):
    """`zeg-eval run small_targets` in an empty folder: the sample goes to the cache folder."""
    cwd, cache = tmp_path / "cwd", tmp_path / "cache"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ZEG_EVAL_SAMPLE_DIR"}
    env.update(ZEG_EVAL_CACHE=str(cache), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "small_targets", "--model", "oracle",
                           "--limit", "3"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert {p.parts[0] for p in tree(cwd)} == {"runs"}
    assert summary(cwd / "runs" / "small_targets")["oracle"]["mIoU"] == 100
    assert [p.name for p in cache.iterdir()] == ["sample-v1-seed0-n40"]


@pytest.mark.slow
def test_built_wheel_holds_the_defaults_and_runs_them_by_name(tmp_path):
    """The wheel (setup.py's build step) carries every top-level protocol, config and third_party file;
    unpacked and imported from there, `run all` finds its protocol and config in the package."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("zeg_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in shipped.FOLDERS:
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert f"harness/_shipped/{path.relative_to(REPO).as_posix()}" in names, path
    assert not any(n.startswith(("tests/", "bench/", "protocols/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    data, pred = _tiny(tmp_path)
    code = "import harness.shipped as s; print(s.root()); print(s.find_protocol('all'))"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    packaged = site / "harness" / "_shipped"
    assert proc.stdout.split() == [str(packaged), str(packaged / "protocols" / "all.yaml")]
    rc, out, err = zeg_eval_subprocess("run", "all", "--data", data, "--predictions", f"m={pred}", env=env, cwd=cwd)
    assert rc == 0, err
    assert summary(cwd / "runs" / "all")["m"]["mIoU"] == pytest.approx(100 * (12 / 16 + 240 / 244) / 2, abs=0.01)


HIDE = """
import sys
BLOCKED = {'torch', 'mmcv', 'mmengine', 'mmseg', 'ftfy', 'regex', 'pycocotools'}
class Hidden:  # the plain install: these packages cannot be found, as if not installed
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            return None
        find = getattr(self.finder, 'find_spec', None)
        return find(name, path, target) if find else None
    def find_distributions(self, *args, **kwargs):  # importlib.metadata asks the finders too
        find = getattr(self.finder, 'find_distributions', None)
        return find(*args, **kwargs) if find else ()
sys.meta_path[:] = [Hidden(f) for f in sys.meta_path]
from harness.cli import main
rc = main(sys.argv[1:])
print(sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))
sys.exit(rc)
"""


@pytest.mark.slow
def test_main_job_runs_without_the_model_stack(tmp_path):
    """README line 1's job where torch, mmcv, mmengine, mmseg and pycocotools cannot be imported:
    the baselines score, the ZegCLIP entry is skipped in one line that names the extra."""
    env = {k: v for k, v in os.environ.items() if k != "ZEG_EVAL_SAMPLE_DIR"}
    env.update(ZEG_EVAL_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", HIDE, "run", "small_targets", "--limit", "4"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    skipped = [line for line in proc.stderr.splitlines() if "skipping" in line]
    assert len(skipped) == 1 and "'zegclip_coco_inductive': needs the extra 'mmseg'" in skipped[0]
    assert "not installed: torch, mmcv, mmengine, mmseg, ftfy, regex" in skipped[0]
    s = summary(tmp_path / "runs" / "small_targets")
    assert list(s) == ["oracle", "drop_small", "erode_2", "dilate_2", "seen_bias", "pixel_texture", "pixel_colour"]
    assert s["oracle"]["mIoU"] == 100 and 50 < s["pixel_texture"]["mIoU"] < 100  # a model that looks at pixels


def test_commands_of_the_model_stack_without_it_are_one_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "mmengine" else real(name, *a, **k))
    rc, out, err = zeg_eval_inprocess(capsys, "zegclip-embed", "--classes", "a,b", "--weights", "w.pth",
                                      "--out", tmp_path / "e.npy")
    one_line_error(rc, err, "zegclip-embed needs the extra 'mmseg'", "not installed: mmengine")
    config = tmp_path / "my_data.py"
    config.write_text("test_dataloader = dict(dataset=dict(type='COCOStuffDataset'))\n")
    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: p\nfamilies: {standard: {}}\n")
    rc, out, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", config, "--out", tmp_path / "run")
    one_line_error(rc, err, str(config), "an mmseg dataset config needs the extra 'mmseg'", "mmengine")
    assert not (tmp_path / "run").exists() and not (tmp_path / "e.npy").exists()
