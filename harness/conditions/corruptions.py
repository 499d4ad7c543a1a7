"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) at severities 1-5, through the
`imagecorruptions-imaug` package (the imaug fork of bethgelab's `imagecorruptions`, which ports
Hendrycks' code to images of any size). Chosen by measurement (bench/bench_corruptions.py,
docs/robustness.md): bethgelab's 1.1.2 no longer runs fog and glass blur on numpy 2 / scikit-image
0.26 and its impulse noise cannot be seeded; albumentations has no frost and other fog, snow and
elastic transforms. The library is an extra (`pip install 'zeg-eval[robustness]'`), imported on
first use only.

Determinism: the output is a function of (image, name, severity, seed) alone, in any process. The
library draws from three sources, each seeded here from words of numpy's SeedSequence(seed):
numpy's global RandomState (every random corruption but two; frost also picks its frost photo
with it), which is seeded for the call and restored afterwards, so nothing else in the process
sees a change; scikit-image's Generator (impulse noise) and numba's own generator (glass blur),
through the fork's `seed` argument. It uses neither Python's `random` nor the OS's entropy once
seeded so (tests/test_corruptions.py holds both). Calls are serialised by a lock, since the global
RandomState is shared by all threads.

Where it differs from Hendrycks' reference (make_imagenet_c.py, written for 224x224 crops; the
whole table is in docs/robustness.md): any size >= 32x32 (glass blur shuffles the whole image, fog's
fractal is as large as the next power of two of the longer side, zoom blur crops each axis on its
own); motion blur (and the streaks of snow) is a sum of shifted copies with one-sided Gaussian
weights instead of ImageMagick's MotionBlurImage; frost picks among all six frost photos (the
reference among the first five), enlarges them 1.1x at least and more when the image is larger
than the photo, then crops at random; pixelate upsamples with nearest instead of box; elastic
transform is bethgelab's own (no random affine part; its displacement is smoothed uniform noise of
0.5% of the height scaled by 12.5-30 with sigma 1% of each side), not the reference's. ImageNet-C's
images were also saved as JPEG of quality 85 after corruption; these are not.
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from harness.errors import UserError

# The 15 corruptions of ImageNet-C (Hendrycks & Dietterich, ICLR 2019), in their order: noise, blur,
# weather, digital.
IMAGENET_C = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression")
DISTRIBUTION = "imagecorruptions-imaug"  # the pip name; it installs the module `imagecorruptions`
MODULE = "imagecorruptions"
MIN_SIDE = 32  # the library refuses smaller images
# The distributions whose code computes the pixels besides the library (numba's generator makes glass
# blur's shuffle, scikit-image's impulse noise and Gaussian filter, ...): their versions are part of
# version(). OpenCV by its module's version, since either opencv-python or its headless twin provides it.
PIXEL_DEPENDENCIES = ("numba", "scikit-image", "scipy", "pillow", "numpy")
# The two corruptions that draw from a generator of their own, seeded through the fork's `seed=`
_OWN_GENERATOR = ("glass_blur", "impulse_noise")
_LOCK = threading.Lock()


def _installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _library_distributions() -> list[str]:
    """The installed distributions that provide the module `imagecorruptions` (bethgelab's package
    and the fork both do; only one can be installed at a time)."""
    from importlib import metadata

    return sorted(set(metadata.packages_distributions().get(MODULE, [])))


def library_problem() -> str | None:
    """Why the corruptions cannot run here, in one line (None when they can): the extra is not
    installed, or bethgelab's original `imagecorruptions` is installed in the fork's place (it fails
    on fog and glass blur on numpy 2 and scikit-image 0.26, and cannot seed impulse noise)."""
    from harness.extras import missing_message

    message = missing_message("robustness")
    if message:
        return f"the corruption library {message}"
    dists = _library_distributions()
    if DISTRIBUTION not in dists:
        return (f"ImageNet-C corruptions need {DISTRIBUTION}, but the module '{MODULE}' comes from "
                f"{', '.join(dists) or 'an unknown package'} (pip uninstall {' '.join(dists) or MODULE} && "
                f"pip install {DISTRIBUTION})")
    return None


@lru_cache(maxsize=1)
def _library():
    """The fork's module, imported on first use; a UserError in one line when it cannot run."""
    problem = library_problem()
    if problem:
        raise UserError(problem)
    import imagecorruptions

    return imagecorruptions


@lru_cache(maxsize=1)
def version() -> str:
    """What made the corrupted images, for record identity: the library's distribution and version
    and those of the packages that compute its pixels, e.g.
    'imagecorruptions-imaug-1.1.5/numba-0.68.1/scikit-image-0.26.0/.../opencv-5.0.0'.
    The UserError of corrupt() when the library cannot run."""
    problem = library_problem()
    if problem:
        raise UserError(problem)
    import cv2

    parts = [f"{DISTRIBUTION}-{_installed_version(DISTRIBUTION)}"]
    parts += [f"{name}-{_installed_version(name) or 'none'}" for name in PIXEL_DEPENDENCIES]
    return "/".join([*parts, f"opencv-{cv2.__version__}"])


def seed_words(seed: int) -> tuple[int, np.ndarray]:
    """From one seed (any non-negative integer, e.g. Condition.image_seed's 63 bits): a 32-bit word
    for the generators seeded by the fork's `seed=` (numba's takes 32 bits at most) and four words
    for numpy's global RandomState, all from SeedSequence so that near seeds give unrelated streams."""
    words = np.random.SeedSequence(seed).generate_state(5, dtype=np.uint32)
    return int(words[0]), words[1:]


def check_arguments(image, name: str, severity: int, seed: int) -> None:
    """A ValueError saying what is wrong with the arguments of corrupt(), if anything."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {got}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"ImageNet-C corruptions need an image of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                         f"got {image.shape[0]}x{image.shape[1]}")
    if name not in IMAGENET_C:
        raise ValueError(f"unknown corruption {name!r} (known: {', '.join(IMAGENET_C)})")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer 1-5, got {severity!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """`image` (HxWx3 uint8 RGB, both sides >= 32) under ImageNet-C corruption `name` at `severity`
    1-5: an HxWx3 uint8 RGB image of the same size, the same bytes for the same arguments in every
    process. numpy's global random state is as it was before the call."""
    check_arguments(image, name, severity, seed)
    library = _library()
    own_seed, global_words = seed_words(int(seed))
    kwargs = {"seed": own_seed} if name in _OWN_GENERATOR else {}
    image = np.ascontiguousarray(image)
    with _LOCK:
        saved = np.random.get_state()
        try:
            np.random.seed(global_words)
            out = library.corrupt(image, severity=int(severity), corruption_name=name, **kwargs)
        finally:
            np.random.set_state(saved)
    out = np.asarray(out)
    if out.shape != image.shape or out.dtype != np.uint8:  # the library promises both; a change would show here
        raise RuntimeError(f"{DISTRIBUTION} returned {out.shape} {out.dtype} for {name} of a {image.shape} image")
    return np.ascontiguousarray(out)
