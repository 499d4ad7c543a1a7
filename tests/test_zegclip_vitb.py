"""Full-size ViT-B/16 ZegCLIP: state-dict layout, loading an upstream-layout checkpoint through
mmseg's init_model, and numerical parity with the upstream reference outputs.

One model is built and loaded per module (about 660 MB of float32 weights)."""
import json
import os
from pathlib import Path

import mmseg.models  # noqa: F401,E402  (a hard dependency)
import pytest
import torch

import harness.zegclip  # noqa: F401,E402
from harness.zegclip import parity  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


ROOT = Path(__file__).resolve().parents[1]
FACTS = Path(os.environ.get('ZEGCLIP_FACTS_DIR', ROOT / 'third_party/zegclip/parity'))
LAYOUT_JSON = FACTS / 'state_dict_vitb_coco_inductive.json'
REFERENCE_JSON = FACTS / 'reference_outputs.json'
COCO = ROOT / 'configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py'
VOC = ROOT / 'configs/zegclip/zegclip_vitb16_512x512_voc12-20_inductive.py'

LAYOUT = json.loads(LAYOUT_JSON.read_text())['keys']
COCO_CLASSES = ('person', 'bicycle', 'car')  # only checked to be carried over from meta


@pytest.fixture(scope='module')
def recipe_weights():
    return parity.recipe_state_dict(LAYOUT)


@pytest.fixture(scope='module')
def upstream_checkpoint(tmp_path_factory, recipe_weights):
    """A full-size random checkpoint in the upstream (mmcv 1.x runner) layout."""
    path = tmp_path_factory.mktemp('vitb') / 'zegclip_coco_inductive_random.pth'
    torch.save({
        'meta': {'mmseg_version': '0.24.0', 'config': 'model = dict(type="ZegCLIP")',
                 'CLASSES': COCO_CLASSES, 'PALETTE': [[0, 0, 0]] * 3, 'iter': 80000},
        'state_dict': recipe_weights,
        'optimizer': {'state': {}, 'param_groups': [{'lr': 2e-5, 'params': [0, 1]}]},
    }, path)
    return path


@pytest.fixture(scope='module')
def vitb_model(upstream_checkpoint):
    from mmseg.apis import init_model
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    return init_model(str(COCO), str(upstream_checkpoint), device='cpu')


def test_state_dict_names_and_shapes_equal_upstream(vitb_model):
    ours = {k: list(v.shape) for k, v in vitb_model.state_dict().items()}
    assert len(ours) == 376
    assert list(ours) == list(LAYOUT)  # same names, same order
    assert ours == LAYOUT
    for prefix, n_keys, n_elems in [('backbone.', 158, 88_342_272),
                                    ('text_encoder.', 149, 63_428_096),
                                    ('decode_head.', 69, 13_137_053)]:
        items = [v for k, v in vitb_model.state_dict().items() if k.startswith(prefix)]
        assert (len(items), sum(v.numel() for v in items)) == (n_keys, n_elems)


def _trainable(model):
    """Parameters upstream trains: prompts, prompt_proj/norm and the decode head."""
    names = ('backbone.prompt', 'backbone.deep_prompt', 'decode_head.')
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(names))


def test_trainable_parameter_counts_match_readme(vitb_model):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    assert _trainable(vitb_model) == 14_650_624  # README: 14.6M (COCO-Stuff)
    cfg = Config.fromfile(str(VOC))
    voc = MODELS.build(cfg.model)
    assert _trainable(voc) == 13_821_184  # README: 13.8M (VOC)
    assert tuple(voc.backbone.prompt_embeddings.shape) == (1, 10, 768)
    assert tuple(voc.decode_head.loss_decode.criterion.empty_weight.shape) == (16, )


def test_upstream_checkpoint_loads_strictly_through_init_model(vitb_model, recipe_weights):
    sd = vitb_model.state_dict()
    for name in ('backbone.class_embedding', 'text_encoder.token_embedding.weight',
                 'decode_head.decoder_1.layers.2.multihead_attn.k.weight',
                 'decode_head.loss_decode.criterion.empty_weight'):
        assert torch.equal(sd[name], recipe_weights[name]), name
    assert tuple(vitb_model.dataset_meta['classes']) == COCO_CLASSES


def test_strict_report_for_full_size_checkpoint(vitb_model, recipe_weights, tmp_path):
    from harness.zegclip import CheckpointError, load_zegclip_checkpoint
    kept = [k for k in LAYOUT if k != 'backbone.proj'][:200]
    bad = {k: recipe_weights[k] for k in kept}
    bad['backbone.prompt_embeddings'] = torch.zeros(1, 10, 768)  # a VOC prompt count
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': bad, 'meta': {}}, path)
    with pytest.raises(CheckpointError) as info:
        load_zegclip_checkpoint(vitb_model, path)
    msg = str(info.value)
    n_missing = 376 - 200
    assert '\n' not in msg and str(path) in msg
    assert f'{n_missing} missing (backbone.proj, ' in msg and f'... +{n_missing - 3} more' in msg
    assert 'unexpected' not in msg
    assert '1 shape mismatch (backbone.prompt_embeddings: file (1, 10, 768) vs model (1, 100, 768))' in msg


def test_parity_with_upstream_reference(vitb_model, recipe_weights, tmp_path):
    reference = json.loads(REFERENCE_JSON.read_text())
    assert parity.state_dict_sha256(recipe_weights) == reference['state_dict_check']['sha256']
    atol = 1e-6  # the file's tolerance for score maps
    got = parity.compare_with_reference(vitb_model, reference, image_path=tmp_path / 'ref.png')
    # Inputs: seeded image, resize to 512x683 and normalisation bit-identical to upstream.
    assert got['image_sha256_ok'] and got['input_sha256_ok']
    assert got['input_shape'] == reference['preprocess']['input_tensor']['shape']
    # (a) backbone on the top-left crop; printed values are 6 significant digits.
    for key in ('a_global_first8_excess', 'a_patch_0_0_excess', 'a_patch_31_31_excess'):
        assert got[key] <= 0, (key, got[key])
    assert got['a_patch_sum_delta'] <= atol * got['a_patch_numel']
    assert got['a_patch_sumabs_delta'] <= atol * got['a_patch_numel']
    # (b) encode_decode on the crop: sigmoid - 0.1 on seen classes.
    assert got['b_shape'] == [1, 171, 512, 512]
    assert got['b_min_delta'] <= atol and got['b_max_delta'] <= atol and got['b_mean_delta'] <= atol
    assert got['b_px_excess'] <= 0
    assert got['b_argmax'] == got['b_argmax_ref']
    # (c) slide inference through mmseg.apis.inference_model, resized to 480x640.
    assert got['c_shape'] == reference['c_simple_test_full_512x683']['slide_inference_shape']
    assert got['c_min_delta'] <= atol and got['c_max_delta'] <= atol and got['c_mean_delta'] <= atol
    assert got['c_px_excess'] <= 0
    # Labels: random weights give tiny margins; require >= 99.9% agreement (a lower bound from
    # the label histograms) and the labels at two points with margins far above 1e-6.
    assert got['c_label_min_agreement_bound'] >= 0.999
    assert min(got['c_margin_at_points']) > 1e-6
    assert got['c_labels_at_points'] == got['c_labels_at_points_ref']
    ref_small = got['c_n_px_margin_lt_1e-6_ref']
    assert abs(got['c_n_px_margin_lt_1e-6'] - ref_small) <= 0.01 * ref_small
