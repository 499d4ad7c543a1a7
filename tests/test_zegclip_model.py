"""Tiny ZegCLIP (configs/zegclip/tiny_test.py) on CPU: shapes at every stage, an independent
re-implementation of the forward pass, the CLS quirk, prompt replacement, the seen-class shift and
slide averaging on constructed inputs, and the mmseg init_model / inference_model path."""
import math
from pathlib import Path

import mmseg.models  # noqa: F401,E402  (a hard dependency)
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness.zegclip  # noqa: F401,E402
from harness.zegclip import ZegCLIP, slide_windows  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / 'configs/zegclip/tiny_test.py'


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('zegclip_text_cache')


@pytest.fixture(scope='module')
def tiny(cache_dir):
    from mmseg.apis import init_model
    torch.manual_seed(0)
    model = init_model(str(TINY), None, device='cpu',
                       cfg_options={'model.text_embedding_cache_dir': str(cache_dir)})
    # Random (non-trivial) LayerNorm affine parameters and prompts, so that mistakes show.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ('ln' in name or 'norm' in name):
                p.copy_(1 + 0.2 * torch.randn_like(p) if name.endswith('weight') else 0.2 * torch.randn_like(p))
            elif name.endswith('bias'):
                p.copy_(0.1 * torch.randn_like(p))
    return model


# ----------------------------------------------------------------------------- independent reference
def _ln(x, mod, eps=None):
    return F.layer_norm(x, mod.normalized_shape, mod.weight, mod.bias, mod.eps if eps is None else eps)


def _mlp(x, mlp):
    h = F.linear(x, mlp.c_fc.weight, mlp.c_fc.bias)
    return F.linear(h * torch.sigmoid(1.702 * h), mlp.c_proj.weight, mlp.c_proj.bias)


def reference_backbone(bb, x):
    """FACTS §2.1 written out sequence-first with torch's nn.MultiheadAttention."""
    b = x.shape[0]
    p = bb.patch_size
    t = F.conv2d(x, bb.conv1.weight, stride=p)
    width, h, w = t.shape[1:]
    t = t.reshape(b, width, h * w).permute(0, 2, 1)
    t = torch.cat([bb.class_embedding.reshape(1, 1, -1).repeat(b, 1, 1), t], dim=1)
    pos = bb.positional_embedding
    side = int(math.isqrt(pos.shape[0] - 1))
    grid = pos[1:].reshape(1, side, side, width).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode='bilinear', align_corners=False)
    grid = grid.reshape(width, h * w).t()
    t = t + torch.cat([(pos[0] + bb.class_embedding)[None], grid], dim=0)
    t = _ln(t, bb.ln_pre)

    def project(e):
        return F.linear(e, bb.prompt_proj.weight, bb.prompt_proj.bias)

    n_tok = bb.num_tokens
    t = torch.cat([t[:, :1], project(bb.prompt_embeddings).repeat(b, 1, 1), t[:, 1:]], dim=1)
    t = t.permute(1, 0, 2)  # sequence-first, as upstream
    for i, blk in enumerate(bb.transformer.resblocks):
        if 1 <= i <= bb.total_d_layer:
            deep = project(bb.deep_prompt_embeddings[i - 1])[:, None].repeat(1, b, 1)
            t = torch.cat([t[:1], deep, t[1 + n_tok:]], dim=0)
        y = _ln(t, blk.ln_1)
        t = t + blk.attn(y, y, y, need_weights=False)[0]
        t = t + _mlp(_ln(t, blk.ln_2), blk.mlp)
    t = t.permute(1, 0, 2)
    t = _ln(_ln(t, bb.prompt_norm, eps=1e-6), bb.ln_post) @ bb.proj
    g = t[:, 0] / t[:, 0].norm(dim=-1, keepdim=True)
    pm = t[:, -h * w:].reshape(b, h, w, -1).permute(0, 3, 1, 2)
    return pm / pm.norm(dim=1, keepdim=True), g


