"""The pixel model (harness.models.pixel_model): predictions come from the image alone, are
deterministic, respond to image conditions, and are fitted on generated scenes that are not the
evaluated ones; its protocol entries are checked like every model's."""
import json
import pickle
import shutil

import cv2
import numpy as np
import pytest
import yaml
from helpers.cli import manifest, one_line_error, read_json, summary, zeg_eval_inprocess

from harness.conditions.spec import named
from harness.data.dataset import load_dataset
from harness.data.imageio import read_rgb
from harness.data.sample import CLASSES, IGNORE, SampleConfig, make_sample, render_scene
from harness.errors import SkipModel, UserError
from harness.models import pixel_model
from harness.models.base import Runtime
from harness.models.pixel_model import PixelKind, PixelSpec
from harness.models.registry import kind_of, parse_models

# Small enough to fit in about a second; the shipped defaults are measured in test_quality_floor.
SMALL = {"train_images": 4, "train_pixels": 4000}
KIND = PixelKind()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first 3 images of the evaluated sample (seed 0: a prefix of `data: sample`)."""
    return make_sample(tmp_path_factory.mktemp("sample") / "s", SampleConfig(n_images=3))


@pytest.fixture(scope="module")
def dataset(sample):
    return load_dataset(sample)


@pytest.fixture(scope="module")
def texture(dataset):
    return KIND.open(PixelSpec(name="px", pixel="colour_texture", **SMALL), dataset, Runtime())


def _predict(predictor, dataset, stem, gt=None, instances=None):
    gt = dataset.load_label(stem) if gt is None else gt
    return predictor.predict(stem, gt, instances)


def _miou(pred, gt):
    """mIoU over the sample's classes present in either map (ignore pixels dropped)."""
    valid = gt != IGNORE
    g, p = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
    inter = np.bincount(g[g == p], minlength=len(CLASSES))
    union = np.bincount(g, minlength=len(CLASSES)) + np.bincount(p, minlength=len(CLASSES)) - inter
    return 100 * float(np.mean(inter[union > 0] / union[union > 0]))


def test_predictions_are_label_maps_of_the_ground_truths_shape(texture, dataset):
    stem = dataset.stems()[0]
    gt = dataset.load_label(stem)
    pred = _predict(texture, dataset, stem)
    assert pred.shape == gt.shape and pred.dtype == np.uint8
    assert set(np.unique(pred)) <= set(range(len(CLASSES)))
    assert _miou(pred, gt) > 40  # far above chance (about 8 for 12 classes) even from 4 scenes
    assert texture.input_path(stem) == dataset.image_path(stem)


def test_the_ground_truth_and_instances_are_not_looked_at(texture, dataset):
    stem = dataset.stems()[0]
    gt = dataset.load_label(stem)
    pred = _predict(texture, dataset, stem)
    rng = np.random.default_rng(0)
    other = rng.integers(0, len(CLASSES), gt.shape).astype(np.uint8)
    instances = rng.integers(0, 40, gt.shape).astype(np.uint16)
    np.testing.assert_array_equal(_predict(texture, dataset, stem, gt=other, instances=instances), pred)
    np.testing.assert_array_equal(_predict(texture, dataset, stem, gt=np.zeros_like(gt)), pred)


def test_changing_the_image_changes_the_prediction(texture, dataset, tmp_path):
    stem = dataset.stems()[0]
    before = _predict(texture, dataset, stem)
    copy = tmp_path / "copy"
    shutil.copytree(dataset.root, copy)
    image = read_rgb(dataset.image_path(stem))
    # the same image mirrored: another image with the same colours and textures
    cv2.imwrite(str(copy / "images" / f"{stem}.png"), cv2.cvtColor(image[:, ::-1], cv2.COLOR_RGB2BGR))
    mirrored = load_dataset(copy)
    after = KIND.open(texture.spec, mirrored, Runtime()).predict(stem, mirrored.load_label(stem), None)
    assert (after != before).mean() > 0.3
    # ... and the prediction follows the image: mirrored back, it is close to the first one
    assert (after[:, ::-1] == before).mean() > 0.9


def test_two_opens_give_the_same_bytes(dataset, texture):
    pixel_model.training_scenes.cache_clear()  # rendered again, not reused
    again = KIND.open(texture.spec, dataset, Runtime())
    for stem in dataset.stems():
        assert _predict(again, dataset, stem).tobytes() == _predict(texture, dataset, stem).tobytes()


