"""Checkpoint loading: mmcv-1.x files through weights_only, strict reports, bad files."""
import hashlib
from pathlib import Path

import mmseg.models  # noqa: F401,E402  (a hard dependency)
import numpy as np
import pytest
import torch

import harness.zegclip  # noqa: F401,E402
from harness.errors import UserError  # noqa: E402
from harness.zegclip.checkpoint import (  # noqa: E402
    CheckpointError,
    compare_state_dict,
    convert_checkpoint,
    load_zegclip_checkpoint,
    read_checkpoint,
    sha256_file,
)

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / 'configs/zegclip/tiny_test.py'
CLASSES = ('cat', 'dog', 'grass', 'sky', 'road', 'tree')


def _build(**overrides):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(TINY))
    cfg.model.update(overrides)
    return MODELS.build(cfg.model).eval()


@pytest.fixture(scope='module')
def source():
    torch.manual_seed(1)
    return _build()


@pytest.fixture
def target():
    torch.manual_seed(2)
    return _build()


def _mmcv1_file(path, state_dict, meta_extra=None):
    meta = {'mmseg_version': '0.24.0', 'config': "model = dict(type='ZegCLIP')",
            'CLASSES': CLASSES, 'PALETTE': [[i, i, i] for i in range(6)], 'iter': 8000,
            'mmcv_version': '1.4.4', 'time': 'Mon Jan  2 10:00:00 2023'}
    meta.update(meta_extra or {})
    torch.save({'meta': meta, 'state_dict': state_dict,
                'optimizer': {'state': {0: {'step': torch.tensor(3.0)}},
                              'param_groups': [{'lr': 2e-5, 'weight_decay': 0.01, 'params': [0]}]}},
               path)
    return path


def _assert_one_line(exc, path):
    msg = str(exc)
    assert '\n' not in msg
    assert msg.startswith(str(path))
    assert isinstance(exc, ValueError) and isinstance(exc, UserError)
    return msg


def test_mmcv1_checkpoint_loads_weights_only_and_strict(source, target, tmp_path):
    path = _mmcv1_file(tmp_path / 'ok.pth', source.state_dict())
    report = load_zegclip_checkpoint(target, path)
    assert report.ok and report.summary() == 'all keys and shapes match'
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    assert target.dataset_meta['classes'] == CLASSES
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_model_loads_mmcv1_checkpoint(source, tmp_path):
    from mmseg.apis import init_model
    path = _mmcv1_file(tmp_path / 'ok.pth', source.state_dict())
    model = init_model(str(TINY), str(path), device='cpu',
                       cfg_options={'model.text_embedding_cache_dir': str(tmp_path / 'cache')})
    assert torch.equal(model.state_dict()['decode_head.q_proj.weight'],
                       source.state_dict()['decode_head.q_proj.weight'])
    assert tuple(model.dataset_meta['classes']) == CLASSES


def test_plain_state_dict_and_module_prefix(source, target, tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'module.' + k: v for k, v in source.state_dict().items()}, path)
    assert load_zegclip_checkpoint(target, path).ok
    assert torch.equal(target.state_dict()['backbone.proj'], source.state_dict()['backbone.proj'])


def test_wrong_keys_give_one_line_with_counts_and_names(source, target, tmp_path):
    sd = dict(source.state_dict())
    sd.pop('backbone.proj')
    sd.pop('decode_head.q_proj.bias')
    sd['backbone.not_a_weight'] = torch.zeros(2)
    path = _mmcv1_file(tmp_path / 'keys.pth', sd)
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(target, path)
    msg = _assert_one_line(info.value, path)
    assert '2 missing (backbone.proj, decode_head.q_proj.bias)' in msg
    assert '1 unexpected (backbone.not_a_weight)' in msg
    # Nothing was loaded.
    assert not torch.equal(target.state_dict()['backbone.conv1.weight'],
                           source.state_dict()['backbone.conv1.weight'])


def test_many_missing_keys_are_truncated(source, target, tmp_path):
    sd = {k: v for k, v in source.state_dict().items() if not k.startswith('text_encoder.')}
    path = _mmcv1_file(tmp_path / 'notext.pth', sd)
    n = sum(1 for k in source.state_dict() if k.startswith('text_encoder.'))
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(target, path)
    msg = _assert_one_line(info.value, path)
    assert f'{n} missing (text_encoder.positional_embedding, text_encoder.text_projection, ' \
           f'text_encoder.token_embedding.weight, ... +{n - 3} more)' in msg
    assert len(msg) < 400


