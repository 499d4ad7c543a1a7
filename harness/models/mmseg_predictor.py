"""An mmseg 1.x model (config + checkpoint) as a predictor: images in, label maps out.

The only module of the runner that imports torch and mmseg. The model is built from its config
(with the config's test pipeline and its `test_cfg`: whole or slide inference), its checkpoint is
checked key by key (missing / unexpected / shape mismatch, one short line) and loaded strictly,
then batches of images flow through a DataLoader whose workers decode and transform the images
while the model runs. Label maps come back at the image's size (mmseg resizes the logits to
`ori_shape`), on the CPU, as uint8/uint16 arrays.

Images are decoded here (BGR, as mmcv's LoadImageFromFile does), so an image that cannot be
decoded is reported as one line naming the file; the config's LoadImageFromFile and
LoadAnnotations steps are dropped (the ground truth never enters the model's side).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from harness.conditions.spec import CLEAN_CONDITION, Condition
from harness.data.dataset import DatasetSpec
from harness.errors import UserError
from harness.models.base import Runtime
from harness.models.mmseg_spec import MmsegSpec
from harness.models.runtime import autocast, pick_device, resolve_placeholders

_DROPPED_STEPS = {"LoadImageFromFile", "LoadAnnotations", "LoadImageFromNDArray", "LoadBiomedicalAnnotation",
                  "LoadDepthAnnotation"}
_TTA_STEPS = {"TestTimeAug", "MultiScaleFlipAug"}
_SHOW = 3


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def load_config(spec: MmsegSpec, dataset: DatasetSpec | None = None):
    from mmengine.config import Config

    if not spec.config.is_file():
        raise UserError(f"model '{spec.name}': config file does not exist", spec.config)
    try:
        cfg = Config.fromfile(str(spec.config))
        if spec.cfg_options:
            cfg.merge_from_dict(resolve_placeholders(spec.cfg_options, dataset))
    except UserError:
        raise
    except Exception as exc:  # syntax errors, missing _base_ files, failed custom_imports ...
        raise UserError(f"model '{spec.name}': cannot load the config ({_one_line(exc)})", spec.config) from None
    if "model" not in cfg:
        raise UserError(f"model '{spec.name}': the config has no 'model'", spec.config)
    mode = (cfg.model.get("test_cfg") or {}).get("mode", "whole")
    if mode not in ("whole", "slide"):
        raise UserError(f"model '{spec.name}': model.test_cfg.mode must be 'whole' or 'slide', not {mode!r}",
                        spec.config)
    return cfg


def build_model(spec: MmsegSpec, cfg, device: str):
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    cfg.model.pop("pretrained", None)
    cfg.model.train_cfg = None
    try:
        with warnings.catch_warnings():  # mmseg's deprecation notes about losses the test never uses
            warnings.simplefilter("ignore", UserWarning)
            model = MODELS.build(cfg.model)
    except Exception as exc:
        raise UserError(f"model '{spec.name}': cannot build the model ({_one_line(exc)})", spec.config) from None
    model.cfg = cfg
    return model


def _names(items) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f", ... +{len(items) - _SHOW} more" if len(items) > _SHOW else "")


def key_report(model_state: dict, state_dict: dict) -> str | None:
    """One line listing missing, unexpected and shape-mismatched keys; None when they fit exactly."""
    missing = sorted(set(model_state) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(model_state))
    mismatched = sorted(k for k in set(model_state) & set(state_dict)
                        if tuple(model_state[k].shape) != tuple(state_dict[k].shape))
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_names(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_names(unexpected)})")
    if mismatched:
        shown = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(model_state[k].shape)}" for k in mismatched]
        parts.append(f"{len(mismatched)} shape mismatch ({_names(shown)})")
    return "; ".join(parts) or None


def read_state_dict(path: Path, weights_only: bool, name: str) -> dict:
    """The state dict of a checkpoint file; every failure is one line naming the file. With
    `weights_only` (the default) nothing in the file runs: a file that needs more than tensors is
    refused with what it asked for (e.g. posix.system) and how to convert a trusted one."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": a second line on stderr
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=weights_only)
    except Exception as exc:
        raise UserError(f"model '{name}': {_load_failure(path, exc, weights_only)}", path) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"model '{name}': the checkpoint holds no state dict of tensors", path)
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _load_failure(path: Path, exc: BaseException, weights_only: bool) -> str:
    """Why torch.load failed, in words for this tool's user (torch's own message advises passing
    weights_only=False to torch.load, and its wording changes between versions)."""
    from harness.zegclip.checkpoint import describe_load_failure

    problem, refusal = describe_load_failure(path, exc)
    if problem is None:
        return f"cannot read the checkpoint ({_one_line(exc)})"
    if refusal and weights_only:
        return (f"{problem}. It is not a plain state dict; if you trust the file, set 'weights_only: false' for "
                "this model, or convert it once with harness.zegclip.checkpoint.convert_checkpoint(src, dst, "
                "trusted=True)")
    return f"cannot read the checkpoint: {problem}"