def test_the_predictor_is_picklable(texture, dataset):
    stem = dataset.stems()[1]
    copy = pickle.loads(pickle.dumps(texture.under(named("noise-16"))))
    np.testing.assert_array_equal(_predict(copy, dataset, stem), _predict(texture.under(named("noise-16")), dataset, stem))


@pytest.mark.parametrize("condition", ["noise-32", "blur-2", "jpeg-10"])
def test_a_degraded_image_changes_the_prediction(texture, dataset, condition):
    stems = dataset.stems()
    clean = [_predict(texture, dataset, s) for s in stems]
    degraded = [_predict(texture.under(named(condition)), dataset, s) for s in stems]
    changed = np.mean([(a != b).mean() for a, b in zip(clean, degraded)])
    assert changed > 0.005, condition
    for a, b in zip(clean, degraded):
        assert a.shape == b.shape


def test_a_lower_resolution_is_predicted_at_the_labels_shape(texture, dataset):
    low = texture.under(named("resolution-0.5"))  # a Condition, as the runner will pass it
    for stem in dataset.stems():
        gt = dataset.load_label(stem)
        assert low.condition.apply(read_rgb(dataset.image_path(stem)), stem).shape[:2] != gt.shape
        pred = _predict(low, dataset, stem)
        assert pred.shape == gt.shape and pred.dtype == np.uint8
        assert (pred != _predict(texture, dataset, stem)).any()


def test_a_condition_without_a_transform_is_one_line(texture):
    with pytest.raises(UserError, match=r"model 'px': condition 'my_photoshop_edit' has no image transform") as err:
        texture.under(named("my_photoshop_edit"))
    assert "\n" not in str(err.value)
    assert texture.under(named("clean")) is texture


def test_it_is_fitted_only_on_scenes_of_its_own_seed(monkeypatch, dataset):
    seen = []

    def recording(config, index):
        seen.append((config.seed, index))
        return render_scene(config, index)

    pixel_model.training_scenes.cache_clear()
    monkeypatch.setattr(pixel_model, "render_scene", recording)
    KIND.open(PixelSpec(name="px", pixel="colour", train_seed=7, **SMALL), dataset, Runtime())
    assert seen == [(7, k) for k in range(SMALL["train_images"])]
    pixel_model.training_scenes.cache_clear()


def test_the_training_scenes_are_not_the_evaluated_images(dataset):
    training = pixel_model.training_scenes(1, 6)
    evaluated = [read_rgb(dataset.image_path(s)) for s in dataset.stems()]
    evaluated += [render_scene(SampleConfig(), k)["image"] for k in range(3, 6)]  # the same indices, seed 0
    for image, labels in training:
        assert not any(np.array_equal(image, other) for other in evaluated)
        assert not image.flags.writeable  # kept for the next fit: nobody may change them
    assert len({image.tobytes() for image, _ in training}) == 6


def test_train_seed_0_and_a_sample_of_the_training_seed_are_refused(tmp_path):
    with pytest.raises(UserError, match="'train_seed: 0' is the seed of the evaluated sample"):
        parse_models([{"name": "px", "pixel": "colour", "train_seed": 0}])
    seed1 = load_dataset(make_sample(tmp_path / "seed1", SampleConfig(n_images=1, seed=1)))
    with pytest.raises(UserError, match="the images it would be fitted on"):
        KIND.open(PixelSpec(name="px", pixel="colour", **SMALL), seed1, Runtime())


def test_a_dataset_of_other_classes_skips_the_model(tmp_path):
    from helpers.data import write_dataset

    other = load_dataset(write_dataset(tmp_path / "d", {"a": np.zeros((4, 4), np.uint8)}, ["bg", "cat"]))
    with pytest.raises(SkipModel, match="knows only the generated sample's 12 classes"):
        KIND.open(PixelSpec(name="px", pixel="colour"), other, Runtime())
    reordered = load_dataset(write_dataset(tmp_path / "r", {"a": np.zeros((4, 4), np.uint8)}, CLASSES[::-1]))
    with pytest.raises(SkipModel):
        KIND.open(PixelSpec(name="px", pixel="colour"), reordered, Runtime())


