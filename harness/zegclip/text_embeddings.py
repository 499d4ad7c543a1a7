"""Class text embeddings for any vocabulary, with ZegCLIP's (= CLIP ViT-B/16's) text encoder.

Recipe (FACTS §2.2): each prompt is tokenised with the CLIP BPE tokenizer (offline: the
vocabulary ships inside the mmsegmentation wheel, ``mmseg.utils.tokenize``), encoded, L2-normalised;
per class the template embeddings are averaged and re-normalised. Template sets:
``'single'`` = "a photo of a {}" (no period), ``'multi'`` = the 15 templates below.

CLI::

    python -m harness.zegclip.text_embeddings --classes ade20k_classes.txt --templates multi \
        --weights zegclip_coco_inductive.pth --out ade20k_multi.npy
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from harness.config.arguments import OneLineParser
from harness.errors import UserError

TEMPLATE_SETS: Dict[str, tuple] = {
    'single': ('a photo of a {}', ),
    'multi': (
        'a photo of a {}.',
        'a photo of a small {}.',
        'a photo of a medium {}.',
        'a photo of a large {}.',
        'This is a photo of a {}.',
        'This is a photo of a small {}.',
        'This is a photo of a medium {}.',
        'This is a photo of a large {}.',
        'a {} in the scene.',
        'a photo of a {} in the scene.',
        'There is a {} in the scene.',
        'There is the {} in the scene.',
        'This is a {} in the scene.',
        'This is the {} in the scene.',
        'This is one {} in the scene.',
    ),
}

# Geometry of CLIP ViT-B/16's text tower, as in every ZegCLIP checkpoint.
VITB16_TEXT_ENCODER = dict(type='ZegCLIPTextEncoder', context_length=77, vocab_size=49408,
                           transformer_width=512, transformer_heads=8, transformer_layers=12,
                           embed_dim=512)

# Key prefixes under which text-encoder weights may be stored.
_PREFIXES = ('text_encoder.', 'backbone.text_encoder.', '')
_TEXT_KEYS = ('positional_embedding', 'text_projection', 'token_embedding.weight',
              'ln_final.weight', 'ln_final.bias')


def resolve_templates(template_set: Union[str, Sequence[str]]) -> tuple:
    if isinstance(template_set, str):
        if template_set not in TEMPLATE_SETS:
            raise ValueError(f'unknown template set {template_set!r}; use one of '
                             f'{sorted(TEMPLATE_SETS)} or a list of strings with one "{{}}"')
        return TEMPLATE_SETS[template_set]
    templates = tuple(template_set)
    if not templates or any(t.count('{}') != 1 for t in templates):
        raise ValueError('each template must contain exactly one "{}"')
    return templates


def tokenize(texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
    """CLIP BPE token ids (N, context_length), padded with 0; SOT 49406, EOT 49407."""
    from mmseg.utils import tokenize as mmseg_tokenize
    return mmseg_tokenize(list(texts), context_length=context_length)


@torch.no_grad()
def encode_class_names(text_encoder: torch.nn.Module, class_names: Sequence[str],
                       template_set: Union[str, Sequence[str]] = 'multi',
                       batch_size: int = 256) -> torch.Tensor:
    """(C, D) float32 unit-norm class embeddings from ``text_encoder`` (in eval mode)."""
    templates = resolve_templates(template_set)
    names = [str(n) for n in class_names]
    if not names:
        raise ValueError('class_names is empty')
    prompts = [t.format(n) for n in names for t in templates]
    was_training = text_encoder.training
    text_encoder.eval()
    device = next(text_encoder.parameters()).device
    context = getattr(text_encoder, 'context_length', 77)
    tokens = tokenize(prompts, context_length=context)
    # Attention is causal, so the end-of-text feature only depends on the tokens up to it:
    # dropping the padding after the longest prompt changes nothing and saves most of the work.
    tokens = tokens[:, :int(tokens.argmax(dim=-1).max()) + 1]
    outs = []
    for start in range(0, len(prompts), batch_size):
        outs.append(text_encoder(tokens[start:start + batch_size].to(device)).float())
    text_encoder.train(was_training)
    per_prompt = F.normalize(torch.cat(outs), dim=-1).view(len(names), len(templates), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1).cpu()


def module_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over the names and bytes of a module's state dict (identifies its weights)."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().to('cpu').contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """zeg-eval's cache folder (``$ZEG_EVAL_CACHE``, else the user's cache folder: harness.cache)."""
    from harness.cache import cache_dir
    return cache_dir('zegclip_text')


def cached_class_embeddings(text_encoder: torch.nn.Module, class_names: Sequence[str],
                            template_set: Union[str, Sequence[str]] = 'multi',
                            cache_dir=None) -> torch.Tensor:
    """:func:`encode_class_names` with an on-disk cache keyed by the weights, names and templates."""
    templates = resolve_templates(template_set)
    key = _cache_key(class_names, templates, 'fingerprint:' + module_fingerprint(text_encoder))
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f'{key[:32]}.npy'
    if path.is_file():
        try:
            array = np.load(path)
            if array.shape[0] == len(class_names):
                return torch.from_numpy(array).float()
        except (ValueError, OSError):
            pass
    matrix = encode_class_names(text_encoder, class_names, templates)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, matrix.numpy())
        path.with_name(path.name + '.json').write_text(json.dumps(
            {'classes': list(map(str, class_names)), 'templates': list(templates)}, indent=1))
    except OSError:
        pass  # a cache only
    return matrix


def text_encoder_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Extract text-encoder weights (``text_encoder.*`` in ZegCLIP files, or bare CLIP names)."""
    for prefix in _PREFIXES:
        if prefix + 'token_embedding.weight' in state_dict:
            out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if not prefix:  # bare CLIP layout: drop the visual tower and logit scale
                out = {k: v for k, v in out.items()
                       if k in _TEXT_KEYS or k.startswith('transformer.')}
            return out
    from .checkpoint import CheckpointError
    raise CheckpointError('holds no text-encoder weights (looked for '
                          'text_encoder.token_embedding.weight '
                          'or token_embedding.weight)')