def reference_head(head, patch_map, g, text):
    """FACTS §2.3 with explicit per-head einsums; returns the last layer's head-mean logits."""
    b, d, h, w = patch_map.shape
    mem = patch_map.reshape(b, d, h * w).permute(0, 2, 1)
    c = text.shape[0]
    q = head.q_proj(torch.cat([g[:, None] * text[None], text[None].repeat(b, 1, 1)], dim=-1))
    all_logits = []
    for layer in head.decoder_1.layers:
        att = layer.multihead_attn
        nh = att.num_heads
        dh = d // nh
        qq = att.q(q).reshape(b, c, nh, dh)
        kk = att.k(mem).reshape(b, h * w, nh, dh)
        vv = att.v(mem).reshape(b, h * w, nh, dh)
        logits = torch.einsum('bchd,blhd->bhcl', qq, kk) / math.sqrt(dh)
        out = torch.einsum('bhcl,blhd->bchd', logits.softmax(-1), vv).reshape(b, c, d)
        q = layer.norm2(q + att.proj(out))
        q = layer.norm3(q + layer.linear2(F.relu(layer.linear1(q))))
        all_logits.append(logits.mean(dim=1))
    return all_logits[-1].reshape(b, c, h, w), all_logits


def reference_text(te, tokens):
    x = te.token_embedding(tokens) + te.positional_embedding[:tokens.shape[1]]
    x = x.permute(1, 0, 2)
    n = tokens.shape[1]
    mask = torch.full((n, n), float('-inf')).triu(1)
    for blk in te.transformer.resblocks:
        y = _ln(x, blk.ln_1)
        x = x + blk.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        x = x + _mlp(_ln(x, blk.ln_2), blk.mlp)
    x = _ln(x.permute(1, 0, 2), te.ln_final)
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ te.text_projection


