"""The qualitative gallery: objects where models disagree most, and each model's worst images.

Pixels come from the dataset (images, labels; `harness.data.dataset.load_dataset` of the manifest's
root) and from saved predictions: `RUN/predictions/<model>/<stem>.png` (the runner's
--save-predictions), else `<path>/<stem>.png` of a model scored from a prediction folder; a
ground-truth baseline (oracle, drop_small, ...) is cheap, so its prediction is rebuilt from the
manifest's settings and the ground truth. Whatever is missing is said on the page; the gallery never
fails the report. Photos are inlined as JPEG, label maps as PNG (flat colours: smaller and exact).
"""
from __future__ import annotations

import base64
import colorsys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from harness.data.dataset import load_dataset
from harness.data.imageio import read_label_png, read_rgb
from harness.errors import UserError
from harness.run import runfolder

PANEL = 132          # crop panels are PANEL x PANEL pixels
THUMB_WIDTH = 220    # worst-image panels


@dataclass
class Panel:
    label: str
    png_b64: str | None   # base64 picture; None: not available (the label says why)
    mime: str = "image/png"


@dataclass
class Item:
    title: str
    lines: list = field(default_factory=list)
    panels: list = field(default_factory=list)


@dataclass
class Gallery:
    disagreements: list = field(default_factory=list)
    worst: dict = field(default_factory=dict)          # model label -> [Item]
    notes: list = field(default_factory=list)


def palette(n: int) -> np.ndarray:
    """[n, 3] uint8 RGB, distinct hues (golden-ratio walk), deterministic."""
    out = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65 if i % 2 else 0.9, 0.95 if i % 3 else 0.7)
        out[i] = (int(r * 255), int(g * 255), int(b * 255))
    return out


def colorize(labels: np.ndarray, pal: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels, dtype=np.int64)
    ok = (lab >= 0) & (lab < len(pal))
    rgb = np.zeros(lab.shape + (3,), np.uint8)  # ignore / out of range: black
    rgb[ok] = pal[lab[ok]]
    return rgb


JPEG_QUALITY = 85


def _png(rgb: np.ndarray, jpeg: bool = False) -> str:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = (cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]) if jpeg
               else cv2.imencode(".png", bgr))
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


class Sources:
    """Loads (and caches) the data and predictions of one run's models; remembers what is missing."""

    def __init__(self, run):
        self.run = run
        self.dataset = None
        self.problem = None
        try:
            self.dataset = load_dataset(run.dataset.root)
        except UserError as exc:
            self.problem = f"dataset of run {run.label} not available ({exc})"
        self.pal = palette(run.dataset.num_classes)
        self.predictions_asked = self.predictions_found = 0
        self._baselines: dict = {}   # model name -> predictor (None: cannot be rebuilt)

    def label(self, stem):
        if self.dataset is None:
            return None
        try:
            return self.dataset.load_label(stem)
        except UserError:
            return None

    def image(self, stem):
        if self.dataset is None or self.dataset.images_dir is None:
            return None
        try:
            return read_rgb(self.dataset.image_path(stem))
        except UserError:
            return None

    def prediction_path(self, model, stem) -> Path | None:
        candidates = [runfolder.predictions_dir(model.run.path, model.name) / f"{stem}.png"]
        folder = (model.entry.get("spec") or {}).get("path")
        if model.entry.get("kind", "predictions") == "predictions" and folder:
            candidates.append(Path(folder) / f"{stem}.png")
        return next((p for p in candidates if p.is_file()), None)

    def baseline(self, model):
        """The model's predictor when it is a ground-truth baseline (rebuilt from its manifest
        settings), else None."""
        spec = model.entry.get("spec") if isinstance(model.entry.get("spec"), dict) else {}
        if model.entry.get("kind", spec.get("kind")) != "baseline" or self.dataset is None:
            return None
        if model.name not in self._baselines:
            from harness.models.registry import KINDS  # the models package only where a baseline is drawn

            kind = KINDS["baseline"]
            try:
                parsed = kind.parse({k: v for k, v in spec.items() if k != "kind"}, "manifest", None)
                self._baselines[model.name] = kind.open(parsed, self.dataset, None)
            except (UserError, TypeError, KeyError, ValueError):
                self._baselines[model.name] = None
        return self._baselines[model.name]

    def prediction(self, model, stem):
        self.predictions_asked += 1
        path = self.prediction_path(model, stem)
        if path is None:
            predictor = self.baseline(model)
            gt = self.label(stem) if predictor is not None else None
            if gt is None:
                return None
            try:
                pred = predictor.predict(stem, gt, self.dataset.load_instances(stem, gt.shape))
            except UserError:
                return None
            self.predictions_found += 1
            return np.asarray(pred, dtype=np.int64)
        self.predictions_found += 1
        try:
            return read_label_png(path).astype(np.int64)
        except UserError:
            return None


