"""Baselines: made from the ground truth, seeded, and the oracle reads 100 on every metric."""
import math

import numpy as np
import pytest

from harness.data.dataset import DatasetSpec, load_dataset
from harness.data.sample import SampleConfig, make_sample
from harness.errors import SkipModel, UserError
from harness.evaluation.aggregate import summarize
from harness.evaluation.protocol import Protocol, family_config
from harness.metrics.registry import FAMILIES
from harness.models.baselines import (
    BaselinePredictor,
    BaselineSpec,
    boundary_shift,
    drop_small,
    seen_bias_mapping,
)
from harness.models.registry import parse_models
from harness.run.records import RecordSet, read_tables
from harness.run.scoring import score_model

# Summary values that describe the data (counts, sizes, occlusion levels), not the prediction.
DESCRIPTORS = ("n_", "pct_edge", "mean_occlusion", "occlusion_from_amodal_share", "amodal_share", "missed")
# Error measures: a perfect prediction reads 0.
ERRORS = ("mE_", "E_", "fp_blobs")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return load_dataset(make_sample(tmp_path_factory.mktemp("sample") / "s", SampleConfig(n_images=6)))


def square_scene():
    gt = np.zeros((40, 40), np.int32)
    gt[10:30, 10:30] = 1        # a 400 px object
    gt[2:5, 2:5] = 2            # a 9 px object
    gt[35:38, 35:40] = 255      # ignore
    return gt


def test_drop_small_paints_small_objects_over():
    gt = square_scene()
    pred = drop_small(gt, 255, None, max_area=10)
    assert (pred[2:5, 2:5] == 0).all()               # the 9 px object took its surroundings' class
    assert (pred[10:30, 10:30] == 1).all()           # the large one stays
    assert (pred[35:38, 35:40] == 255).all()         # ignore stays ignore
    np.testing.assert_array_equal(drop_small(gt, 255, None, max_area=9), gt)  # area < max_area only


def test_drop_small_uses_instances():
    gt = np.zeros((20, 20), np.int32)
    gt[5:10, 2:18] = 1
    inst = np.zeros((20, 20), np.uint16)
    inst[5:10, 2:15] = 1
    inst[5:10, 15:18] = 2           # a touching 15 px instance of the same class
    np.testing.assert_array_equal(drop_small(gt, 255, None, max_area=20), gt)  # one 80 px component
    pred = drop_small(gt, 255, inst, max_area=20)   # two objects: the 15 px instance goes
    assert (pred[5:10, 15:18] != 1).any() and (pred[5:10, 2:15] == 1).all()


def test_boundary_shift_dilates_and_erodes_by_k():
    gt = square_scene()
    grown = boundary_shift(gt, 255, None, pixels=2)
    assert (grown[8:32, 10:30] == 1).all() and (grown[10:30, 8:32] == 1).all()
    assert grown[7, 20] == 0 and grown[20, 7] == 0
    shrunk = boundary_shift(gt, 255, None, pixels=-2)
    assert (shrunk[12:28, 12:28] == 1).all()
    assert (shrunk[10:12, 10:30] == 0).all() and (shrunk[10:30, 28:30] == 0).all()
    # the background around the object is an object too: eroded toward the square
    assert (shrunk[8:10, 12:28] == 1).all()
    # a 1 px dilation of the image-wide background changes nothing at the image border
    assert shrunk[0, 20] == 0


