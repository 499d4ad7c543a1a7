"""The image transforms behind the conditions: the plain knobs (input resolution, JPEG quality,
Gaussian blur, Gaussian noise) here with OpenCV and numpy; ImageNet-C's corruptions in
harness.conditions.corruptions. Every transform maps (HxWx3 uint8 RGB, level, seed) to an HxWx3
uint8 RGB image and is deterministic in its arguments."""
from __future__ import annotations

import cv2
import numpy as np

from harness.conditions.corruptions import IMAGENET_C

# Increment when a knob's output changes for the same arguments (record identity: harness.run.identity).
KNOBS_VERSION = 1


def transform_version(transform: str) -> str:
    """What made this transform's images: the knobs' version, or the corruption library's."""
    if transform in IMAGENET_C:
        from harness.conditions.corruptions import version

        return version()
    return f"zeg-eval-knobs-{KNOBS_VERSION}/opencv-{cv2.__version__}"


def apply_transform(image: np.ndarray, transform: str, level, seed: int) -> np.ndarray:
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    if transform in IMAGENET_C:
        from harness.conditions.corruptions import corrupt

        return corrupt(image, transform, int(level), seed)
    if transform == "resolution":
        return downscale(image, float(level))
    if transform == "jpeg":
        return jpeg(image, int(level))
    if transform == "blur":
        return gaussian_blur(image, float(level))
    if transform == "noise":
        return gaussian_noise(image, float(level), seed)
    raise ValueError(f"unknown transform {transform!r}")


def downscaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(h, w) of an image downscaled by `factor`, at least 1 px each."""
    return max(1, round(height * factor)), max(1, round(width * factor))


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Area-averaged downscaling (cv2.INTER_AREA: each output pixel the mean of the input pixels it
    covers, the anti-aliased resize a camera of lower resolution approximates)."""
    if factor == 1:
        return image
    h, w = downscaled_size(*image.shape[:2], factor)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encoded and decoded as JPEG at `quality` (libjpeg through OpenCV, 4:2:0 chroma subsampling)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` px (kernel to ±3 sigma, borders reflected)."""
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def gaussian_noise(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Additive zero-mean Gaussian noise of standard deviation `sigma` grey levels, per pixel and
    channel, rounded and clipped to 0-255 (numpy's PCG64 seeded with `seed`; float32, in place: half
    the time of float64 on a 512x512 image, and 8-bit output needs no more precision)."""
    noisy = np.random.default_rng(seed).standard_normal(image.shape, dtype=np.float32)
    noisy *= sigma
    noisy += image
    np.rint(noisy, out=noisy)
    np.clip(noisy, 0, 255, out=noisy)
    return noisy.astype(np.uint8)


def restore_size(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label map made at another resolution brought to `shape` (nearest neighbour: ids are not
    averaged). Models that have scores bring those back instead (bilinear, then argmax)."""
    if labels.shape[:2] == tuple(shape):
        return labels
    return cv2.resize(labels, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