def _crop_box(x0, y0, x1, y1, h, w, min_side=40, factor=3.0):
    side = int(max(min_side, factor * max(x1 - x0, y1 - y0)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax0 = int(np.clip(round(cx - side / 2), 0, max(w - side, 0)))
    ay0 = int(np.clip(round(cy - side / 2), 0, max(h - side, 0)))
    return ax0, ay0, min(w, ax0 + side), min(h, ay0 + side)


def _panel(rgb, box, obj_box, size=PANEL, jpeg=False) -> str:
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    sy, sx = size / max(crop.shape[0], 1), size / max(crop.shape[1], 1)
    out = cv2.resize(crop, (size, size), interpolation=cv2.INTER_NEAREST)
    if obj_box is not None:
        bx0, by0, bx1, by1 = obj_box
        p0 = (int((bx0 - x0) * sx) - 1, int((by0 - y0) * sy) - 1)
        p1 = (int((bx1 - x0) * sx), int((by1 - y0) * sy))
        out = np.ascontiguousarray(out)
        cv2.rectangle(out, p0, p1, (255, 255, 255), 2)
        cv2.rectangle(out, p0, p1, (0, 0, 0), 1)
    return _png(out, jpeg)


def _thumb(rgb, jpeg=False) -> str:
    h, w = rgb.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / max(w, 1))))
    interp = cv2.INTER_AREA if jpeg else cv2.INTER_NEAREST   # a photo is averaged, a label map never
    return _png(cv2.resize(rgb, size, interpolation=interp), jpeg)


def _panels(src: Sources, models, stem, box=None, obj_box=None) -> list[Panel]:
    gt = src.label(stem)
    image = src.image(stem)
    preds = [src.prediction(m, stem) for m in models]
    shapes = [a.shape[:2] for a in [gt, image, *preds] if a is not None]
    if not shapes:
        return []
    shape = shapes[0]
    if box is None:
        make = _thumb
    else:
        box = _crop_box(*box, *shape)

        def make(rgb, jpeg=False):
            return _panel(rgb, box, obj_box, jpeg=jpeg)

    def panel(label, rgb, jpeg=False):
        ok = rgb is not None and rgb.shape[:2] == shape
        return Panel(label, make(rgb, jpeg) if ok else None, "image/jpeg" if jpeg else "image/png")

    panels = [panel("image", image, jpeg=True), panel("ground truth", None if gt is None else colorize(gt, src.pal))]
    panels += [panel(m.label, None if p is None else colorize(p, src.pal)) for m, p in zip(models, preds)]
    return panels