def load_weights(spec: MmsegSpec, model) -> None:
    """Strict loading: any missing, unexpected or misshapen key is an error (one line)."""
    from mmengine.runner.checkpoint import load_state_dict

    state_dict = read_state_dict(spec.checkpoint, spec.weights_only, spec.name)
    report = key_report(model.state_dict(), state_dict)
    if report:
        raise UserError(f"model '{spec.name}': the checkpoint does not fit the model: {report}", spec.checkpoint)
    load_state_dict(model, state_dict, strict=True)


def _test_pipeline(cfg, spec: MmsegSpec) -> list:
    pipeline = cfg.get("test_pipeline")
    if pipeline is None and cfg.get("test_dataloader") is not None:
        pipeline = cfg.test_dataloader.get("dataset", {}).get("pipeline")
    if pipeline is None:
        pipeline = [dict(type="PackSegInputs")]
    steps = []
    for step in pipeline:
        kind = step.get("type") if isinstance(step, dict) else None
        if kind in _TTA_STEPS:
            raise UserError(f"model '{spec.name}': test-time augmentation ({kind}) is not supported; "
                            "give a plain test_pipeline", spec.config)
        if kind not in _DROPPED_STEPS:
            steps.append(step)
    return steps


class ImageDataset(torch.utils.data.Dataset):
    """The images of the pending stems through the config's test pipeline (in DataLoader workers)."""

    def __init__(self, dataset: DatasetSpec, stems: list[str], pipeline: list, to_float32: bool = False,
                 condition: Condition = CLEAN_CONDITION):
        self.dataset = dataset
        self.stems = stems
        self.pipeline_cfg = pipeline
        self.to_float32 = to_float32
        self.condition = condition
        self._pipeline = None

    def __len__(self):
        return len(self.stems)

    def __getitem__(self, index):
        import cv2
        from mmengine.dataset import Compose

        if self._pipeline is None:
            self._pipeline = Compose(self.pipeline_cfg)
        stem = self.stems[index]
        try:
            path = self.dataset.image_path(stem)
        except UserError as exc:
            return {"stem": stem, "error": str(exc)}
        data = np.fromfile(path, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if img is None:
            return {"stem": stem, "error": f"{path}: cannot decode image (corrupt or unsupported format)"}
        label_shape = img.shape[:2]
        if not self.condition.is_clean:
            # conditions work on RGB (as the corruption code expects); the model's pipeline gets BGR as
            # mmcv's loader gives it
            try:
                img = cv2.cvtColor(self.condition.apply(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), stem), cv2.COLOR_RGB2BGR)
            except (UserError, ValueError) as exc:
                return {"stem": stem, "error": f"{path}: condition '{self.condition.name}': {exc}"}
        if self.to_float32:
            img = img.astype(np.float32)
        # ori_shape is the label's: mmseg resizes the scores (bilinear) to it, so a prediction made from a
        # downscaled image (resolution-<f>) comes back at label resolution
        results = {"img": img, "img_path": str(path), "img_shape": img.shape[:2], "ori_shape": label_shape,
                   "reduce_zero_label": self.dataset.reduce_zero_label, "seg_fields": []}
        packed = self._pipeline(results)
        packed["stem"] = stem
        return packed


