"""The condition axis' image transforms: ImageNet-C corruptions (harness.conditions.corruptions over
imagecorruptions-imaug) and the plain knobs of harness.conditions.transforms.

Strength is measured independently of the code under test: PSNR against the clean image with
scikit-image (corruptions) or OpenCV's cv2.PSNR (knobs), on the generated sample's first scene and
on real photos of ../shared/realdata (COCO-Stuff, COCO panoptic, ADE20K), brought to a longer side
of 320 px (non-square, as they come).
"""
from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.realdata import REALDATA

from harness.conditions import corruptions
from harness.conditions.spec import IMAGENET_C, Condition
from harness.conditions.transforms import apply_transform, downscale, gaussian_blur, gaussian_noise, jpeg
from harness.data.sample import SampleConfig, render_scene
from harness.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
# Which ImageNet-C corruptions draw random numbers (a different seed gives other bytes); the other
# six are functions of the image alone (zoom blur's zoom steps and jpeg's quality are fixed).
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow", "frost", "fog",
          "elastic_transform")
FIXED = tuple(n for n in IMAGENET_C if n not in RANDOM)
PHOTOS = ("coco_stuff_val2017_10/images/000000004495.jpg", "coco_panoptic_val2017_2/images/000000142238.jpg",
          "ade20k_val_3/images/ADE_val_00000001.jpg")


@lru_cache(maxsize=None)
def _scene() -> np.ndarray:
    return render_scene(SampleConfig(), 0)["image"]