def joined_objects(entries) -> pd.DataFrame | None:
    """One row per ground-truth object scored by every model (same data): image, object, class,
    area, box and per model `iou::<label>`, `hit::<label>`; an object is kept where every model's
    records have it with the same area (the same object extraction). None without object records."""
    frames = []
    for e in entries:
        obj = e.model.tables["objects"]
        if not len(obj) or not {"object", "iou", "hit", "area"} <= set(obj.columns):
            return None
        frames.append(obj.set_index(["image", "object"]))
    if not frames:
        return None
    keep = ["class", "area", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"] + \
        (["occlusion"] if "occlusion" in frames[0].columns else [])
    base = frames[0][keep].copy()
    for e, f in zip(entries, frames):
        base = base.join(f[["iou", "hit", "area"]].rename(columns={"iou": f"iou::{e.label}", "hit": f"hit::{e.label}",
                                                                    "area": f"area::{e.label}"}), how="inner")
    same = np.ones(len(base), bool)
    for e in entries:
        same &= base[f"area::{e.label}"].to_numpy() == base["area"].to_numpy()
    return base[same].drop(columns=[f"area::{e.label}" for e in entries]).reset_index()


def disagreement_objects(entries, n: int = 8, per_image: int = 2, min_area: int = 0) -> pd.DataFrame:
    """Objects of the same data scored by every model, ranked by disagreement: first objects hit by
    some models and missed by others, then the spread of object IoU; smaller objects first on ties.
    Objects under min_area pixels are skipped (too small to see in a crop)."""
    if len(entries) < 2:
        return pd.DataFrame()
    base = joined_objects(entries)
    if base is None:
        return pd.DataFrame()
    base = base[base["area"].to_numpy() >= min_area]
    if not len(base):
        return pd.DataFrame()
    ious = base[[f"iou::{e.label}" for e in entries]].to_numpy(dtype=np.float64)
    hits = base[[f"hit::{e.label}" for e in entries]].to_numpy(dtype=bool)
    base = base.assign(hit_split=hits.any(axis=1) & ~hits.all(axis=1),
                       spread=np.nanmax(ious, axis=1) - np.nanmin(ious, axis=1))
    base = base.sort_values(["hit_split", "spread", "area"], ascending=[False, False, True], kind="stable")
    base = base[base["spread"] > 0]
    base = base.groupby("image", sort=False).head(per_image)
    return base.head(n).reset_index(drop=True)


def worst_images(pixel: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Per image: mean IoU over the classes present in its ground truth or prediction; the k lowest."""
    if not len(pixel):
        return pd.DataFrame(columns=["image", "image_mIoU"])
    i = pixel["intersect"].to_numpy(dtype=np.float64)
    u = (pixel["pred_area"] + pixel["label_area"]).to_numpy(dtype=np.float64) - i
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(u > 0, i / u, np.nan)
    per = pd.DataFrame({"image": pixel["image"], "iou": iou}).groupby("image")["iou"].mean() * 100
    return per.sort_values(kind="stable").head(k).rename("image_mIoU").reset_index()


def build_gallery(entries, baseline, n_objects: int = 8, n_worst: int = 3, min_area: int = 0) -> Gallery:
    gallery = Gallery()
    if n_objects <= 0 and n_worst <= 0:
        gallery.notes.append("gallery disabled")
        return gallery
    sources: dict[str, Sources] = {}

    def src_of(e):
        if e.model.run.label not in sources:
            sources[e.model.run.label] = Sources(e.model.run)
        return sources[e.model.run.label]

    same = [e for e in entries if e.model.run.dataset_key == baseline.model.run.dataset_key]
    if len(same) >= 2 and n_objects > 0:
        ranked = disagreement_objects(same, n_objects, min_area=min_area)
        src = src_of(baseline)
        classes = baseline.model.run.dataset.classes
        for _, r in ranked.iterrows():
            box = (int(r["bbox_x0"]), int(r["bbox_y0"]), int(r["bbox_x1"]), int(r["bbox_y1"]))
            item = Item(title=f"{classes[int(r['class'])]} in {r['image']} (object {int(r['object'])}, "
                              f"{int(r['area'])} px)")
            for e in same:
                hit = bool(r[f"hit::{e.label}"])
                item.lines.append(f"{e.label}: {'found' if hit else 'missed'}, object IoU "
                                  f"{100 * float(r[f'iou::{e.label}']):.1f}%")
            item.panels = _panels(src, [e.model for e in same], str(r["image"]), box, box)
            gallery.disagreements.append(item)
        if not len(ranked):
            gallery.notes.append("no object on which the models disagree (or no object records)")
    elif n_objects > 0:
        gallery.notes.append("object disagreements need two or more models on the same data")
    if n_worst > 0:
        for e in entries:
            src = src_of(e)
            items = []
            for _, r in worst_images(e.model.tables["pixel"], n_worst).iterrows():
                item = Item(title=f"{r['image']}: image mIoU {r['image_mIoU']:.1f}%")
                item.panels = _panels(src, [e.model], str(r["image"]))
                items.append(item)
            gallery.worst[e.label] = items
    for label, src in sources.items():
        if src.problem:
            gallery.notes.append(src.problem + "; no pictures from it")
    asked = sum(src.predictions_asked for src in sources.values())
    if asked and not sum(src.predictions_found for src in sources.values()):
        gallery.notes.append("no saved predictions found (RUN/predictions/<model>/ from `zeg-eval run "
                             "--save-predictions`, or the prediction folders of the manifest); prediction panels "
                             "are empty")
    return gallery