def test_wrong_shapes_are_reported(source, target, tmp_path):
    sd = dict(source.state_dict())
    sd['backbone.prompt_embeddings'] = torch.zeros(1, 7, 32)
    path = _mmcv1_file(tmp_path / 'shape.pth', sd)
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(target, path)
    msg = _assert_one_line(info.value, path)
    assert '1 shape mismatch (backbone.prompt_embeddings: file (1, 7, 32) vs model (1, 4, 32))' in msg


def test_strict_also_applies_through_mmengine_and_load_state_dict(source, target, tmp_path):
    from mmengine.runner import load_checkpoint
    sd = dict(source.state_dict())
    sd.pop('backbone.ln_pre.bias')
    path = _mmcv1_file(tmp_path / 'miss.pth', sd)
    with pytest.raises(CheckpointError, match=r'1 missing \(backbone\.ln_pre\.bias\)'):
        load_checkpoint(target, str(path), map_location='cpu')  # mmengine: non-strict by itself
    with pytest.raises(CheckpointError, match='strict_load=True'):
        target.load_state_dict(sd, strict=False)
    # Opting out loads what matches and reports the rest.
    target.strict_load = False
    report = load_zegclip_checkpoint(target, path, strict=False)
    assert report.missing == ['backbone.ln_pre.bias'] and not report.ok
    assert torch.equal(target.state_dict()['backbone.proj'], source.state_dict()['backbone.proj'])
    assert target.strict_load is False


def test_loss_buffer_length_adapts(source, target, tmp_path):
    sd = dict(source.state_dict())
    weight = torch.ones(21)
    weight[-1] = 0.1
    sd['decode_head.loss_decode.criterion.empty_weight'] = weight
    path = _mmcv1_file(tmp_path / 'buf.pth', sd)
    assert load_zegclip_checkpoint(target, path).ok
    assert torch.equal(target.decode_head.loss_decode.criterion.empty_weight, weight)


@pytest.mark.parametrize('cut', [0.5, 0.01])
def test_truncated_file(source, target, tmp_path, cut):
    good = _mmcv1_file(tmp_path / 'good.pth', source.state_dict())
    data = good.read_bytes()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(data[:max(int(len(data) * cut), 10)])
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(target, path)
    msg = _assert_one_line(info.value, path)
    assert 'not a readable torch checkpoint (truncated or corrupt?)' in msg


def test_missing_empty_and_garbage_files(target, tmp_path):
    with pytest.raises(CheckpointError, match='checkpoint file not found'):
        read_checkpoint(tmp_path / 'nope.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match='checkpoint file is empty'):
        read_checkpoint(tmp_path / 'empty.pth')
    (tmp_path / 'junk.pth').write_bytes(b'this is not a checkpoint' * 20)
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        read_checkpoint(tmp_path / 'junk.pth')
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(CheckpointError, match='expected a dict'):
        read_checkpoint(tmp_path / 'list.pth')


def test_unsafe_objects_need_trusted(source, target, tmp_path):
    path = _mmcv1_file(tmp_path / 'numpy_meta.pth', source.state_dict(),
                       meta_extra={'seed': np.int64(0), 'hist': np.zeros(3)})
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(target, path)
    msg = _assert_one_line(info.value, path)
    assert 'trusted=True' in msg and 'numpy' in msg
    assert load_zegclip_checkpoint(target, path, trusted=True).ok
    # Converted once, the file loads safely (and through mmseg's init_model).
    out = tmp_path / 'converted.pth'
    digest = convert_checkpoint(path, out, trusted=True)
    assert digest == sha256_file(out)
    loaded = torch.load(out, weights_only=True)
    assert loaded['meta']['dataset_meta']['classes'] == list(CLASSES)
    assert loaded['meta']['source_sha256'] == sha256_file(path)
    assert load_zegclip_checkpoint(target, out).ok


def test_compare_state_dict_reports_nothing_for_equal_layouts(source):
    expected = {k: v.shape for k, v in source.state_dict().items()}
    assert compare_state_dict(expected, source.state_dict()).ok