def test_balanced_choice_draws_equal_shares_and_never_ignore():
    labels = np.array([0] * 1000 + [1] * 50 + [2] * 300 + [IGNORE] * 500, dtype=np.uint8)
    chosen = pixel_model.balanced_choice(labels, 300, 3, np.random.default_rng(0))
    counts = np.bincount(labels[chosen], minlength=256)
    assert counts[0] == counts[2] == 100 and counts[1] == 50 and counts[IGNORE] == 0
    assert np.all(np.diff(chosen) > 0)


def test_probabilities_are_upscaled_before_the_argmax():
    # two columns whose probabilities cross between the coarse grid's points
    coarse = np.zeros((1, 2, 2), np.float32)
    coarse[0, 0] = (0.9, 0.1)
    coarse[0, 1] = (0.1, 0.9)
    labels = pixel_model.probabilities_to_labels(coarse, np.array([3, 7]), (1, 8))
    assert labels.tolist() == [[3, 3, 3, 3, 7, 7, 7, 7]]  # class ids from `classes`, boundary in the middle


def test_features_have_their_documented_names():
    image = render_scene(SampleConfig(height=32, width=40), 0)["image"]
    for feature_set in pixel_model.FEATURE_SETS:
        features = pixel_model.pixel_features(image, feature_set)
        assert features.shape == (32, 40, len(pixel_model.feature_names(feature_set)))
        assert features.dtype == np.float32 and np.isfinite(features).all()


def test_identity_holds_every_setting_and_run_info_what_it_ran_with(texture):
    spec = texture.spec
    identity = KIND.identity(spec)
    json.dumps(identity)
    assert identity["model_version"] == pixel_model.MODEL_VERSION and identity["sklearn"]
    assert identity["training"]["generator_version"] and identity["features"] == pixel_model.feature_names(spec.pixel)
    for change in ({"pixel": "colour"}, {"train_images": 5}, {"train_seed": 2}, {"train_pixels": 5000},
                   {"classifier": "logistic"}):
        assert KIND.identity(PixelSpec(**{**spec.__dict__, **change})) != identity, change
    info = texture.run_info()
    assert info["features"] == "colour_texture" and info["sklearn"] == identity["sklearn"]
    assert 0.5 * SMALL["train_pixels"] < info["training_pixels"] <= SMALL["train_pixels"]  # rare classes give less
    assert info["training_classes"] + len(info["classes_not_in_training"]) == len(CLASSES)
    assert set(info["classes_not_in_training"]) == set(CLASSES) - {CLASSES[c] for c in texture.classifier.classes_}
    assert 0 < info["fit_seconds"] < info["open_seconds"]
    json.dumps(info)


def test_the_logistic_classifier_predicts_too(dataset):
    model = KIND.open(PixelSpec(name="px", pixel="colour", classifier="logistic", **SMALL), dataset, Runtime())
    stem = dataset.stems()[0]
    assert _miou(_predict(model, dataset, stem), dataset.load_label(stem)) > 40


BAD_ENTRIES = [
    ("{name: px, pixel: colour, colours: 3}", "unknown key 'colours' for a pixel model"),
    ("{name: px, pixel: rgb}", "unknown feature set 'pixel: rgb' (known: colour, colour_texture)"),
    ("{name: px, pixel: colour, train_images: 0}", "'train_images' must be an integer 1-256, not 0"),
    ("{name: px, pixel: colour, train_images: many}", "'train_images' must be an integer 1-256"),
    ("{name: px, pixel: colour, train_images: true}", "'train_images' must be an integer 1-256"),
    ("{name: px, pixel: colour, train_images: 2.5}", "'train_images' must be an integer 1-256"),
    ("{name: px, pixel: colour, train_pixels: 10}", "'train_pixels' must be an integer 1000-1000000"),
    ("{name: px, pixel: colour, train_seed: -1}", "'train_seed' must be a non-negative integer"),
    ("{name: px, pixel: colour, train_seed: 0}", "'train_seed: 0' is the seed of the evaluated sample"),
    ("{name: px, pixel: colour, classifier: svm}", "unknown classifier 'svm' (known: extra_trees, logistic)"),
    ("{pixel: colour}", "a model needs a 'name'"),
]