def build_text_encoder(weights_from=None, *, text_encoder_cfg: Optional[dict] = None,
                       trusted: bool = False, device='cpu'):
    """A ZegCLIPTextEncoder with weights from a ZegCLIP / CLIP checkpoint file (strict)."""
    from mmseg.registry import MODELS

    from . import text_encoder as _registers  # noqa: F401
    from .checkpoint import CheckpointError, compare_state_dict, read_checkpoint
    encoder = MODELS.build(dict(text_encoder_cfg or VITB16_TEXT_ENCODER))
    if weights_from is not None:
        state_dict, _ = read_checkpoint(weights_from, trusted=trusted)
        try:
            weights = text_encoder_state_dict(state_dict)
        except CheckpointError as exc:
            raise CheckpointError(str(exc), weights_from) from None
        report = compare_state_dict({k: v.shape for k, v in encoder.state_dict().items()}, weights)
        if not report.ok:
            raise CheckpointError(f'text encoder weights do not match: {report.summary()}', weights_from)
        encoder.load_state_dict(weights)
    return encoder.to(device).eval()


def _cache_key(class_names, templates, weights_id) -> str:
    payload = json.dumps({'classes': list(class_names), 'templates': list(templates),
                          'weights': weights_id}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def compute_text_embeddings(class_names: Sequence[str],
                            template_set: Union[str, Sequence[str]] = 'multi',
                            text_encoder_weights_from=None,
                            out=None,
                            *,
                            dtype: str = 'float16',
                            text_encoder: Optional[torch.nn.Module] = None,
                            text_encoder_cfg: Optional[dict] = None,
                            trusted: bool = False,
                            device='cpu',
                            overwrite: bool = False) -> np.ndarray:
    """Class embeddings (C, D) for ``class_names``, cached to ``out`` (.npy) when given.

    Weights come from ``text_encoder_weights_from`` (a ZegCLIP or CLIP checkpoint file; geometry
    ``text_encoder_cfg``, default CLIP ViT-B/16's) or from a built ``text_encoder`` module. The
    cache is valid when ``out`` and its sidecar ``out.json`` record the same class names, templates
    and weights (file SHA-256); otherwise it is rebuilt.
    ``dtype='float16'`` matches the upstream .npy files.
    """
    from .checkpoint import sha256_file
    templates = resolve_templates(template_set)
    if text_encoder is None and text_encoder_weights_from is None:
        raise ValueError('give text_encoder_weights_from (checkpoint path) or text_encoder')
    weights_id = (f'sha256:{sha256_file(text_encoder_weights_from)}'
                  if text_encoder_weights_from is not None else 'module')
    key = _cache_key(class_names, templates, weights_id)
    out_path = Path(out) if out is not None else None
    meta_path = out_path.with_name(out_path.name + '.json') if out_path is not None else None
    if (out_path is not None and not overwrite and out_path.is_file() and meta_path.is_file()
            and weights_id != 'module'):
        try:
            if json.loads(meta_path.read_text()).get('key') == key:
                return np.load(out_path)
        except (ValueError, OSError):
            pass
    if text_encoder is None:
        text_encoder = build_text_encoder(text_encoder_weights_from, text_encoder_cfg=text_encoder_cfg,
                                          trusted=trusted, device=device)
    emb = encode_class_names(text_encoder, class_names, templates).numpy().astype(dtype)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(out_path, emb)
        meta_path.write_text(json.dumps({
            'key': key, 'classes': list(map(str, class_names)), 'templates': list(templates),
            'weights': weights_id, 'shape': list(emb.shape), 'dtype': str(emb.dtype)}, indent=1))
    return emb


def read_class_names(spec: str) -> list:
    """Class names from a text file (one per line) or a comma-separated string."""
    path = Path(spec)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [s.strip() for s in spec.split(',') if s.strip()]


def main(argv=None) -> int:
    parser = OneLineParser(
        prog='zeg-eval zegclip-embed',
        description='Compute ZegCLIP class text embeddings for a vocabulary (.npy).')
    parser.add_argument('--classes', required=True,
                        help='text file with one class name per line, or "a,b,c"')
    parser.add_argument('--templates', default='multi', help="'single', 'multi' (default)")
    parser.add_argument('--weights', required=True,
                        help='ZegCLIP checkpoint (text_encoder.* keys) or CLIP state dict')
    parser.add_argument('--out', required=True, help='output .npy (a .npy.json sidecar is written)')
    parser.add_argument('--dtype', default='float16', choices=['float16', 'float32'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--trusted', action='store_true',
                        help='allow non-weights-only unpickling of the checkpoint (trusted files only)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    names = read_class_names(args.classes)
    try:
        emb = compute_text_embeddings(names, args.templates, args.weights, args.out,
                                      dtype=args.dtype, trusted=args.trusted, device=args.device,
                                      overwrite=args.overwrite)
    except (UserError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'{args.out}: {emb.shape[0]} classes x {emb.shape[1]} ({emb.dtype}), '
          f'templates={args.templates}')
    return 0


if __name__ == '__main__':
    try:
        raise SystemExit(main())
    except UserError as exc:  # a bad argument: one line, as `zeg-eval zegclip-embed` prints it
        print(f'zeg-eval: error: {exc}', file=sys.stderr)
        raise SystemExit(2) from None
