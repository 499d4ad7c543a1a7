"""Configs and shipped data of the ZegCLIP port: vocabularies, splits, text-embedding files,
the checkpoint manifest and the attribution."""
import hashlib
import json
import os
import re
from pathlib import Path

import mmengine  # noqa: F401,E402
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs/zegclip'
THIRD = ROOT / 'third_party/zegclip'
FACTS = Path(os.environ.get('ZEGCLIP_FACTS_DIR', ROOT / 'third_party/zegclip/parity'))
SHARED = Path('/work/shared/zegclip')  # the project's facts folder, where available

# (dataset, setting) -> (config, classes, head classes, prompt tokens, embedding file or None)
EXPECTED = {
    ('coco-stuff171', 'inductive'): (171, 156, 100, 'text_embedding_coco_multi.npy'),
    ('coco-stuff171', 'transductive'): (171, 156, 100, 'text_embedding_coco_multi.npy'),
    ('coco-stuff171', 'fully'): (171, 171, 100, 'text_embedding_coco_multi.npy'),
    ('voc12-20', 'inductive'): (20, 15, 10, 'text_embedding_voc12_single.npy'),
    ('voc12-20', 'transductive'): (20, 15, 10, 'text_embedding_voc12_single.npy'),
    ('voc12-20', 'fully'): (20, 20, 10, 'text_embedding_voc12_single.npy'),
    ('context59', 'inductive'): (59, 49, 100, None),
}
NPY_SHA256 = {  # the upstream files as shipped
    'text_embedding_coco_multi.npy': '49190f380a10e8b0df5c006b7f0a9d14aedba5ae7382d43a606d7fb8b39e7798',
    'text_embedding_coco_single.npy': 'dd32beda49a5573e17533f1cab656d748d4a17b0cef8fc42a875bbae91efb2f2',
    'text_embedding_voc12_single.npy': '72d3642e34bc3031fefa2fe31a43ee84b52ebb5f97b85d380f7b0d777b253ea7',
}
README = {  # FACTS §5: (pAcc, mIoU(S), mIoU(U), hIoU)
    ('voc12-20', 'inductive'): (94.6, 91.9, 77.8, 84.3),
    ('voc12-20', 'transductive'): (96.2, 92.3, 89.9, 91.1),
    ('voc12-20', 'fully'): (96.3, 92.4, 90.9, 91.6),
    ('coco-stuff171', 'inductive'): (62.0, 40.2, 41.1, 40.8),
    ('coco-stuff171', 'transductive'): (69.2, 40.7, 59.9, 48.5),
    ('coco-stuff171', 'fully'): (69.9, 40.7, 63.2, 49.6),
}


def _config(dataset, setting):
    from mmengine.config import Config
    return Config.fromfile(str(CONFIGS / f'zegclip_vitb16_512x512_{dataset}_{setting}.py'))


def _splits():
    return yaml.safe_load((THIRD / 'splits.yaml').read_text())


@pytest.mark.parametrize('dataset,setting', sorted(EXPECTED))
def test_config(dataset, setting):
    n_classes, head_classes, n_tokens, npy = EXPECTED[(dataset, setting)]
    cfg = _config(dataset, setting)
    assert cfg.custom_imports == dict(imports=['harness.zegclip'], allow_failed_imports=False)
    m = cfg.model
    assert m.type == 'ZegCLIP' and m.setting == setting
    assert len(m.class_names) == n_classes and len(set(m.class_names)) == n_classes
    assert m.decode_head.num_classes == head_classes
    assert m.backbone.num_tokens == n_tokens
    assert (m.backbone.width, m.backbone.layers, m.backbone.patch_size, m.backbone.input_resolution) \
        == (768, 12, 16, 512)
    assert m.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(426, 426))
    dp = m.data_preprocessor
    assert dp.mean == [123.675, 116.28, 103.53] and dp.std == [58.395, 57.12, 57.375] and dp.bgr_to_rgb
    assert [t['type'] for t in cfg.test_pipeline] == ['LoadImageFromFile', 'Resize', 'LoadAnnotations',
                                                      'PackSegInputs']
    assert cfg.test_pipeline[1]['scale'] == (2048, 512) and cfg.test_pipeline[1]['keep_ratio']
    assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
    split = _splits()[dataset]
    assert m.unseen_idx == split['unseen']
    assert m.seen_idx == [i for i in range(n_classes) if i not in split['unseen']]
    assert [m.class_names[i] for i in split['unseen']] == split['unseen_names']
    if npy is None:
        assert m.text_embedding is None and m.templates == 'multi'
    else:
        assert m.text_embedding == f'third_party/zegclip/{npy}'
        assert np.load(THIRD / npy).shape == (n_classes, 512)


def test_context_config_is_marked_not_upstream():
    text = (CONFIGS / 'zegclip_vitb16_512x512_context59_inductive.py').read_text()
    assert 'NOT FROM UPSTREAM' in text
    assert 'NOT from upstream' in _splits()['context59']['source']