@pytest.mark.parametrize("entry,needle", BAD_ENTRIES)
def test_a_bad_entry_is_one_line_with_the_file_and_line(tmp_path, sample, capsys, entry, needle):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(f"name: t\nfamilies: {{standard: {{}}}}\nmodels:\n  - {{name: oracle, baseline: oracle}}\n"
                        f"  - {entry}\n")
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", sample, "--out", tmp_path / "run")
    one_line_error(rc, err, protocol, "line 5: models[1]", needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_with_the_pixel_model_next_to_oracle(tmp_path, sample, capsys):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({
        "name": "t", "families": {"standard": {}, "size": {}}, "conditions": ["clean", "noise-16", "resolution-0.5"],
        "models": [{"name": "oracle", "baseline": "oracle"},
                   {"name": "pixel_texture", "pixel": "colour_texture", **SMALL},
                   {"name": "pixel_colour", "pixel": "colour", **SMALL}]}))
    args = ["run", protocol, "--data", sample, "--out", tmp_path / "run", "--workers", "2"]
    rc, out, err = zeg_eval_inprocess(capsys, *args)
    assert rc == 0, err
    run = tmp_path / "run"
    s = summary(run)
    assert list(s) == ["oracle", "pixel_texture", "pixel_colour"]
    assert s["oracle"]["mIoU"] == 100
    by_condition = read_json(run / "summary_conditions.json")
    for name in ("pixel_texture", "pixel_colour"):
        assert 40 < s[name]["mIoU"] < 100 and s[name]["n_images"] == 3
        assert by_condition["noise-16"][name]["mIoU"] != s[name]["mIoU"]
        assert by_condition["resolution-0.5"][name]["n_images"] == 3
    assert by_condition["noise-16"]["oracle"]["mIoU"] == 100
    m = manifest(run)
    info = m["models"]["pixel_texture"]["run_info"]
    assert info["features"] == "colour_texture" and info["fit_seconds"] > 0 and info["sklearn"]
    # a rerun recomputes nothing, under any condition
    before = (run / "summary.json").read_bytes()
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    assert rc == 0, err
    assert (run / "summary.json").read_bytes() == before
    assert manifest(run)["models"]["pixel_texture"]["images_computed_last_run"] == 0
    # another setting under the same name is refused, not mixed with the old records
    protocol.write_text(protocol.read_text().replace("train_pixels: 4000", "train_pixels: 5000", 1))
    rc, _, err = zeg_eval_inprocess(capsys, *args)
    one_line_error(rc, err, "made with another setup")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The whole evaluated sample: the 40 images `data: sample` generates."""
    return load_dataset(make_sample(tmp_path_factory.mktemp("full") / "s", SampleConfig()))


@pytest.mark.slow
@pytest.mark.parametrize("feature_set", pixel_model.FEATURE_SETS)
def test_quality_floor_on_the_evaluated_sample(feature_set, evaluated):
    """The shipped defaults on the 40 images of `data: sample`: measured clean mIoU 96.3
    (colour_texture) and 94.8 (colour); the floor leaves a wide margin (a sanity check, not a pin)."""
    spec = parse_models([{"name": "px", "pixel": feature_set}])[0]
    assert spec == PixelSpec(name="px", pixel=feature_set) and isinstance(kind_of(spec), PixelKind)
    data = evaluated
    model = kind_of(spec).open(spec, data, Runtime())
    assert model.run_info()["classes_not_in_training"] == []
    preds = np.stack([_predict(model, data, s) for s in data.stems()])
    gts = np.stack([data.load_label(s) for s in data.stems()])
    assert _miou(preds, gts) > 85
    assert model.run_info()["open_seconds"] < 60  # about 3 s on one core; only a guard against a hang


def test_a_corruption_without_its_library_is_one_line_before_anything_runs(tmp_path, capsys, monkeypatch, sample):
    """Where the `robustness` extra is missing, a model that looks at images refuses an ImageNet-C
    condition when it is opened: nothing is computed, not even the clean condition."""
    from harness.conditions import corruptions

    monkeypatch.setattr(corruptions, "library_problem", lambda: "the corruption library needs the extra 'robustness'")
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump({"name": "t", "families": {"standard": {}}, "conditions": ["fog-3"],
                                        "models": [{"name": "px", "pixel": "colour"}]}))
    run = tmp_path / "run"
    rc, _, err = zeg_eval_inprocess(capsys, "run", protocol, "--data", sample, "--out", run, "--workers", "0")
    one_line_error(rc, err, "model 'px': condition 'fog-3'", "needs the extra 'robustness'")
    assert not list(run.glob("records/*/*"))