@lru_cache(maxsize=None)
def _photo(relative: str) -> np.ndarray:
    """A real photo, RGB, area-downscaled so that its longer side is 320 px."""
    bgr = cv2.imread(str(REALDATA / relative), cv2.IMREAD_COLOR)
    assert bgr is not None, REALDATA / relative
    h, w = bgr.shape[:2]
    f = 320 / max(h, w)
    return cv2.cvtColor(cv2.resize(bgr, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def _images() -> dict[str, np.ndarray]:
    return {"scene": _scene(), **{Path(p).stem: _photo(p) for p in PHOTOS}}


def _psnr(clean: np.ndarray, other: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(clean, other, data_range=255))


def _digest(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def _sharpness(image: np.ndarray) -> float:
    """Mean gradient magnitude (Sobel) of the grey image: what any blur takes away."""
    grey = _grey(image)
    return float(np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1)).mean())


def _image_share(name: str, severity: int, seed: int) -> float:
    """How much of the clean image is left in the output of a corruption that lays an overlay over a
    weakened image (frost, fog): corrupt two different scenes with the same seed (hence the same
    overlay) and regress the difference of the outputs on the difference of the inputs, over the
    pixels that neither output clips. Both scenes get a white pixel, so fog (which scales by the
    image's maximum) treats them alike."""
    a, b = render_scene(SampleConfig(), 0)["image"].copy(), render_scene(SampleConfig(), 1)["image"].copy()
    a[0, 0] = b[0, 0] = 255
    out_a, out_b = (corruptions.corrupt(x, name, severity, seed).astype(np.float64) for x in (a, b))
    keep = (out_a > 0) & (out_a < 255) & (out_b > 0) & (out_b < 255)
    dx, dy = (a.astype(np.float64) - b)[keep], (out_a - out_b)[keep]
    return float(dx @ dy / (dx @ dx))


# ---------------------------------------------------------------- the wrapper's contract


def test_every_corruption_and_severity_keeps_shape_and_dtype():
    # odd, non-square sizes at the minimum side and beyond, cut from a real photo
    photo = _photo(PHOTOS[0])
    for h, w in ((32, 32), (37, 61), (61, 33)):
        image = np.ascontiguousarray(photo[:h, :w])
        for name in IMAGENET_C:
            for severity in range(1, 6):
                out = corruptions.corrupt(image, name, severity, 3)
                assert out.shape == image.shape and out.dtype == np.uint8, (name, severity, h, w)
                assert out.flags.c_contiguous


def test_every_corruption_changes_the_image():
    image = _scene()
    for name in IMAGENET_C:
        assert not np.array_equal(corruptions.corrupt(image, name, 1, 0), image), name


def test_same_seed_same_bytes_and_other_seeds_other_bytes_for_the_random_ones():
    image = _scene()
    for name in IMAGENET_C:
        first = corruptions.corrupt(image, name, 3, 0)
        assert np.array_equal(first, corruptions.corrupt(image, name, 3, 0)), name
        other = corruptions.corrupt(image, name, 3, 1)
        if name in RANDOM:
            assert not np.array_equal(first, other), name
        else:  # nothing random in these: the seed changes nothing
            assert np.array_equal(first, other), name


def test_the_process_random_state_is_left_alone_and_does_not_leak_in():
    image = _scene()
    np.random.seed(1234)
    random.seed(1234)
    before_np, before_py = np.random.get_state(), random.getstate()
    outs = {name: corruptions.corrupt(image, name, 2, 5) for name in RANDOM}
    after_np = np.random.get_state()
    assert before_np[0] == after_np[0] and np.array_equal(before_np[1], after_np[1]) and before_np[2:] == after_np[2:]
    assert random.getstate() == before_py
    # whatever the global generators were seeded with, the output is the same
    np.random.seed(99)
    random.seed(99)
    for name, out in outs.items():
        assert np.array_equal(corruptions.corrupt(image, name, 2, 5), out), name


def test_large_seeds_as_conditions_make_them():
    image = _scene()
    condition = Condition.make("gaussian_noise", 4, seed=7)
    seed = condition.image_seed("000000004495")
    assert seed >= 2 ** 32  # Condition.image_seed gives 63 bits; numpy's and numba's seeds take 32
    out = condition.apply(image, "000000004495")
    assert np.array_equal(out, corruptions.corrupt(image, "gaussian_noise", 4, seed))
    assert np.array_equal(out, apply_transform(image, "gaussian_noise", 4, seed))
    assert not np.array_equal(out, condition.apply(image, "000000007977"))


@pytest.mark.slow
def test_same_bytes_in_another_process():
    """Every corruption at every severity gives the same bytes in a fresh interpreter (numba compiles
    glass blur anew there; frost loads its photo anew)."""
    image = _scene()
    seed = 2 ** 62 + 11
    here = {f"{n}/{s}": _digest(corruptions.corrupt(image, n, s, seed)) for n in IMAGENET_C for s in (1, 5)}
    code = ("import hashlib, json\n"
            "from harness.conditions.corruptions import corrupt\n"
            "from harness.conditions.spec import IMAGENET_C\n"
            "from harness.data.sample import SampleConfig, render_scene\n"
            "image = render_scene(SampleConfig(), 0)['image']\n"
            f"print(json.dumps({{f'{{n}}/{{s}}': hashlib.sha256(corrupt(image, n, s, {seed}).tobytes()).hexdigest()"
            " for n in IMAGENET_C for s in (1, 5)}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_bad_arguments_are_one_clear_value_error():
    image = _scene()
    with pytest.raises(ValueError, match="at least 32x32 pixels, got 31x40"):
        corruptions.corrupt(np.zeros((31, 40, 3), np.uint8), "fog", 1, 0)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        corruptions.corrupt(image[..., 0], "fog", 1, 0)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        corruptions.corrupt(image.astype(np.float32), "fog", 1, 0)
    with pytest.raises(ValueError, match="unknown corruption 'speckle_noise'"):
        corruptions.corrupt(image, "speckle_noise", 1, 0)
    for severity in (0, 6, 2.0, True):
        with pytest.raises(ValueError, match="severity must be an integer 1-5"):
            corruptions.corrupt(image, "fog", severity, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        corruptions.corrupt(image, "fog", 1, -1)


def test_version_names_the_library_and_what_computes_its_pixels():
    from importlib import metadata

    text = corruptions.version()
    parts = text.split("/")
    assert parts[0] == f"imagecorruptions-imaug-{metadata.version('imagecorruptions-imaug')}"
    assert f"numba-{metadata.version('numba')}" in parts
    assert f"scikit-image-{metadata.version('scikit-image')}" in parts
    assert f"numpy-{np.__version__}" in parts and f"opencv-{cv2.__version__}" in parts
    from harness.conditions.transforms import transform_version

    assert transform_version("snow") == text
    assert Condition.make("snow", 2).identity()["version"] == text


def test_missing_library_is_one_line_naming_the_extra(monkeypatch):
    from harness import extras

    corruptions._library.cache_clear()
    corruptions.version.cache_clear()
    try:
        monkeypatch.setitem(extras.EXTRAS, "robustness", ("zeg_eval_no_such_module",))
        for call in (lambda: corruptions.corrupt(_scene(), "fog", 1, 0), corruptions.version):
            with pytest.raises(UserError) as info:
                call()
            message = str(info.value)
            assert "\n" not in message
            assert "needs the extra 'robustness'" in message and "pip install 'zeg-eval[robustness]'" in message
        monkeypatch.setitem(extras.EXTRAS, "robustness", ("imagecorruptions",))
        # bethgelab's original in the fork's place (it fails on numpy 2): told to swap them
        monkeypatch.setattr(corruptions, "_library_distributions", lambda: ["imagecorruptions"])
        with pytest.raises(UserError, match=r"pip uninstall imagecorruptions && pip install imagecorruptions-imaug"):
            corruptions.corrupt(_scene(), "fog", 1, 0)
    finally:
        corruptions._library.cache_clear()
        corruptions.version.cache_clear()


@pytest.mark.slow
def test_importing_the_condition_axis_imports_no_corruption_library():
    code = ("import sys, harness.conditions.spec, harness.conditions.transforms, harness.conditions.corruptions; "
            "print(sorted(m for m in ('imagecorruptions', 'numba', 'skimage', 'scipy.ndimage') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------- strength grows with severity

# PSNR against the clean image falls strictly from severity 1 to 5 for these, on every test image
PSNR_MONOTONE = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur", "zoom_blur",
                 "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "zoom_blur" else n
                                  for n in PSNR_MONOTONE])  # zoom blur: 16 zoomed copies a call, ~5 s here
def test_psnr_falls_with_severity(name):
    for key, image in _images().items():
        for seed in (0, 1) if name in RANDOM else (0,):
            psnr = [_psnr(image, corruptions.corrupt(image, name, s, seed)) for s in range(1, 6)]
            assert all(a > b for a, b in zip(psnr, psnr[1:])), (key, seed, [round(p, 2) for p in psnr])


def test_glass_blur_sharpness_falls_with_severity():
    """Not PSNR: Hendrycks' table shuffles pixels twice at severity 1 but once at 2 (and thrice at 3,
    twice at 4), so PSNR rises from 1 to 2 and from 3 to 4 on real photos. Its blur sigma grows
    strictly (0.7, 0.9, 1, 1.1, 1.5), and the sharpness (mean gradient magnitude) falls strictly."""
    for key, image in _images().items():
        for seed in (0, 1):
            sharp = [_sharpness(corruptions.corrupt(image, "glass_blur", s, seed)) for s in range(1, 6)]
            assert _sharpness(image) > sharp[0], key
            assert all(a > b for a, b in zip(sharp, sharp[1:])), (key, seed, [round(v, 2) for v in sharp])
    psnr = [_psnr(_photo(PHOTOS[0]), corruptions.corrupt(_photo(PHOTOS[0]), "glass_blur", s, 0)) for s in (1, 2)]
    assert psnr[1] > psnr[0]  # the reason PSNR is not the measure here


def test_frost_leaves_less_of_the_image_with_severity():
    """Not PSNR: frost is image * a + frost photo * b with (a, b) = (1, .4), (.8, .6), (.7, .7),
    (.65, .7), (.6, .75); from 3 to 4 only the image is dimmed, which can bring the output closer
    to a dark clean image (PSNR rises). The image's share a, measured, falls strictly and is the
    table's."""
    for seed in (0, 3):  # the photo and its crop are drawn from the seed
        shares = [_image_share("frost", s, seed) for s in range(1, 6)]
        assert shares == pytest.approx([1.0, 0.8, 0.7, 0.65, 0.6], abs=0.01), shares
        assert all(a > b for a, b in zip(shares, shares[1:]))


def test_fog_leaves_less_of_the_image_with_severity():
    """Not PSNR, and not strictly: fog adds a plasma fractal of weight c and rescales by
    max / (max + c) with c = 1.5, 2, 2.5, 2.5, 3; severities 3 and 4 differ only in the fractal's
    roughness (wibble decay 1.7 vs 1.5), and PSNR rises from 3 to 4 on most images. The image's
    share 1 / (1 + c) for a maximum of 255, measured, falls strictly except between 3 and 4."""
    shares = [_image_share("fog", s, 0) for s in range(1, 6)]
    assert shares == pytest.approx([1 / 2.5, 1 / 3, 1 / 3.5, 1 / 3.5, 1 / 4], abs=0.005), shares
    assert shares[0] > shares[1] > shares[2] and shares[3] > shares[4]


def test_snow_psnr_falls_except_between_severities_2_and_3():
    """Hendrycks' severity 3 draws fewer but larger flakes than 2 (flake threshold 0.9 vs 0.5, zoom
    4 vs 2) with the same image blend (0.7): the two are about equally strong by any measure, PSNR
    within 1 dB either way. Otherwise PSNR falls strictly (1 > 2, 1 > 3 > 4 > 5)."""
    for key, image in _images().items():
        for seed in (0, 1):
            p = [_psnr(image, corruptions.corrupt(image, "snow", s, seed)) for s in range(1, 6)]
            assert p[0] > p[1] and p[0] > p[2] > p[3] > p[4], (key, seed, [round(v, 2) for v in p])
            assert abs(p[1] - p[2]) < 1.0, (key, seed, [round(v, 2) for v in p])


# ---------------------------------------------------------------- the plain knobs


def _cv_psnr(clean: np.ndarray, other: np.ndarray) -> float:
    return float(cv2.PSNR(clean, other))


def test_jpeg_lower_quality_lower_psnr():
    for key, image in _images().items():
        psnr = [_cv_psnr(image, jpeg(image, q)) for q in (95, 75, 50, 25, 10, 3)]
        assert all(a > b for a, b in zip(psnr, psnr[1:])), (key, [round(v, 2) for v in psnr])
        assert np.array_equal(apply_transform(image, "jpeg", 50, 0), jpeg(image, 50))


def test_blur_larger_sigma_lower_psnr_and_sharpness():
    for key, image in _images().items():
        outs = [gaussian_blur(image, s) for s in (0.5, 1, 2, 4, 8)]
        psnr = [_cv_psnr(image, o) for o in outs]
        sharp = [_sharpness(o) for o in outs]
        assert all(a > b for a, b in zip(psnr, psnr[1:])), (key, psnr)
        assert _sharpness(image) > sharp[0] and all(a > b for a, b in zip(sharp, sharp[1:])), (key, sharp)
        assert outs[0].shape == image.shape and outs[0].dtype == np.uint8


def test_noise_larger_sigma_lower_psnr_and_the_measured_sigma():
    for key, image in _images().items():
        psnr = [_cv_psnr(image, gaussian_noise(image, s, 0)) for s in (1, 2, 4, 8, 16, 32, 64)]
        assert all(a > b for a, b in zip(psnr, psnr[1:])), (key, [round(v, 2) for v in psnr])
    grey = np.full((200, 300, 3), 128, np.uint8)  # no clipping: the noise shows whole
    for sigma in (2.0, 8.0, 20.0):
        residual = gaussian_noise(grey, sigma, 4).astype(np.float64) - 128
        assert abs(residual.mean()) < 0.1
        assert residual.std() == pytest.approx(sigma, rel=0.02)
    image = _scene()
    assert np.array_equal(gaussian_noise(image, 8, 3), apply_transform(image, "noise", 8, 3))
    assert np.array_equal(gaussian_noise(image, 8, 3), gaussian_noise(image, 8, 3))
    assert not np.array_equal(gaussian_noise(image, 8, 3), gaussian_noise(image, 8, 4))


def test_resolution_output_size_is_the_rounded_product():
    """round(h * f), round(w * f), as Python rounds the exact product (half to even: 241 x 0.5 =
    120.5 -> 120, 243 x 0.5 -> 122), at least 1 px."""
    photo = _photo(PHOTOS[1])
    for h, w in ((240, 320), (241, 321), (243, 37), (214, 320)):
        image = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        for f in (1.0, 0.75, 0.5, 0.3, 0.25, 0.1, 0.01):
            out = downscale(image, f)
            exact_h, exact_w = Fraction(h) * Fraction(str(f)), Fraction(w) * Fraction(str(f))
            assert out.shape == (max(1, round(exact_h)), max(1, round(exact_w)), 3), (h, w, f)
            assert out.dtype == np.uint8
            # area averaging keeps the mean colour
            assert np.abs(out.reshape(-1, 3).mean(0) - image.reshape(-1, 3).mean(0)).max() < 2.5, (h, w, f)
    assert downscale(photo, 1.0) is photo