# ----------------------------------------------------------------------------- tests
@torch.no_grad()
@pytest.mark.parametrize('size', [(64, 64), (48, 80)])
def test_backbone_matches_independent_reference(tiny, size):
    x = torch.randn(2, 3, *size)
    patch_map, glob = tiny.backbone(x)
    h, w = size[0] // 8, size[1] // 8
    assert patch_map.shape == (2, 24, h, w) and glob.shape == (2, 24)
    torch.testing.assert_close(patch_map.norm(dim=1), torch.ones(2, h, w))
    torch.testing.assert_close(glob.norm(dim=1), torch.ones(2))
    ref_pm, ref_g = reference_backbone(tiny.backbone, x)
    torch.testing.assert_close(patch_map, ref_pm, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(glob, ref_g, atol=2e-5, rtol=1e-4)


@torch.no_grad()
def test_cls_token_gets_class_embedding_twice(tiny):
    bb = tiny.backbone
    seen = {}
    handle = bb.ln_pre.register_forward_hook(lambda m, i, o: seen.__setitem__('x', i[0]))
    saved = bb.conv1.weight.clone()
    try:
        bb.conv1.weight.zero_()  # patch tokens = 0 -> what ln_pre sees is the embeddings alone
        bb(torch.randn(1, 3, 64, 64))
    finally:
        bb.conv1.weight.copy_(saved)
        handle.remove()
    x = seen['x'][0]
    torch.testing.assert_close(x[0], 2 * bb.class_embedding + bb.positional_embedding[0])
    torch.testing.assert_close(x[1:], bb.positional_embedding[1:])


@torch.no_grad()
def test_prompts_inserted_after_cls_and_replaced_before_blocks_1_to_n(tiny):
    bb = tiny.backbone
    inputs = {}
    handles = [blk.register_forward_hook(lambda m, i, o, k=k: inputs.__setitem__(k, i[0]))
               for k, blk in enumerate(bb.transformer.resblocks)]
    try:
        bb(torch.randn(2, 3, 64, 64))
    finally:
        for hnd in handles:
            hnd.remove()
    t = bb.num_tokens
    assert inputs[0].shape == (2, 1 + t + 64, 32)
    expect = [bb.prompt_proj(bb.prompt_embeddings[0])] + [
        bb.prompt_proj(bb.deep_prompt_embeddings[i]) for i in range(bb.total_d_layer)]
    for k in range(len(bb.transformer.resblocks)):
        for b in range(2):
            torch.testing.assert_close(inputs[k][b, 1:1 + t], expect[k])
    # The last block (index 2 = total_d_layer) got the last deep prompts; CLS/patches flow through.
    assert not torch.allclose(inputs[1][:, 0], inputs[0][:, 0])


@torch.no_grad()
def test_head_matches_independent_reference(tiny):
    x = torch.randn(2, 3, 64, 64)
    feats = tiny.backbone(x)
    text = tiny.get_class_embeddings()
    assert text.shape == (6, 24)
    fast = tiny.decode_head(feats, text)
    assert fast.shape == (2, 6, 8, 8) and fast.dtype == torch.float32
    ref, ref_all = reference_head(tiny.decode_head, feats[0], feats[1], text)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-5)
    full, per_layer, queries = tiny.decode_head(feats, text, return_all=True)
    assert len(per_layer) == 3 and queries.shape == (2, 6, 24)
    for got, want in zip(per_layer, ref_all):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full, fast, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_text_encoder_matches_reference_and_is_causal(tiny):
    from harness.zegclip import tokenize
    tokens = tokenize(['a photo of a cat', 'There is the road in the scene.'])
    assert tokens.shape == (2, 77)
    out = tiny.text_encoder(tokens)
    assert out.shape == (2, 24)
    torch.testing.assert_close(out, reference_text(tiny.text_encoder, tokens), atol=1e-5, rtol=1e-4)
    # Tokens after end-of-text cannot change the result (causal mask, EOT = argmax).
    noisy = tokens.clone()
    eot = tokens.argmax(-1)
    for i in range(2):
        noisy[i, eot[i] + 1:] = torch.randint(1, 49000, (77 - eot[i] - 1, ))
    torch.testing.assert_close(tiny.text_encoder(noisy), out, atol=1e-6, rtol=1e-5)
    # ... which is why truncating after the longest prompt is exact.
    torch.testing.assert_close(tiny.text_encoder(tokens[:, :int(eot.max()) + 1]), out,
                               atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_sdpa_and_explicit_softmax_paths_agree(tiny):
    x = torch.randn(1, 3, 64, 96)
    base = tiny.encode_decode(x)
    for mod in (tiny.backbone, tiny.text_encoder, tiny.decode_head):
        mod.set_attn_impl('math')
    try:
        tiny._text_ready = False  # recompute the text matrix on the math path too
        math_path = tiny.encode_decode(x)
    finally:
        for mod in (tiny.backbone, tiny.text_encoder, tiny.decode_head):
            mod.set_attn_impl('sdpa')
    torch.testing.assert_close(math_path, base, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def test_shapes_through_encode_decode_and_whole_mode(tiny):
    x = torch.randn(2, 3, 64, 64)
    scores = tiny.encode_decode(x)
    assert scores.shape == (2, 6, 64, 64)
    shift = torch.tensor([0.1 if i in (0, 2, 3, 5) else 0.0 for i in range(6)])
    assert bool(((scores + shift.view(1, -1, 1, 1)) >= 0).all())
    assert bool(((scores + shift.view(1, -1, 1, 1)) <= 1).all())
    # Whole-image mode works on non-square inputs (upstream assumed a square token grid).
    tiny.test_cfg['mode'] = 'whole'
    try:
        out = tiny.inference(torch.randn(1, 3, 48, 80), [dict(ori_shape=(48, 80))])
    finally:
        tiny.test_cfg['mode'] = 'slide'
    assert out.shape == (1, 6, 48, 80)


@torch.no_grad()
def test_seen_shift_on_constructed_logits(tiny, monkeypatch):
    b, c, h, w = 1, 6, 8, 8
    logits = torch.linspace(-3, 3, b * c * h * w).reshape(b, c, h, w)
    monkeypatch.setattr(tiny, 'mask_logits', lambda inputs: logits.clone())
    x = torch.zeros(1, 3, 64, 64)
    got = tiny.encode_decode(x).numpy()
    # Expected, computed independently in numpy: bilinear (align_corners=False) upsampling by 8
    # then sigmoid, then -0.1 on the seen channels only.
    lg = logits.numpy()[0]
    src = (np.arange(64) + 0.5) / 8 - 0.5
    src = np.clip(src, 0, None)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, h - 1)
    frac = src - i0
    rows = lg[:, i0, :] * (1 - frac)[None, :, None] + lg[:, i1, :] * frac[None, :, None]
    up = rows[:, :, i0] * (1 - frac)[None, None, :] + rows[:, :, i1] * frac[None, None, :]
    expected = 1 / (1 + np.exp(-up))
    seen = [0, 2, 3, 5]
    expected[seen] -= 0.1
    np.testing.assert_allclose(got[0], expected, atol=1e-6)
    unseen = [1, 4]
    assert np.all(got[0][unseen] >= 0)  # unseen channels are untouched
    # Transductive / fully supervised: no shift.
    for setting in ('transductive', 'fully'):
        model = _tiny_variant(setting=setting)
        monkeypatch.setattr(model, 'mask_logits', lambda inputs: logits.clone())
        np.testing.assert_allclose(model.encode_decode(x).numpy()[0], 1 / (1 + np.exp(-up)), atol=1e-6)


def _tiny_variant(**overrides):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(TINY))
    cfg.model.update(overrides)
    return MODELS.build(cfg.model).eval()


