"""An mmseg 1.x model: config + checkpoint, run in this process on a device (harness.models.mmseg_predictor
does the work and is the only module importing torch and mmseg).

    models:
      - name: segformer_ade
        config: configs/my_segformer.py
        checkpoint: ${SEGFORMER_CKPT:-checkpoints/segformer.pth}
        loader: mmseg                # mmseg (default: strict key check) | zegclip (harness.models.zegclip_model)
        precision: fp16              # fp32 (default) | fp16 | bf16, autocast on GPU only
        batch_size: 1
        weights_only: true           # false: unpickle a trusted old checkpoint (torch >= 2.6)
        cfg_options: {model.decode_head.num_classes: 171}   # mmengine-style overrides; a value
                                     # "${dataset.classes}" / num_classes / seen_ids / unseen_ids /
                                     # ignore_index is the dataset's (open-vocabulary models)

A config and a protocol are code and data to trust like a script: mmengine executes a config's
Python and its custom_imports.
"""
from __future__ import annotations

import ast
from pathlib import Path

from harness import extras
from harness.conditions.spec import CLEAN_CONDITION
from harness.errors import SkipModel, UserError
from harness.files import digest_files, sha256_file
from harness.models.base import (
    ModelKind,
    Predictor,
    Runtime,
    check_allowed,
    check_name,
    check_type,
    expand_vars,
    resolve_path,
)
from harness.models.mmseg_spec import MmsegSpec
from harness.models.runtime import PRECISIONS, effective_precision

LOADERS = ("mmseg", "zegclip")
ALLOWED = {"name", "config", "checkpoint", "loader", "precision", "batch_size", "weights_only", "cfg_options"}


def config_files(config: Path) -> list[Path]:
    """The config file and every `_base_` file it names, recursively (what determines the config)."""
    out, todo = [], [Path(config)]
    while todo:
        path = todo.pop()
        if path in out or not path.is_file():
            continue
        out.append(path)
        try:
            tree = ast.parse(path.read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue  # mmengine reports it when the model is built
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for base in [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []:
                    if isinstance(base, str):
                        todo.append((path.parent / base).resolve())
    return out


class MmsegPredictor(Predictor):
    """Batches of images through the model on a device, in this process."""

    in_workers = False
    reads_images = True

    def __init__(self, spec: MmsegSpec, dataset, runtime: Runtime, weights=None, condition=CLEAN_CONDITION):
        self.spec, self.dataset, self.runtime, self.weights = spec, dataset, runtime, weights
        self.condition = condition
        self._info: dict = {}

    def stream(self, stems):
        from harness.models import mmseg_predictor
        from harness.models.runtime import pick_device

        device = pick_device(self.runtime.device)
        precision = self.runtime.precision or self.spec.precision
        self._info = {"device": device, "precision": effective_precision(device, precision)}
        weights = self.weights or mmseg_predictor.load_weights
        yield from mmseg_predictor.predict_stream(self.spec, self.dataset, stems, self.runtime, weights,
                                                  condition=self.condition)

    def input_path(self, stem: str) -> Path:
        return self.dataset.image_path(stem)

    def under(self, condition) -> Predictor:
        """The condition is applied to each image before the model's own pipeline (in the DataLoader's
        workers); a condition without a transform is only a prediction folder's."""
        condition.check_available(f"model '{self.spec.name}'")
        if condition.is_clean:
            return self
        return MmsegPredictor(self.spec, self.dataset, self.runtime, self.weights, condition)

    def run_info(self) -> dict:
        return dict(self._info)


class MmsegKind(ModelKind):
    name = "mmseg"
    key = "config"
    loader = "mmseg"

    def matches(self, entry: dict) -> bool:
        return "config" in entry and entry.get("loader", "mmseg") == self.loader

    def parse(self, entry: dict, where: str, protocol_path) -> MmsegSpec:
        path = protocol_path
        base = protocol_path.parent if protocol_path is not None else None
        check_allowed(entry, ALLOWED, "config", where, path)
        name = entry.get("name")
        check_name(name, where, path)
        where = f"{where} ({name})"
        check_type(entry, "config", str, where, path, "a config file path")
        ckpt_text = entry.get("checkpoint")
        if ckpt_text is not None:
            check_type(entry, "checkpoint", str, where, path, "a file path")
        checkpoint = resolve_path(ckpt_text, base) if ckpt_text and expand_vars(ckpt_text) else None
        loader = entry.get("loader", "mmseg")
        if loader not in LOADERS:
            raise UserError(f"{where}: 'loader' must be one of {', '.join(LOADERS)}", path)
        precision = entry.get("precision", "fp32")
        if precision not in PRECISIONS:
            raise UserError(f"{where}: 'precision' must be one of {', '.join(PRECISIONS)}", path)
        batch_size = entry.get("batch_size", 1)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise UserError(f"{where}: 'batch_size' must be a positive integer", path)
        weights_only = entry.get("weights_only", True)
        if not isinstance(weights_only, bool):
            raise UserError(f"{where}: 'weights_only' must be true or false", path)
        cfg_options = entry.get("cfg_options") or {}
        if not isinstance(cfg_options, dict) or not all(isinstance(k, str) for k in cfg_options):
            raise UserError(f"{where}: 'cfg_options' must be a mapping of dotted keys to values", path)
        return MmsegSpec(name=name, config=resolve_path(entry["config"], base), checkpoint=checkpoint,
                         checkpoint_text=ckpt_text or "", loader=loader, precision=precision, batch_size=batch_size,
                         weights_only=weights_only, cfg_options=dict(cfg_options))

    def check(self, spec: MmsegSpec) -> None:
        if not spec.config.is_file():
            raise UserError(f"model '{spec.name}': config file does not exist", spec.config)

    def describe(self, spec: MmsegSpec) -> dict:
        out = super().describe(spec)
        out["kind"] = spec.kind
        out["config"] = str(spec.config.resolve())
        out["checkpoint"] = None if spec.checkpoint is None else str(spec.checkpoint.resolve())
        return out

    def identity(self, spec: MmsegSpec) -> dict:
        """Settings and digests; not paths (a moved checkpoint resumes) nor batch size."""
        return {"kind": spec.kind, "loader": spec.loader, "precision": spec.precision,
                "weights_only": spec.weights_only, "cfg_options": spec.cfg_options,
                "config_digest": digest_files(*config_files(spec.config)),
                "checkpoint_sha256": sha256_file(spec.checkpoint)}

    def open(self, spec: MmsegSpec, dataset, runtime: Runtime) -> Predictor:
        self.check(spec)
        missing = extras.missing_message("mmseg")  # a plain install runs the other models
        if missing:
            raise SkipModel(missing)
        if spec.checkpoint is None:
            raise SkipModel(f"no checkpoint (checkpoint: '{spec.checkpoint_text}' is empty"
                            + (" or its variable is unset)" if "$" in spec.checkpoint_text else ")"))
        if not spec.checkpoint.is_file():
            hint = f" (set it with: {spec.checkpoint_text})" if "$" in spec.checkpoint_text else ""
            raise SkipModel(f"checkpoint not found: {spec.checkpoint}{hint}")
        return MmsegPredictor(spec, dataset, runtime, self.weights_loader())

    def weights_loader(self):
        return None  # mmseg_predictor.load_weights: strict key check