def test_seen_bias_is_seeded_and_only_moves_unseen_classes(sample):
    spec = BaselineSpec(name="sb", baseline="seen_bias", seed=3)
    m1, m2 = seen_bias_mapping(spec, sample), seen_bias_mapping(spec, sample)
    np.testing.assert_array_equal(m1, m2)
    unseen = np.flatnonzero(sample.unseen_mask)
    assert not sample.unseen_mask[m1[unseen]].any()            # unseen -> a seen class
    seen = np.flatnonzero(~sample.unseen_mask)
    np.testing.assert_array_equal(m1[seen], seen)                # seen classes stay
    target = BaselinePredictor(BaselineSpec(name="t", baseline="seen_bias", target="sky"), sample)
    assert (target.mapping[unseen] == sample.classes.index("sky")).all()
    half = BaselinePredictor(BaselineSpec(name="h", baseline="seen_bias", rate=0.5, seed=1), sample)
    stem = sample.stems()[0]
    gt, inst = sample.load_label(stem), sample.load_instances(stem)
    np.testing.assert_array_equal(half.predict(stem, gt, inst), half.predict(stem, gt, inst))
    with pytest.raises(UserError, match="unseen class"):
        seen_bias_mapping(BaselineSpec(name="u", baseline="seen_bias", target="water"), sample)


def test_seen_bias_without_unseen_classes_is_skipped():
    dataset = DatasetSpec(root=None, name="x", classes=("a", "b"))
    with pytest.raises(SkipModel, match="no unseen"):
        BaselinePredictor(BaselineSpec(name="s", baseline="seen_bias"), dataset)


def test_model_entries_are_checked(tmp_path):
    good = parse_models([{"name": "o", "baseline": "oracle"}, {"baseline": "drop_small", "max_area": 100}])
    assert good[1].name == "drop_small" and good[1].max_area == 100
    for entry, needle in [({"name": "x", "baseline": "nope"}, "unknown baseline"),
                          ({"name": "x", "baseline": "oracle", "max_aera": 3}, "unknown key 'max_aera'"),
                          ({"name": "x", "baseline": "boundary_shift", "pixels": 0}, "must not be 0"),
                          ({"name": "x"}, "exactly one of"),
                          ({"name": "x", "config": "a.py", "predictions": "p"}, "exactly one of"),
                          ({"name": "a/b", "baseline": "oracle"}, "'name'"),
                          ({"name": "x", "config": "a.py", "precision": "fp8"}, "precision")]:
        with pytest.raises(UserError, match=needle):
            parse_models([entry])
    with pytest.raises(UserError, match="unique"):
        parse_models([{"name": "o", "baseline": "oracle"}, {"name": "o", "baseline": "drop_small"}])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_oracle_reads_100_on_every_metric(sample, tmp_path, family):
    protocol = Protocol(name="t", families={"standard": family_config("standard"),
                                            family: family_config(family)})
    predictor = BaselinePredictor(BaselineSpec(name="oracle", baseline="oracle"), sample)
    stems = sample.stems()
    records = RecordSet(tmp_path, "oracle")
    score_model(sample, protocol, records, stems, predictor=predictor, workers=0)
    scalars = summarize(read_tables(records), sample, protocol).scalars
    quality = {k: v for k, v in scalars.items() if not k.startswith(DESCRIPTORS + ERRORS)}
    assert len(quality) >= 10
    for name, value in quality.items():  # empty buckets give None / NaN
        assert not isinstance(value, str), name
        assert value is None or math.isnan(value) or value == pytest.approx(100.0), name
    assert sum(v == pytest.approx(100.0) for v in quality.values()) >= 10
    for name, value in scalars.items():
        if name.startswith(ERRORS):
            assert value is None or math.isnan(value) or value == pytest.approx(0.0, abs=1e-9), name


def test_other_baselines_fall_below_100(sample, tmp_path):
    protocol = Protocol(name="t", families={"standard": family_config("standard")})
    for spec in [BaselineSpec(name="d", baseline="drop_small"), BaselineSpec(name="e", baseline="boundary_shift", pixels=-2),
                 BaselineSpec(name="g", baseline="boundary_shift", pixels=2), BaselineSpec(name="s", baseline="seen_bias")]:
        records = RecordSet(tmp_path, spec.name)
        score_model(sample, protocol, records, sample.stems(), predictor=BaselinePredictor(spec, sample), workers=0)
        scalars = summarize(read_tables(records), sample, protocol).scalars
        assert 20 < scalars["mIoU"] < 99, spec
    assert scalars["mIoU_unseen"] == 0  # seen_bias: no unseen pixel is right
