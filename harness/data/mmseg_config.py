"""Datasets given as mmseg 1.x configs: `--data configs/my_dataset.py` (or any config with a
`test_dataloader`), so a user points zeg-eval at data already set up for mmseg.

The dataset class is looked up in mmseg's registry: its METAINFO gives the class names and its
constructor defaults give the suffixes and `reduce_zero_label`, overridden by the config. The
zero-shot split and the things list come from the preset with the same class list, if any.
Imports mmseg (and so torch/mmcv); only used when such a config is given.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from harness import extras
from harness.data.dataset import DatasetSpec, presets
from harness.errors import UserError


def dataset_from_mmseg_config(path: str | Path) -> DatasetSpec:
    path = Path(path)
    extras.require("mmseg", "an mmseg dataset config", path)  # not in the plain install
    from mmengine.config import Config

    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises several types for a broken config
        raise UserError(f"cannot read mmseg config ({type(exc).__name__}: {exc})", path) from None
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if not loader or "dataset" not in loader:
        raise UserError("no test_dataloader.dataset (or val_dataloader.dataset) in the config", path)
    ds = loader["dataset"]
    import mmseg.datasets  # noqa: F401  (fills the registry)
    from mmseg.registry import DATASETS

    cls = DATASETS.get(ds.get("type", ""))
    if cls is None:
        raise UserError(f"unknown mmseg dataset type '{ds.get('type')}'", path)
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    value = lambda key: ds.get(key, defaults.get(key))  # noqa: E731
    classes = tuple((ds.get("metainfo") or {}).get("classes") or cls.METAINFO["classes"])
    root = Path(ds.get("data_root") or ".")
    prefix = ds.get("data_prefix") or {}
    ann_file = ds.get("ann_file") or ""
    preset = next((p for p in presets().values() if tuple(p["classes"]) == classes), {})
    return DatasetSpec(
        root=root,
        name=str(ds.get("type")),
        classes=classes,
        ignore_index=int(value("ignore_index") or 255),
        unseen=tuple(preset.get("unseen") or ()),
        things=tuple(preset["things"]) if preset.get("things") else None,
        reduce_zero_label=bool(value("reduce_zero_label")),
        labels_dir=root / prefix.get("seg_map_path", ""),
        images_dir=root / prefix.get("img_path", ""),
        label_suffix=str(value("seg_map_suffix") or ".png"),
        split_file=(root / ann_file) if ann_file else None,
    )