def test_slide_windows_follow_mmseg_formula():
    assert slide_windows(512, 683, (512, 512), (426, 426)) == [(0, 512, 0, 512), (0, 512, 171, 683)]
    assert slide_windows(512, 512, (512, 512), (426, 426)) == [(0, 512, 0, 512)]
    wins = slide_windows(700, 1000, (512, 512), (426, 426))
    assert len(wins) == 2 * 3 and wins[-1] == (188, 700, 488, 1000)


@torch.no_grad()
@pytest.mark.parametrize('window_batch_size', [1, 4])
def test_slide_averaging_on_constructed_scores(tiny, monkeypatch, window_batch_size):
    """Each crop's 'scores' encode the crop's position; the expected average over the windows that
    cover a pixel is computed independently (own window enumeration, float64)."""
    h_img, w_img, crop, stride = 100, 150, 64, 48
    yy, xx = torch.meshgrid(torch.arange(h_img, dtype=torch.float32),
                            torch.arange(w_img, dtype=torch.float32), indexing='ij')
    inputs = torch.stack([yy, xx, torch.zeros_like(yy)])[None]  # channel 0 = y, 1 = x

    def fake_encode_decode(crops, metas=None):
        y0 = crops[:, 0, 0, 0].view(-1, 1, 1, 1)
        x0 = crops[:, 1, 0, 0].view(-1, 1, 1, 1)
        value = 1000 * y0 + x0 + crops[:, :1] * 0  # constant per crop
        return value.expand(-1, 6, -1, -1) + torch.arange(6.0).view(1, -1, 1, 1)

    monkeypatch.setattr(tiny, 'encode_decode', fake_encode_decode)
    monkeypatch.setattr(tiny, 'window_batch_size', window_batch_size)
    got = tiny.slide_inference(inputs, None).numpy()

    total = np.zeros((h_img, w_img))
    count = np.zeros((h_img, w_img))
    ys = sorted({min(y, h_img - crop) for y in range(0, h_img - crop + stride, stride)})
    xs = sorted({min(x, w_img - crop) for x in range(0, w_img - crop + stride, stride)})
    for y in ys:
        for x in xs:
            total[y:y + crop, x:x + crop] += 1000 * y + x
            count[y:y + crop, x:x + crop] += 1
    assert (ys, xs) == ([0, 36], [0, 48, 86])
    expected = total / count
    assert got.shape == (1, 6, h_img, w_img)
    for ch in range(6):
        np.testing.assert_allclose(got[0, ch], expected + ch, rtol=1e-6)


@torch.no_grad()
def test_slide_batching_does_not_change_results(tiny):
    x = torch.randn(2, 3, 70, 150)
    tiny.window_batch_size = 1
    one = tiny.slide_inference(x, None)
    tiny.window_batch_size = 8
    many = tiny.slide_inference(x, None)
    tiny.window_batch_size = 4
    torch.testing.assert_close(many, one, atol=1e-6, rtol=1e-5)
    # Same as averaging encode_decode over the windows by hand.
    wins = slide_windows(70, 150, (64, 64), (48, 48))
    acc = torch.zeros(2, 6, 70, 150)
    cnt = torch.zeros(1, 1, 70, 150)
    for y1, y2, x1, x2 in wins:
        acc[:, :, y1:y2, x1:x2] += tiny.encode_decode(x[:, :, y1:y2, x1:x2])
        cnt[:, :, y1:y2, x1:x2] += 1
    torch.testing.assert_close(one, acc / cnt, atol=1e-6, rtol=1e-5)