def test_splits_file():
    splits = _splits()
    assert set(splits) == {'coco-stuff171', 'voc12-20', 'context59'}
    for name, split in splits.items():
        assert split['source']
        assert len(split['unseen']) == len(split['unseen_names']) == len(set(split['unseen']))
        assert all(0 <= i < split['num_classes'] for i in split['unseen'])
    assert len(splits['coco-stuff171']['unseen']) == 15
    assert splits['voc12-20']['unseen'] == [15, 16, 17, 18, 19]


@pytest.mark.parametrize('name', sorted(NPY_SHA256))
def test_text_embedding_files(name):
    path = THIRD / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == NPY_SHA256[name]
    array = np.load(path)
    assert array.dtype == np.float16 and array.shape[1] == 512
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    assert np.abs(norms - 1).max() < 2e-3  # unit rows, stored in float16
    shared = SHARED / name
    if shared.is_file():
        assert shared.read_bytes() == path.read_bytes()


@pytest.mark.parametrize('name', ['state_dict_vitb_coco_inductive.json', 'reference_outputs.json'])
def test_parity_files_are_the_shared_facts(name):
    ours = ROOT / 'third_party/zegclip/parity' / name
    assert json.loads(ours.read_text())
    if (SHARED / name).is_file():
        assert ours.read_bytes() == (SHARED / name).read_bytes()


def test_coco_multi_is_the_reference_text_matrix():
    ref = FACTS / 'reference_outputs.json'
    info = json.loads(ref.read_text())['text_embedding_file']
    array = np.load(THIRD / 'text_embedding_coco_multi.npy')
    assert hashlib.sha256(array.tobytes()).hexdigest() == info['sha256']
    assert abs(float(array.astype(np.float64).sum()) - info['sum']) < 1e-9


def _hiou(s, u):
    return 2 * s * u / (s + u)


def test_checkpoint_manifest():
    manifest = yaml.safe_load((THIRD / 'checkpoints.yaml').read_text())
    entries = manifest['checkpoints']
    assert len(entries) == 6
    assert {(e['dataset'], e['setting']) for e in entries} == set(README)
    for e in entries:
        assert (ROOT / e['config']).is_file(), e['config']
        assert e['config'].endswith(f"{e['dataset']}_{e['setting']}.py")
        exp = e['expected']
        assert (exp['pAcc'], exp['mIoU_seen'], exp['mIoU_unseen'], exp['hIoU']) == README[(e['dataset'], e['setting'])]
        # Hashes are recorded when a file is first seen, never invented.
        assert e['sha256'] is None or re.fullmatch(r'[0-9a-f]{64}', e['sha256'])
        # hIoU = 2SU/(S+U) is increasing in S and U: with S, U, hIoU rounded to 0.1 the README
        # value must lie within the range reachable by the unrounded S, U.
        s, u = exp['mIoU_seen'], exp['mIoU_unseen']
        low = _hiou(s - 0.05, u - 0.05)
        high = _hiou(s + 0.05, u + 0.05)
        consistent = low - 0.05 <= exp['hIoU'] <= high + 0.05
        assert consistent or 'typo' in e.get('note', ''), e['id']


def test_coco_inductive_is_the_only_inconsistent_readme_row():
    bad = [k for k, (_, s, u, h) in README.items()
           if not _hiou(s - 0.05, u - 0.05) - 0.05 <= h <= _hiou(s + 0.05, u + 0.05) + 0.05]
    assert bad == [('coco-stuff171', 'inductive')]
    assert round(_hiou(40.2, 41.4), 1) == 40.8  # the paper's mIoU(U) fits


def test_attribution():
    text = (THIRD / 'ATTRIBUTION.md').read_text()
    assert '9ba4bb5' in text and 'MIT License' in text and 'ZiqinZhou66' in text
    for name in NPY_SHA256:
        assert name in text
    licence = SHARED / 'UPSTREAM_LICENSE.txt'
    if licence.is_file():
        assert licence.read_text().strip() in text


def test_voc20_dataset_config_reduces_background(tmp_path):
    """The VOC config's dataset (20 classes, no background) on a two-image fake VOC tree."""
    import cv2
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import harness.zegclip  # noqa: F401
    init_default_scope('mmseg')
    root = tmp_path / 'VOC2012'
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True)
    label = np.zeros((20, 30), np.uint8)
    label[:, 10:] = 15  # person in VOC's 21-class ids
    label[:, 20:] = 255
    for name in ('a', 'b'):
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), np.full((20, 30, 3), 128, np.uint8))
        cv2.imwrite(str(root / 'SegmentationClass' / f'{name}.png'), label)
    (root / 'ImageSets/Segmentation/val.txt').write_text('a\nb\n')
    cfg = _config('voc12-20', 'inductive')
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = str(root)
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == 2 and len(ds.metainfo['classes']) == 20
    sample = ds[0]
    gt = sample['data_samples'].gt_sem_seg.data[0].numpy()
    assert set(np.unique(gt[:, :10])) == {255}  # background -> ignore
    assert set(np.unique(gt[:, 10:20])) == {14}  # person: 15 -> 14 = class_names.index('person')
    assert cfg.model.class_names[14] == 'person'
    assert tuple(sample['inputs'].shape[1:]) == (512, 768)  # short side 512
