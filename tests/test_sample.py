"""The generated sample: seeded, exact instances and amodal masks, rich in small and occluded objects."""
import subprocess
import sys

import numpy as np
import pytest

from harness.data.dataset import load_dataset
from harness.data.sample import (
    CLASSES,
    THINGS,
    UNSEEN,
    SampleConfig,
    make_sample,
    render_scene,
)

SMALL = SampleConfig(n_images=6, height=120, width=160)


def test_scene_is_seeded_and_prefix_stable():
    a = render_scene(SampleConfig(n_images=3), 2)
    b = render_scene(SampleConfig(n_images=50), 2)  # image k depends only on (seed, k)
    for key in ("image", "labels", "instances", "ids", "masks"):
        np.testing.assert_array_equal(a[key], b[key])
    c = render_scene(SampleConfig(seed=1), 2)
    assert not np.array_equal(a["labels"], c["labels"])


def test_instances_and_amodal_masks_are_exact():
    occluded = small = 0
    for k in range(8):
        s = render_scene(SampleConfig(), k)
        labels, inst, ids, masks = s["labels"], s["instances"], s["ids"], s["masks"]
        assert labels.shape == inst.shape == masks.shape[1:] == s["image"].shape[:2]
        assert list(ids) == list(range(1, len(ids) + 1))
        assert set(np.unique(inst)) - {0} == set(ids)
        for i, amodal in zip(ids, masks):
            visible = inst == i
            assert visible.any() and not (visible & ~amodal).any()  # visible part of the full shape
            values = np.unique(labels[visible])
            values = values[values != 255]
            assert len(values) == 1 and CLASSES[values[0]] in THINGS
            occluded += int(amodal.sum() > visible.sum())
            small += int(visible.sum() < 32 * 32)
        stuff = (inst == 0) & (labels != 255)
        assert all(CLASSES[v] not in THINGS for v in np.unique(labels[stuff]))
    assert occluded >= 20 and small >= 60  # rich in occluded and small objects


def test_make_sample_writes_a_dataset(tmp_path):
    root = make_sample(tmp_path / "s", SMALL)
    dataset = load_dataset(root)
    assert dataset.stems() == [f"sample_{k:04d}" for k in range(6)]
    assert set(dataset.unseen) == set(UNSEEN) and set(dataset.things) == set(THINGS)
    stem = dataset.stems()[0]
    assert dataset.load_label(stem).shape == (120, 160)
    assert dataset.load_instances(stem).dtype == np.uint16
    assert len(dataset.load_amodal(stem)) == int(dataset.load_instances(stem).max())
    assert dataset.image_path(stem).suffix == ".png"
    assert make_sample(root, SMALL) == root  # the same sample again: kept
    with pytest.raises(Exception, match="not an empty folder"):
        make_sample(root, SampleConfig(n_images=2, height=120, width=160))


def test_make_sample_command(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "make-sample", str(out), "--images", "2",
                           "--size", "64x48", "--seed", "3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "labels").iterdir())) == 2
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "make-sample", str(out), "--images", "3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
