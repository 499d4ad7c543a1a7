"""Text embeddings for any vocabulary: tokenizer, templates, recipe, cache, CLI, bad inputs."""
import json

import mmseg.models  # noqa: F401,E402  (a hard dependency)
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness.zegclip  # noqa: F401,E402
from harness.zegclip import text_embeddings as te  # noqa: E402
from harness.zegclip.checkpoint import CheckpointError  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses, torch or mmseg: not in the fast loop


TINY_TEXT = dict(type='ZegCLIPTextEncoder', context_length=77, vocab_size=49408,
                 transformer_width=16, transformer_heads=2, transformer_layers=2, embed_dim=24)
NAMES = ['cat', 'wall-concrete', 'traffic light']


@pytest.fixture(scope='module')
def encoder():
    from mmseg.registry import MODELS
    torch.manual_seed(3)
    return MODELS.build(dict(TINY_TEXT)).eval()


@pytest.fixture(scope='module')
def zegclip_file(encoder, tmp_path_factory):
    """A checkpoint in the ZegCLIP layout holding the tiny text encoder (plus other keys)."""
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    sd = {'text_encoder.' + k: v for k, v in encoder.state_dict().items()}
    sd['backbone.proj'] = torch.zeros(3, 3)
    torch.save({'state_dict': sd, 'meta': {'CLASSES': ('a', )}}, path)
    return path


def test_tokenizer_is_clip_bpe():
    tokens = te.tokenize(['a photo of a cat', 'This is one wall-concrete in the scene.'])
    assert tokens.shape == (2, 77) and tokens.dtype == torch.long
    assert tokens[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert int(tokens[0, 7:].abs().sum()) == 0
    assert tokens[1, 0] == 49406 and int(tokens[1].argmax()) == 11 and tokens[1, 11] == 49407


def test_template_sets():
    assert te.TEMPLATE_SETS['single'] == ('a photo of a {}', )  # no period (upstream recipe)
    multi = te.TEMPLATE_SETS['multi']
    assert len(multi) == 15 == len(set(multi))
    assert multi[0] == 'a photo of a {}.' and multi[-1] == 'This is one {} in the scene.'
    assert all(t.count('{}') == 1 for t in multi)
    assert te.resolve_templates(['a {} here']) == ('a {} here', )
    with pytest.raises(ValueError):
        te.resolve_templates('triple')
    with pytest.raises(ValueError):
        te.resolve_templates(['no placeholder'])


@torch.no_grad()
def test_recipe_average_of_normalised_templates(encoder):
    got = te.encode_class_names(encoder, NAMES, 'multi')
    assert got.shape == (3, 24) and got.dtype == torch.float32
    # Independent: every prompt at full context length, normalised, averaged, re-normalised.
    for i, name in enumerate(NAMES):
        prompts = [t.format(name) for t in te.TEMPLATE_SETS['multi']]
        feats = F.normalize(encoder(te.tokenize(prompts)), dim=-1)
        want = F.normalize(feats.mean(0), dim=-1)
        torch.testing.assert_close(got[i], want, atol=1e-5, rtol=1e-4)
    single = te.encode_class_names(encoder, NAMES, 'single')
    want = F.normalize(encoder(te.tokenize([f'a photo of a {n}' for n in NAMES])), dim=-1)
    torch.testing.assert_close(single, want, atol=1e-5, rtol=1e-4)


def test_compute_from_checkpoint_with_cache(encoder, zegclip_file, tmp_path, monkeypatch):
    out = tmp_path / 'emb' / 'vocab.npy'
    emb = te.compute_text_embeddings(NAMES, 'single', zegclip_file, out, text_encoder_cfg=TINY_TEXT)
    assert emb.dtype == np.float16 and emb.shape == (3, 24)
    assert np.array_equal(np.load(out), emb)
    meta = json.loads(out.with_name('vocab.npy.json').read_text())
    assert meta['classes'] == NAMES and meta['templates'] == ['a photo of a {}']
    assert meta['weights'].startswith('sha256:')
    np.testing.assert_allclose(emb.astype(np.float32),
                               te.encode_class_names(encoder, NAMES, 'single').numpy(), atol=1e-3)

    def boom(*args, **kwargs):
        raise AssertionError('cache not used')

    monkeypatch.setattr(te, 'encode_class_names', boom)
    again = te.compute_text_embeddings(NAMES, 'single', zegclip_file, out, text_encoder_cfg=TINY_TEXT)
    assert np.array_equal(again, emb)
    with pytest.raises(AssertionError, match='cache not used'):  # other classes: recomputed
        te.compute_text_embeddings(NAMES[:2], 'single', zegclip_file, out, text_encoder_cfg=TINY_TEXT)


def test_bare_clip_layout_is_accepted(encoder, tmp_path):
    path = tmp_path / 'clip.pth'
    sd = dict(encoder.state_dict())
    sd['visual.proj'] = torch.zeros(2, 2)
    sd['logit_scale'] = torch.tensor(4.6)
    torch.save(sd, path)
    emb = te.compute_text_embeddings(['cat'], 'single', path, text_encoder_cfg=TINY_TEXT,
                                     dtype='float32')
    np.testing.assert_allclose(emb, te.encode_class_names(encoder, ['cat'], 'single').numpy(),
                               atol=1e-6)


def test_bad_weights_are_reported(tmp_path):
    path = tmp_path / 'notext.pth'
    torch.save({'state_dict': {'backbone.proj': torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match='holds no text-encoder weights') as info:
        te.compute_text_embeddings(['cat'], 'single', path, text_encoder_cfg=TINY_TEXT)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match='text encoder weights do not match'):
        torch.save({'state_dict': {'text_encoder.token_embedding.weight': torch.zeros(10, 16)}}, path)
        te.compute_text_embeddings(['cat'], 'single', path, text_encoder_cfg=TINY_TEXT)
    with pytest.raises(ValueError):
        te.compute_text_embeddings(['cat'], 'single')


def test_cli_writes_embeddings(zegclip_file, tmp_path, monkeypatch, capsys):
    classes = tmp_path / 'classes.txt'
    classes.write_text('cat\n\nsky\n')
    out = tmp_path / 'cli.npy'
    monkeypatch.setattr(te, 'VITB16_TEXT_ENCODER', TINY_TEXT)
    assert te.main(['--classes', str(classes), '--templates', 'multi', '--weights', str(zegclip_file),
                    '--out', str(out)]) == 0
    assert np.load(out).shape == (2, 24)
    assert 'cli.npy: 2 classes x 24' in capsys.readouterr().out
    assert te.main(['--classes', 'a,b', '--weights', str(tmp_path / 'missing.pth'),
                    '--out', str(out)]) == 2
    assert 'checkpoint file not found' in capsys.readouterr().err
