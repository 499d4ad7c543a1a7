"""Datasets given as mmseg configs resolve to the files and conventions mmseg's own dataset uses."""

import pytest

from harness.data.mmseg_config import dataset_from_mmseg_config as load_dataset

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


def _write_config(path, dataset_type, root, img, seg, **extra):
    fields = "".join(f", {k}={v!r}" for k, v in extra.items())
    path.write_text(
        f"test_dataloader = dict(dataset=dict(type={dataset_type!r}, data_root={str(root)!r}, "
        f"data_prefix=dict(img_path={img!r}, seg_map_path={seg!r}), pipeline=[]{fields}))\n")
    return path


def _mmseg_files(config):
    import mmseg.datasets  # noqa: F401
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    cfg = Config.fromfile(str(config))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return dataset, sorted((d["img_path"], d["seg_map_path"]) for d in infos)


def test_ade20k_config_matches_mmseg_dataset(realdata, tmp_path):
    config = _write_config(tmp_path / "ade.py", "ADE20KDataset", realdata / "ade20k_val_3", "images", "annotations")
    ours = load_dataset(config)
    mmseg_dataset, files = _mmseg_files(config)
    assert ours.classes == tuple(mmseg_dataset.METAINFO["classes"])
    assert ours.reduce_zero_label is True and mmseg_dataset.reduce_zero_label is True
    assert [(str(ours.image_path(s)), str(ours.label_path(s))) for s in ours.stems()] == files
    assert ours.unseen == ()  # no zero-shot split for ADE20K


def test_coco_stuff_config_takes_zegclip_split_from_the_preset(realdata, tmp_path):
    root = realdata / "coco_stuff_val2017_10"
    config = _write_config(tmp_path / "coco.py", "COCOStuffDataset", root, "images", "labels171",
                           seg_map_suffix=".png")
    ours = load_dataset(config)
    _, files = _mmseg_files(config)
    assert [(str(ours.image_path(s)), str(ours.label_path(s))) for s in ours.stems()] == files
    assert ours.num_classes == 171 and len(ours.unseen) == 15 and len(ours.things) == 80
    assert "giraffe" in ours.unseen
    label = ours.load_label(ours.stems()[0])
    assert label.dtype.kind in "iu" and label[label != 255].max() < 171
