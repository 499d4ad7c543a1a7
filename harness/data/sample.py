"""A generated sample dataset that ships with the code: `zeg-eval make-sample DIR`.

Seeded scenes of textured stuff regions (sky, tree, grass, road, building, water) crowded with
thing objects (person, car, bird, dog, bottle, sign), most of them small, many overlapping. Every
thing object is drawn as a full (amodal) shape in depth order, so its visible mask, its instance id
and its amodal mask are exact and so is its occlusion ratio. Written in the folder layout of
`harness.data.dataset`:

    DIR/dataset.yaml           classes, things, unseen (water, bird, sign), ignore_index 255
    DIR/images/<stem>.png      RGB, lossless
    DIR/labels/<stem>.png      class ids, 255 on a few "void" patches
    DIR/instances/<stem>.png   uint16 instance ids 1..n in depth order (0 = stuff)
    DIR/amodal/<stem>.npz      ids (n,) and masks (n, H, W): every instance's full shape
    DIR/sample.json            generator version and parameters

Image k depends only on (seed, k): the sample is identical on every machine and any prefix of a
larger sample equals the smaller sample.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from harness.cache import cache_dir
from harness.data.imageio import write_label_png
from harness.errors import UserError

GENERATOR_VERSION = 1
STUFF = ("sky", "tree", "grass", "road", "building", "water")
THINGS = ("person", "car", "bird", "dog", "bottle", "sign")
CLASSES = STUFF + THINGS
UNSEEN = ("water", "bird", "sign")
IGNORE = 255

# Per class: base RGB colour, stripe period (px) and angle (deg), texture amplitude.
_LOOKS = {
    "sky": ((120, 170, 235), 40, 0, 8), "tree": ((40, 110, 45), 5, 60, 30), "grass": ((90, 170, 60), 3, 90, 25),
    "road": ((110, 110, 115), 9, 0, 12), "building": ((170, 120, 90), 12, 90, 35), "water": ((40, 90, 160), 7, 10, 25),
    "person": ((210, 160, 130), 6, 45, 30), "car": ((200, 40, 40), 14, 0, 40), "bird": ((240, 220, 60), 4, 135, 35),
    "dog": ((130, 80, 40), 5, 30, 30), "bottle": ((60, 200, 190), 3, 0, 30), "sign": ((250, 250, 250), 6, 90, 60),
}


@dataclass(frozen=True)
class SampleConfig:
    n_images: int = 40
    height: int = 240
    width: int = 320
    seed: int = 0
    min_objects: int = 15
    max_objects: int = 40


def _stuff_layout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Class ids of the stuff background: a sky band above a wavy horizon, a noisy Voronoi below."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * rng.uniform(0.2, 0.45) + h * 0.05 * np.sin(xx[0] / w * rng.uniform(2, 8) + rng.uniform(0, 6))
    n_seeds = int(rng.integers(3, 7))
    seeds = np.stack([rng.uniform(0, h, n_seeds), rng.uniform(0, w, n_seeds)], axis=1)
    seed_class = rng.choice(np.arange(1, len(STUFF)), size=n_seeds)  # no sky below the horizon
    # Low-frequency noise bends the Voronoi borders.
    noise = cv2.resize(rng.normal(0, 1, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    dist = np.stack([np.hypot(yy - sy, xx - sx) for sy, sx in seeds]) + 15 * noise[None]
    layout = seed_class[np.argmin(dist, axis=0)]
    layout[yy < horizon[None, :]] = 0
    return layout.astype(np.int32)


def _shape_mask(rng: np.random.Generator, cls: str, h: int, w: int, area: float, center) -> np.ndarray:
    """A filled shape of about `area` pixels for a thing class, clipped to the image."""
    mask = np.zeros((h, w), dtype=np.uint8)
    cy, cx = center
    angle = float(rng.uniform(0, 180))
    if cls in ("person", "bottle"):  # tall
        aspect = rng.uniform(2.0, 3.5)
    elif cls in ("car", "dog"):  # wide
        aspect = 1 / rng.uniform(1.5, 2.5)
        angle = float(rng.uniform(-20, 20))
    else:
        aspect = rng.uniform(0.7, 1.4)
    ry = max(1.0, np.sqrt(area * aspect / np.pi))
    rx = max(1.0, area / (np.pi * ry))
    if cls in ("car", "bottle"):
        box = cv2.boxPoints(((cx, cy), (2 * rx, 2 * ry), angle if cls == "car" else 0.0))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif cls == "sign":
        k = int(rng.integers(3, 7))
        t = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, np.pi)
        pts = np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (int(round(rx)), int(round(ry))), angle, 0, 360, 1, -1)
        if cls in ("person", "bird"):  # a head / a wing
            r = max(1, int(round(0.45 * min(rx, ry) + 0.5)))
            hy = cy - ry if cls == "person" else cy
            hx = cx if cls == "person" else cx + rx
            cv2.circle(mask, (int(round(hx)), int(round(hy))), r, 1, -1)
    return mask.astype(bool)


def _texture(rng: np.random.Generator, h: int, w: int, cls: int, jitter: float) -> np.ndarray:
    colour, period, angle, amp = _LOOKS[CLASSES[cls]]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(angle)
    stripes = np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)
    base = np.asarray(colour, dtype=np.float32) * jitter
    return base[None, None, :] + amp * stripes[..., None]


def render_scene(config: SampleConfig, index: int) -> dict:
    """One scene: image (HxWx3 uint8 RGB), labels, instances (uint16), amodal ids and masks."""
    rng = np.random.default_rng([config.seed, index, GENERATOR_VERSION])
    h, w = config.height, config.width
    labels = _stuff_layout(rng, h, w)
    image = np.zeros((h, w, 3), dtype=np.float32)
    for c in np.unique(labels):
        region = labels == c
        image[region] = _texture(rng, h, w, int(c), rng.uniform(0.85, 1.15))[region]
    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    amodal: list[np.ndarray] = []
    classes: list[int] = []
    centers: list[tuple[float, float, float]] = []
    for _ in range(n):
        cls_name = THINGS[int(rng.integers(len(THINGS)))]
        # Log-uniform areas from 12 to 15000 px: most objects are small (< 32² = 1024 px).
        area = float(np.exp(rng.uniform(np.log(12), np.log(15000))))
        if centers and rng.random() < 0.5:  # next to an earlier object: occlusion
            py, px, pr = centers[int(rng.integers(len(centers)))]
            d = pr * rng.uniform(0.3, 1.2)
            t = rng.uniform(0, 2 * np.pi)
            center = (float(np.clip(py + d * np.sin(t), 0, h - 1)), float(np.clip(px + d * np.cos(t), 0, w - 1)))
        else:
            center = (rng.uniform(0, h), rng.uniform(0, w))
        mask = _shape_mask(rng, cls_name, h, w, area, center)
        if not mask.any():
            continue
        amodal.append(mask)
        classes.append(CLASSES.index(cls_name))
        centers.append((center[0], center[1], float(np.sqrt(area / np.pi))))
    # Paint in depth order (later = in front); drop objects that end up fully hidden.
    owner = np.zeros((h, w), dtype=np.int32)
    for k, mask in enumerate(amodal, start=1):
        owner[mask] = k
    keep = [k for k in range(1, len(amodal) + 1) if (owner == k).any()]
    instances = np.zeros((h, w), dtype=np.uint16)
    ids, masks = [], []
    for new_id, k in enumerate(keep, start=1):
        visible = owner == k
        instances[visible] = new_id
        labels[visible] = classes[k - 1]
        tex = _texture(rng, h, w, classes[k - 1], rng.uniform(0.8, 1.2))
        image[visible] = tex[visible]
        ids.append(new_id)
        masks.append(amodal[k - 1])
    # A few unlabelled ("void") patches, as in real datasets; the image stays textured there.
    for _ in range(int(rng.integers(0, 3))):
        y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        labels[y0 : y0 + int(rng.integers(4, 24)), x0 : x0 + int(rng.integers(4, 24))] = IGNORE
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    image = cv2.GaussianBlur(np.clip(image, 0, 255), (3, 3), 0.6)
    return {"image": image.round().astype(np.uint8), "labels": labels.astype(np.uint8), "instances": instances,
            "ids": np.asarray(ids, dtype=np.int32),
            "masks": np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool)}


def _dataset_yaml(config: SampleConfig) -> str:
    import yaml

    return yaml.safe_dump({"name": "zeg-sample", "classes": list(CLASSES), "things": list(THINGS),
                           "unseen": list(UNSEEN), "ignore_index": IGNORE}, sort_keys=False)


def _meta(config: SampleConfig) -> dict:
    return {"generator_version": GENERATOR_VERSION, **asdict(config)}


def is_sample(path: Path, config: SampleConfig) -> bool:
    marker = Path(path) / "sample.json"
    try:
        return json.loads(marker.read_text()) == _meta(config)
    except (OSError, ValueError):
        return False


def make_sample(out: str | Path, config: SampleConfig = SampleConfig()) -> Path:
    """Write the sample into `out` (a new or empty folder; an identical sample there is kept)."""
    out = Path(out)
    if is_sample(out, config):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError("exists and is not an empty folder; give a new folder for the sample", out)
    if config.n_images < 1 or config.height < 32 or config.width < 32:
        raise UserError("the sample needs at least 1 image of at least 32x32 pixels")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a half-written sample is never used.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for sub in ("images", "labels", "instances", "amodal"):
            (tmp / sub).mkdir()
        for k in range(config.n_images):
            scene = render_scene(config, k)
            stem = f"sample_{k:04d}"
            cv2.imwrite(str(tmp / "images" / f"{stem}.png"), cv2.cvtColor(scene["image"], cv2.COLOR_RGB2BGR))
            write_label_png(tmp / "labels" / f"{stem}.png", scene["labels"])
            ok, buf = cv2.imencode(".png", scene["instances"])
            (tmp / "instances" / f"{stem}.png").write_bytes(buf.tobytes())
            np.savez_compressed(tmp / "amodal" / f"{stem}.npz", ids=scene["ids"], masks=scene["masks"])
        (tmp / "dataset.yaml").write_text(_dataset_yaml(config))
        (tmp / "sample.json").write_text(json.dumps(_meta(config), indent=1))
        try:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except OSError:
            if not is_sample(out, config):  # else another process wrote the same sample first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_sample_dir(config: SampleConfig = SampleConfig()) -> Path:
    """Where `data: sample` lives: $ZEG_EVAL_SAMPLE_DIR, else zeg-eval's cache folder (harness.cache)."""
    if os.environ.get("ZEG_EVAL_SAMPLE_DIR"):
        return Path(os.environ["ZEG_EVAL_SAMPLE_DIR"])
    return cache_dir(f"sample-v{GENERATOR_VERSION}-seed{config.seed}-n{config.n_images}")


def ensure_sample(config: SampleConfig = SampleConfig()) -> Path:
    """The default sample, generated on first use."""
    path = default_sample_dir(config)
    if not is_sample(path, config):
        print(f"zeg-eval: generating the sample dataset ({config.n_images} images) in {path}", file=sys.stderr,
              flush=True)
        make_sample(path, config)
    return path
