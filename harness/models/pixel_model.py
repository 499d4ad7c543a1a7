"""A model that predicts from the image's pixels alone: per-pixel colour (and texture) features and a
small scikit-learn classifier, fitted on generated images that are not the evaluated ones.

The baselines are made from the ground truth, so an image condition (noise, blur, a lower
resolution, JPEG) cannot change them. This model looks only at the image: it is the default model
that *responds* to a degraded image, needs no downloaded weights and no torch, and is deterministic.
Its two variants are a pair for robustness tables: `colour_texture` is the more accurate on clean
images, `colour` (weaker, and differently robust) the reference model of a mean Corruption Error.

    models:
      - {name: pixel_texture, pixel: colour_texture}   # colour + texture features
      - {name: pixel_colour, pixel: colour}            # colour only: the weaker reference
      - name: pixel_texture_24
        pixel: colour_texture
        train_images: 24         # generated scenes it is fitted on (default 12, 1-256)
        train_seed: 1            # their seed (default 1; 0 is the evaluated sample and is refused)
        train_pixels: 20000      # pixels drawn from them, class-balanced (default 20000, 1000-1000000)
        classifier: extra_trees  # extra_trees (default) | logistic

Features, per pixel, from the RGB image only (OpenCV and numpy; `pixel_features`):

* `colour`: CIE Lab (OpenCV's float conversion: L 0-100) averaged over square windows of 3, 7 and 15
  px: the colour at the pixel with the sensor noise averaged out, and the colour of its
  surroundings (9 values).
* `colour_texture`: those, and from the lightness L: the local standard deviation and the mean
  gradient magnitude over 5 and 11 px windows, their ratio (an amplitude-free estimate of the
  stripe frequency), the orientation of the structure tensor over 9 px (double-angle vector scaled
  by coherence) and the detail energy below three scales (mean |L - Gaussian(L)|, sigma 1, 2, 4):
  20 values. The sample's classes differ in colour and in stripe period and angle
  (`harness.data.sample._LOOKS`); these features see both.

Classifier: `extra_trees` (default: scikit-learn's ExtraTreesClassifier, 24 trees of depth at most
16, leaves of at least 3 pixels, random_state 0, one core) or `logistic` (standardised features,
multinomial logistic regression: a linear model). Extremely randomised trees, because on the sample
they were as accurate as a random forest at a fifth of its fitting time, and, unlike the linear
model, as accurate from colour alone and far less fragile under blur (docs/runner.md has the
figures).
Training data: `train_images` scenes rendered in memory by `harness.data.sample.render_scene` with
`SampleConfig(seed=train_seed)` (the sample's generator, another seed: scenes disjoint from the
evaluated sample, which is seed 0), of which `train_pixels` labelled pixels are drawn with equal
shares per class (a class with fewer pixels gives all it has) from a numpy Generator seeded with
`train_seed`. The fit runs when the model is opened, every run (it is deterministic; nothing is
cached), and takes a few seconds; its time is in the manifest's run_info.

Under a condition the image is transformed first (`harness.conditions`); an image smaller than its
label (a `resolution-f` condition) is scaled back up to the label's size before the features, as a
segmenter's test pipeline resizes its input to its working scale. The prediction is made at half
resolution (features area-averaged over 2x2 blocks) and brought back to the label's size bilinearly
as class probabilities, then argmax (`probabilities_to_labels`).

The model knows only the generated sample's classes (`harness.data.sample.CLASSES`, in that
order): on another dataset it is skipped in one line and the run goes on.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from harness.conditions.spec import CLEAN_CONDITION, Condition
from harness.data.imageio import read_rgb
from harness.data.sample import CLASSES, GENERATOR_VERSION, SampleConfig, render_scene
from harness.errors import SkipModel, UserError
from harness.models.base import ModelKind, Predictor, check_allowed, check_name, check_type

# Increment when the predictions change for the same settings (record identity: harness.run.identity).
MODEL_VERSION = 1
FEATURE_SETS = ("colour", "colour_texture")
CLASSIFIERS = {
    "extra_trees": {"n_estimators": 24, "max_depth": 16, "min_samples_leaf": 3, "random_state": 0, "n_jobs": 1},
    "logistic": {"C": 1.0, "max_iter": 300},
}
COLOUR_WINDOWS = (3, 7, 15)       # px: box means of Lab
TEXTURE_WINDOWS = (5, 11)         # px: local std and gradient magnitude of L
TENSOR_WINDOW = 9                 # px: structure tensor
DETAIL_SIGMAS = (1, 2, 4)         # px: detail energy |L - G_sigma(L)|
WORK_STRIDE = 2                   # the classifier runs on 2x2 blocks (see probabilities_to_labels)
LIMITS = {"train_images": (1, 256), "train_pixels": (1000, 1_000_000)}
EVALUATED_SEED = SampleConfig().seed  # `data: sample` is generated with this seed


@dataclass(frozen=True)
class PixelSpec:
    name: str
    pixel: str                        # the feature set: colour | colour_texture
    train_images: int = 12
    train_seed: int = 1
    train_pixels: int = 20000
    classifier: str = "extra_trees"

    kind = "pixel"


# ---------------------------------------------------------------------------------------------
# features: pure functions of the image


def lab(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWx3 float32 CIE Lab (OpenCV's float conversion: L 0-100, a and b about
    -128-127): a colour space in which distances follow perceived differences, and lightness is
    one channel of its own for the texture features."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def box_mean(x: np.ndarray, window: int) -> np.ndarray:
    """The mean over a window x window square around each pixel (borders reflected, as
    cv2.BORDER_REFLECT_101 does, so the image edge is not a dark frame)."""
    return cv2.blur(x, (window, window), borderType=cv2.BORDER_REFLECT_101)


def local_std(x: np.ndarray, window: int) -> np.ndarray:
    """sqrt(E[x^2] - E[x]^2) over the window: the contrast of the stripes around each pixel."""
    mean = box_mean(x, window)
    return np.sqrt(np.maximum(box_mean(x * x, window) - mean * mean, 0.0))


def gradients(lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dx, d/dy) of L by 3x3 Sobel, divided by 8 so they are per-pixel differences."""
    gx = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101) / 8.0
    gy = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101) / 8.0
    return gx, gy