def _collate(batch):
    return batch  # a list of dicts; errors are checked before mmengine's pseudo_collate


def prepare(spec: MmsegSpec, dataset: DatasetSpec, device: str, weights=load_weights):
    """Config -> model on `device`, weights loaded and checked, in eval mode; the test pipeline."""
    cfg = load_config(spec, dataset)
    model = build_model(spec, cfg, device)
    names = getattr(model, "class_names", None)  # open-vocabulary models (ZegCLIP) name their classes
    num_classes = len(names) if isinstance(names, (list, tuple)) else \
        getattr(getattr(model, "decode_head", None), "num_classes", None)
    if isinstance(num_classes, int) and num_classes != dataset.num_classes:
        raise UserError(f"model '{spec.name}' predicts {num_classes} classes but the dataset has "
                        f"{dataset.num_classes}; pick the matching dataset or set cfg_options "
                        f"{{model.decode_head.num_classes: {dataset.num_classes}}}", spec.config)
    weights(spec, model)
    model.to(device).eval()
    pipeline = _test_pipeline(cfg, spec)
    load_step = next((s for s in cfg.get("test_pipeline") or [] if s.get("type") == "LoadImageFromFile"), {})
    return model, pipeline, bool(load_step.get("to_float32", False))


def predict_stream(spec: MmsegSpec, dataset: DatasetSpec, stems: list[str], runtime: Runtime,
                   weights=load_weights, condition: Condition = CLEAN_CONDITION):
    """Yield (stem, label map) for `stems` in order, each image under `condition`. The model is
    built on the first next(); `weights(spec, model)` loads the checkpoint (the kind's loader)."""
    device = pick_device(runtime.device)
    cpus = len(os.sched_getaffinity(0))
    threads = torch.get_num_threads()
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # Half the cores for the model, half for image decoding and metrics: with every core given to
        # torch, its threads spin-wait for each other whenever a metric worker takes a core.
        torch.set_num_threads(max(1, cpus // 2))
    try:
        yield from _predict(spec, dataset, stems, runtime, device, cpus, weights, condition)
    finally:
        torch.set_num_threads(threads)  # the caller's process is left as it was


def _predict(spec, dataset, stems, runtime: Runtime, device, cpus, weights, condition):
    from mmengine.dataset import pseudo_collate

    model, pipeline, to_float32 = prepare(spec, dataset, device, weights)
    precision = runtime.precision or spec.precision
    batch_size = runtime.batch_size or spec.batch_size
    workers = runtime.loader_workers
    if workers is None:
        workers = max(1, min(4, cpus // 2))
    condition.warm_up()  # the corruption library imported (and compiled) once, before the workers fork
    loader = torch.utils.data.DataLoader(
        ImageDataset(dataset, stems, pipeline, to_float32, condition), batch_size=batch_size, shuffle=False,
        num_workers=workers, collate_fn=_collate, pin_memory=device.startswith("cuda"),
        persistent_workers=False, prefetch_factor=2 if workers > 0 else None)
    with torch.inference_mode(), autocast(device, precision, spec.name):
        for batch in loader:
            for item in batch:
                if "error" in item:
                    raise UserError(item["error"])
            try:
                samples = model.test_step(pseudo_collate(batch))
            except torch.OutOfMemoryError:
                raise UserError(f"model '{spec.name}': out of memory on {device} with batch_size {batch_size}; "
                                "use a smaller --batch-size (or the config's window batch)", spec.config) from None
            except Exception as exc:  # noqa: BLE001 - a config the model cannot run (e.g. a bad test_cfg)
                raise UserError(f"model '{spec.name}' failed on image '{batch[0]['stem']}' ({_one_line(exc)}); check "
                                "the config and cfg_options", spec.config) from None
            for item, sample in zip(batch, samples):
                pred = sample.pred_sem_seg.data
                pred = pred[0] if pred.ndim == 3 else pred
                pred = pred.to("cpu", non_blocking=False).numpy()
                yield item["stem"], pred.astype(np.uint8 if pred.max(initial=0) < 256 else np.uint16)