def test_init_model_and_inference_model_on_an_image(tiny, tmp_path):
    import cv2
    from mmseg.apis import inference_model
    img = (np.random.RandomState(0).rand(45, 100, 3) * 255).astype(np.uint8)
    path = tmp_path / 'img.png'
    cv2.imwrite(str(path), img)
    result = inference_model(tiny, str(path))
    assert result.metainfo['img_shape'] == (64, 142)  # short side 64 (tiny Resize)
    assert result.seg_logits.data.shape == (6, 45, 100)
    assert result.pred_sem_seg.data.shape == (1, 45, 100)
    assert int(result.pred_sem_seg.data.max()) < 6
    assert torch.equal(result.pred_sem_seg.data[0], result.seg_logits.data.argmax(0))
    # The same image as an array (BGR) gives the same prediction.
    again = inference_model(tiny, img)
    torch.testing.assert_close(again.seg_logits.data, result.seg_logits.data)


@torch.no_grad()
def test_bf16_autocast_runs_on_cpu(tiny):
    x = torch.randn(1, 3, 64, 64)
    ref = tiny.encode_decode(x)
    tiny.amp_dtype = 'bf16'
    try:
        out = tiny.encode_decode(x)
    finally:
        tiny.amp_dtype = None
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert float((out - ref).abs().max()) < 0.05


def test_lazy_text_matrix_is_cached_and_recomputed_after_loading(tiny, cache_dir):
    before = tiny.get_class_embeddings().clone()
    files = sorted(p.name for p in Path(cache_dir).glob('*.npy'))
    assert files, 'the text matrix should have been cached'
    torch.testing.assert_close(before.norm(dim=1), torch.ones(6))
    state = {k: v.clone() for k, v in tiny.state_dict().items()}
    state['text_encoder.text_projection'] = torch.randn_like(state['text_encoder.text_projection'])
    saved = tiny.state_dict()['text_encoder.text_projection'].clone()
    tiny.load_state_dict(state)
    try:
        after = tiny.get_class_embeddings().clone()
        assert not torch.allclose(after, before)
        assert len(list(Path(cache_dir).glob('*.npy'))) == len(files) + 1
    finally:
        state['text_encoder.text_projection'] = saved
        tiny.load_state_dict(state)
    torch.testing.assert_close(tiny.get_class_embeddings(), before)  # back, from the cache


@torch.no_grad()
def test_new_vocabulary_via_set_class_embeddings(cache_dir):
    from harness.zegclip import encode_class_names
    model = _tiny_variant(text_embedding_cache_dir=str(cache_dir))
    names = ['zebra', 'fire hydrant', 'sand']
    model.set_class_embeddings(encode_class_names(model.text_encoder, names, 'multi'))
    assert model.num_classes == 3 and model.seen_idx == [] and model.unseen_idx == [0, 1, 2]
    out = model.inference(torch.randn(1, 3, 64, 100), [dict(ori_shape=(64, 100))])
    assert out.shape == (1, 3, 64, 100)
    assert bool((out >= 0).all())  # no seen classes -> no shift
    with pytest.raises(ValueError):
        model.set_class_embeddings(torch.zeros(3, 5))


def test_model_is_registered_and_rejects_training(tiny):
    from mmseg.registry import MODELS
    for name in ('ZegCLIP', 'ZegCLIPVisionTransformer', 'ZegCLIPTextEncoder', 'ZegCLIPHead',
                 'ZegCLIPLoss'):
        assert MODELS.get(name) is not None, name
    assert isinstance(tiny, ZegCLIP)
    with pytest.raises(NotImplementedError):
        tiny.loss(torch.zeros(1, 3, 64, 64), [])