def orientation(gx: np.ndarray, gy: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The structure tensor's orientation as a double-angle vector scaled by coherence:
    ((Jxx - Jyy) / (Jxx + Jyy), 2 Jxy / (Jxx + Jyy)) with J the window's mean of the gradient's
    outer product. For stripes whose wave vector is at angle a this is (cos 2a, sin 2a) times how
    much one direction dominates (0 for flat or isotropic regions)."""
    jxx, jyy, jxy = box_mean(gx * gx, window), box_mean(gy * gy, window), box_mean(gx * gy, window)
    total = jxx + jyy + 1e-3
    return (jxx - jyy) / total, 2.0 * jxy / total


def colour_features(lab_image: np.ndarray) -> list[np.ndarray]:
    """Lab averaged over each of COLOUR_WINDOWS: one HxWx3 block (L, a, b) per window."""
    return [box_mean(lab_image, window) for window in COLOUR_WINDOWS]


def texture_features(lightness: np.ndarray) -> list[np.ndarray]:
    """HxW planes from L: per window of TEXTURE_WINDOWS the local std s, the mean gradient
    magnitude g and g / (s + 1) (for a sinusoid of amplitude A and period p, g = 4A/p and
    s = A/sqrt(2), so the ratio is about 5.7/p whatever the amplitude: a frequency estimate); the
    structure tensor's orientation; the detail energy below each of DETAIL_SIGMAS."""
    gx, gy = gradients(lightness)
    magnitude = np.sqrt(gx * gx + gy * gy)
    planes = []
    for window in TEXTURE_WINDOWS:
        s = local_std(lightness, window)
        g = box_mean(magnitude, window)
        planes += [s, g, g / (s + 1.0)]
    planes += list(orientation(gx, gy, TENSOR_WINDOW))
    for sigma in DETAIL_SIGMAS:
        detail = np.abs(lightness - cv2.GaussianBlur(lightness, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101))
        planes.append(box_mean(detail, 2 * sigma + 3))
    return planes


def feature_names(feature_set: str) -> list[str]:
    """The names of the planes `pixel_features` gives, in order (for run_info and identity)."""
    names = [f"lab_{c}_mean{w}" for w in COLOUR_WINDOWS for c in "Lab"]
    if feature_set == "colour_texture":
        for w in TEXTURE_WINDOWS:
            names += [f"L_std{w}", f"L_gradient{w}", f"L_frequency{w}"]
        names += [f"L_orientation_cos{TENSOR_WINDOW}", f"L_orientation_sin{TENSOR_WINDOW}"]
        names += [f"L_detail_sigma{s}" for s in DETAIL_SIGMAS]
    return names


def pixel_features(rgb: np.ndarray, feature_set: str) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxWxF float32: the feature set's planes (see feature_names)."""
    lab_image = lab(rgb)
    blocks = colour_features(lab_image)
    if feature_set == "colour_texture":
        blocks += [plane[..., None] for plane in texture_features(np.ascontiguousarray(lab_image[..., 0]))]
    return np.concatenate(blocks, axis=-1).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# training: generated scenes of another seed


@functools.lru_cache(maxsize=2)
def training_scenes(seed: int, n: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(image, labels) of generated scenes 0..n-1 of `seed`, made in memory (nothing is written) and
    read-only. Kept for the process's next call (a few MB): rendering is most of a fit's time, and
    a protocol's two variants are fitted on the same scenes."""
    config = SampleConfig(seed=seed, n_images=n)
    scenes = []
    for k in range(n):
        scene = render_scene(config, k)
        image, labels = scene["image"], scene["labels"]
        image.flags.writeable = labels.flags.writeable = False
        scenes.append((image, labels))
    return tuple(scenes)


def balanced_choice(labels: np.ndarray, n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices into the flat `labels` of about n pixels with equal shares per class: each
    class gives n // n_classes pixels drawn without replacement, or all it has (ignore pixels and
    ids outside 0..n_classes-1 are never drawn). Equal shares, because the small thing classes
    have a few percent of the pixels and would otherwise hardly be fitted."""
    share = max(1, n // n_classes)
    chosen = []
    for c in range(n_classes):
        where = np.flatnonzero(labels == c)
        if where.size > share:
            where = rng.choice(where, size=share, replace=False)
        chosen.append(where)
    return np.sort(np.concatenate(chosen))


def training_set(spec: PixelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(X [n, F] float32, y [n] uint8): the features and classes of the drawn training pixels."""
    scenes = training_scenes(spec.train_seed, spec.train_images)
    labels = np.concatenate([lab_map.ravel() for _, lab_map in scenes])
    rng = np.random.default_rng(spec.train_seed)
    chosen = balanced_choice(labels, spec.train_pixels, len(CLASSES), rng)
    rows, start = [], 0
    for image, lab_map in scenes:
        stop = start + lab_map.size
        here = chosen[(chosen >= start) & (chosen < stop)] - start
        if here.size:
            features = pixel_features(image, spec.pixel)
            rows.append(features.reshape(-1, features.shape[-1])[here])
        start = stop
    return np.concatenate(rows), labels[chosen]


def make_classifier(name: str):
    """A fresh, unfitted scikit-learn classifier of CLASSIFIERS[name] (deterministic settings)."""
    params = CLASSIFIERS[name]
    if name == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(**params)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(**params))


def fit(spec: PixelSpec):
    """(fitted classifier, info): the classifier fitted on the training set, and what it took."""
    start = time.perf_counter()
    classifier = make_classifier(spec.classifier)  # the first imports scikit-learn (about 1-2 s)
    imported = time.perf_counter()
    x, y = training_set(spec)
    prepared = time.perf_counter()
    classifier.fit(x, y)
    done = time.perf_counter()
    missing = [CLASSES[c] for c in range(len(CLASSES)) if not (y == c).any()]  # never predicted
    info = {"training_pixels": int(len(y)), "training_classes": len(CLASSES) - len(missing),
            "classes_not_in_training": missing,
            "render_features_seconds": round(prepared - imported, 3), "fit_seconds": round(done - prepared, 3),
            "open_seconds": round(done - start, 3)}
    return classifier, info


# ---------------------------------------------------------------------------------------------
# prediction


def working_features(features: np.ndarray, stride: int) -> np.ndarray:
    """HxWxF features averaged over stride x stride blocks (cv2.INTER_AREA): the grid the
    classifier runs on. Each block's centre is where cv2's bilinear upscaling puts it back."""
    if stride == 1:
        return features
    h, w = features.shape[:2]
    size = (max(1, round(w / stride)), max(1, round(h / stride)))
    return cv2.resize(features, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)


def probabilities_to_labels(probabilities: np.ndarray, classes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """hxwxK class probabilities -> an HxW uint8 map of class ids (`classes[k]` for column k).

    The probabilities are brought to (H, W) bilinearly before the argmax: class ids cannot be
    interpolated, and upscaling the argmax (nearest) would draw every boundary on the coarse grid,
    where interpolated probabilities cross between its points."""
    h, w = shape
    if probabilities.shape[:2] != (h, w):
        probabilities = cv2.resize(probabilities, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    return np.asarray(classes, dtype=np.uint8)[probabilities.argmax(axis=-1)]


def predict_labels(classifier, rgb: np.ndarray, feature_set: str, shape: tuple[int, int],
                   stride: int = WORK_STRIDE) -> np.ndarray:
    """An HxW uint8 label map of `shape` from the image alone. An image of another size (a
    resolution condition) is scaled to `shape` first (bilinear), as a segmenter's test pipeline
    resizes its input to its working scale: the features' windows are in pixels of that scale."""
    h, w = shape
    if rgb.shape[:2] != (h, w):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    grid = working_features(pixel_features(rgb, feature_set), stride)
    gh, gw, f = grid.shape
    probabilities = classifier.predict_proba(grid.reshape(-1, f)).astype(np.float32).reshape(gh, gw, -1)
    return probabilities_to_labels(probabilities, classifier.classes_, (h, w))


# ---------------------------------------------------------------------------------------------
# the predictor and the kind


class PixelPredictor(Predictor):
    """The fitted classifier bound to a dataset and a condition; picklable, runs in the metric
    workers. It reads the image and looks at the ground truth only for its shape."""

    reads_images = True

    def __init__(self, spec: PixelSpec, dataset, classifier, info: dict, condition: Condition = CLEAN_CONDITION):
        self.spec = spec
        self.dataset = dataset
        self.classifier = classifier
        self.info = info
        self.condition = condition

    def predict(self, stem: str, gt: np.ndarray, instances) -> np.ndarray:
        image = self.condition.apply(read_rgb(self.dataset.image_path(stem)), stem)
        return predict_labels(self.classifier, image, self.spec.pixel, gt.shape[:2])

    def input_path(self, stem: str) -> Path:
        return self.dataset.image_path(stem)

    def where(self, stem: str):
        return self.dataset.image_path(stem)

    def run_info(self) -> dict:
        import sklearn

        return {"features": self.spec.pixel, "n_features": len(feature_names(self.spec.pixel)),
                "classifier": self.spec.classifier, "train_images": self.spec.train_images,
                "train_seed": self.spec.train_seed, "sklearn": sklearn.__version__, **self.info}

    def under(self, condition) -> Predictor:
        """This model under `condition` (a harness.conditions.spec.Condition); one whose image cannot be
        made here (a folder-only condition, a corruption without its library) is a one-line error."""
        condition.check_available(f"model '{self.spec.name}'")
        if condition == self.condition:
            return self
        return PixelPredictor(self.spec, self.dataset, self.classifier, self.info, condition)


def _sklearn_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-learn")
    except PackageNotFoundError:
        return None


def _evaluated_seed(dataset) -> int | None:
    """The seed of a generated sample dataset (its sample.json), None for any other dataset."""
    try:
        return int(json.loads((Path(dataset.root) / "sample.json").read_text())["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class PixelKind(ModelKind):
    name = "pixel"
    key = "pixel"

    def parse(self, entry: dict, where: str, protocol_path) -> PixelSpec:
        path = protocol_path
        check_allowed(entry, {f.name for f in dataclasses.fields(PixelSpec)}, "pixel", where, path)
        name = entry.get("name")
        check_name(name, where, path)
        where = f"{where} ({name})"
        if entry["pixel"] not in FEATURE_SETS:
            raise UserError(f"{where}: unknown feature set 'pixel: {entry['pixel']}' (known: "
                            f"{', '.join(FEATURE_SETS)})", path)
        for key, (low, high) in LIMITS.items():
            if key in entry:
                check_type(entry, key, int, where, path, f"an integer {low}-{high}")
                if not low <= entry[key] <= high:
                    raise UserError(f"{where}: '{key}' must be an integer {low}-{high}, not {entry[key]}", path)
        if "train_seed" in entry:
            check_type(entry, "train_seed", int, where, path, "a non-negative integer")
            if entry["train_seed"] < 0:
                raise UserError(f"{where}: 'train_seed' must be a non-negative integer", path)
            if entry["train_seed"] == EVALUATED_SEED:
                raise UserError(f"{where}: 'train_seed: {EVALUATED_SEED}' is the seed of the evaluated sample "
                                "(data: sample); fit on another (default 1)", path)
        if "classifier" in entry and entry["classifier"] not in CLASSIFIERS:
            raise UserError(f"{where}: unknown classifier '{entry['classifier']}' (known: "
                            f"{', '.join(CLASSIFIERS)})", path)
        return PixelSpec(**entry)

    def identity(self, spec: PixelSpec) -> dict:
        return {"kind": self.name, "model_version": MODEL_VERSION, "pixel": spec.pixel,
                "features": feature_names(spec.pixel), "work_stride": WORK_STRIDE,
                "training": {"images": spec.train_images, "seed": spec.train_seed, "pixels": spec.train_pixels,
                             "generator_version": GENERATOR_VERSION,
                             "scene": {"height": SampleConfig().height, "width": SampleConfig().width}},
                "classifier": {"name": spec.classifier, **CLASSIFIERS[spec.classifier]},
                "sklearn": _sklearn_version(), "opencv": cv2.__version__}

    def open(self, spec: PixelSpec, dataset, runtime) -> Predictor:
        if tuple(dataset.classes) != CLASSES:
            raise SkipModel(f"the pixel model knows only the generated sample's {len(CLASSES)} classes "
                            f"({', '.join(CLASSES[:3])}, ...), and this dataset has other classes")
        if _sklearn_version() is None:
            raise SkipModel("the pixel model needs scikit-learn (pip install scikit-learn)")
        if _evaluated_seed(dataset) == spec.train_seed:
            raise UserError(f"model '{spec.name}': this dataset is the generated sample of seed {spec.train_seed}, "
                            "the images it would be fitted on; give another train_seed", dataset.root)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # one core, as in the metric workers
            classifier, info = fit(spec)
        return PixelPredictor(spec, dataset, classifier, info)

