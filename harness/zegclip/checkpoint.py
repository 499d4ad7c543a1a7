"""Safe, strict loading of ZegCLIP checkpoints.

* Files: mmcv-1.x runner checkpoints (a dict with ``state_dict``, ``meta`` and maybe
  ``optimizer``), mmengine checkpoints, or plain state dicts. A leading ``module.`` is stripped.
* Safety: ``torch.load(weights_only=True)`` first. Files that need arbitrary unpickling are
  refused unless the caller passes ``trusted=True`` (then ``weights_only=False`` is used).
* Strictness: names and shapes must match the model exactly; otherwise :class:`CheckpointError`
  with ONE line naming the file, counts and a few names of missing / unexpected / mismatched keys.
* :func:`sha256_file` gives the digest that ``third_party/zegclip/checkpoints.yaml`` records.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from harness.errors import UserError

# Keys whose length legitimately differs between settings and that never affect inference:
# the loss buffer sized by the number of training classes (it adapts on load).
ADAPTIVE_KEY_SUFFIXES = ('loss_decode.criterion.empty_weight', )

_SHOW = 3  # names shown per category in a report


class CheckpointError(UserError, ValueError):
    """A checkpoint file that cannot be used: unreadable, unsafe without ``trusted=True``, or not
    matching the model. The message is one line and names the file."""

    def __init__(self, message: str, path=None):
        super().__init__(message.replace('\n', ' '), path)


@dataclass
class LoadReport:
    """Differences between a state dict and a model."""
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)  # name, file, model

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One line, e.g. ``2 missing (a, b), 1 shape mismatch (c: file (3,) vs model (4,))``."""
        def names(items):
            shown = ', '.join(items[:_SHOW])
            return shown + (f', ... +{len(items) - _SHOW} more' if len(items) > _SHOW else '')

        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} missing ({names(self.missing)})')
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} unexpected ({names(self.unexpected)})')
        if self.mismatched:
            desc = [f'{k}: file {tuple(a)} vs model {tuple(b)}' for k, a, b in self.mismatched]
            parts.append(f'{len(self.mismatched)} shape mismatch ({names(desc)})')
        return '; '.join(parts) if parts else 'all keys and shapes match'


def sha256_file(path, chunk_size: int = 1 << 22) -> str:
    if not Path(path).is_file():
        raise CheckpointError('checkpoint file not found', path)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk_size), b''):
            digest.update(block)
    return digest.hexdigest()


def compare_state_dict(expected: Mapping[str, torch.Size],
                       state_dict: Mapping[str, object]) -> LoadReport:
    """Compare names/shapes of ``state_dict`` with ``expected`` (name -> shape)."""
    report = LoadReport()
    for name, shape in expected.items():
        if name not in state_dict:
            report.missing.append(name)
            continue
        value = state_dict[name]
        got = tuple(value.shape) if hasattr(value, 'shape') else None
        if got != tuple(shape) and not name.endswith(ADAPTIVE_KEY_SUFFIXES):
            report.mismatched.append((name, got, tuple(shape)))
    report.unexpected = [k for k in state_dict if k not in expected]
    return report


def _torch_load(path: Path, weights_only: bool, map_location):
    return torch.load(str(path), map_location=map_location, weights_only=weights_only)


def read_checkpoint(path, *, trusted: bool = False,
                    map_location='cpu') -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a checkpoint file -> (state_dict, meta). Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError('checkpoint file not found', path)
    if path.stat().st_size == 0:
        raise CheckpointError('checkpoint file is empty', path)
    try:
        obj = _torch_load(path, True, map_location)
    except pickle.UnpicklingError as exc:
        if 'Weights only load failed' not in str(exc):
            raise CheckpointError(_unreadable(exc), path) from None
        if not trusted:
            raise CheckpointError(
                f'holds Python objects that torch.load(weights_only=True) refuses ({_refused(exc)}); '
                'if you trust this file, load it with trusted=True (or convert it once with '
                'harness.zegclip.checkpoint.convert_checkpoint(src, dst, trusted=True))', path) from None
        obj = _load_or_explain(path, map_location)
    except Exception as exc:  # noqa: BLE001 - truncated zip, bad magic number, I/O error ...
        raise CheckpointError(_unreadable(exc), path) from None
    return split_checkpoint(obj, path)


def _load_or_explain(path: Path, map_location):
    try:
        return _torch_load(path, False, map_location)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointError(_unreadable(exc), path) from None


def _refused(exc: BaseException) -> str:
    """The 'Unsupported global: ...' part of torch's weights-only refusal."""
    text = str(exc)
    marker = 'Unsupported global:'
    if marker in text:
        return ' '.join(text[text.index(marker):].split('was not an allowed')[0].split())
    return 'non-tensor objects'


def _unreadable(exc: BaseException) -> str:
    text = ' '.join(str(exc).split())[:200] or type(exc).__name__
    return f'not a readable torch checkpoint (truncated or corrupt?): {type(exc).__name__}: {text}'


def split_checkpoint(obj, path=None) -> Tuple[Dict[str, torch.Tensor], dict]:
    """(state_dict, meta) from a loaded checkpoint object of any supported layout."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'expected a dict in the checkpoint, found {type(obj).__name__}', path)
    meta = {}
    if 'state_dict' in obj and isinstance(obj['state_dict'], Mapping):
        state_dict = obj['state_dict']
        meta = obj.get('meta') or {}
    elif 'model' in obj and isinstance(obj['model'], Mapping):
        state_dict = obj['model']
        meta = obj.get('meta') or {}
    else:
        state_dict = obj
    non_tensor = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise CheckpointError(f'state_dict has {len(non_tensor)} non-tensor entries '
                              f'({", ".join(map(str, non_tensor[:_SHOW]))})', path)
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    return dict(state_dict), dict(meta) if isinstance(meta, Mapping) else {}


def load_zegclip_checkpoint(model: torch.nn.Module, path, *, strict: bool = True,
                            trusted: bool = False, map_location='cpu') -> LoadReport:
    """Load ``path`` into ``model``; strict by default. Returns the :class:`LoadReport`.

    Sets ``model.dataset_meta`` from the checkpoint's meta (``dataset_meta`` or mmcv-1.x
    ``CLASSES``/``PALETTE``) when present, as ``mmseg.apis.init_model`` does.
    """
    state_dict, meta = read_checkpoint(path, trusted=trusted, map_location=map_location)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    report = compare_state_dict(expected, state_dict)
    if strict and not report.ok:
        raise CheckpointError(f'does not match {type(model).__name__}: {report.summary()}', path)
    usable = {k: v for k, v in state_dict.items()
              if k in expected and (tuple(v.shape) == tuple(expected[k])
                                    or k.endswith(ADAPTIVE_KEY_SUFFIXES))}
    previous = getattr(model, 'strict_load', None)
    if previous is not None:
        model.strict_load = False  # already checked here (with the file name)
    try:
        model.load_state_dict(usable, strict=False)
    finally:
        if previous is not None:
            model.strict_load = previous
    if not report.ok:
        from mmengine.logging import print_log
        print_log(f'{path}: loaded non-strictly: {report.summary()}', logger='current', level=30)
    dataset_meta = checkpoint_dataset_meta(meta)
    if dataset_meta is not None:
        model.dataset_meta = dataset_meta
    return report


def checkpoint_dataset_meta(meta: Mapping) -> Optional[dict]:
    if not isinstance(meta, Mapping):
        return None
    if isinstance(meta.get('dataset_meta'), Mapping):
        return dict(meta['dataset_meta'])
    if meta.get('CLASSES'):  # mmcv-1.x runners write CLASSES (None when the dataset had none)
        return {'classes': tuple(meta['CLASSES']), 'palette': meta.get('PALETTE')}
    return None


def convert_checkpoint(src, dst, *, trusted: bool = False) -> str:
    """Rewrite ``src`` as ``{'state_dict', 'meta'}`` with plain types only, so that it loads with
    ``weights_only=True`` (including through ``mmseg.apis.init_model``). ``trusted=True`` is needed
    when ``src`` holds arbitrary Python objects. Returns the SHA-256 of ``dst``."""
    state_dict, meta = read_checkpoint(src, trusted=trusted)
    dataset_meta = checkpoint_dataset_meta(meta)
    clean_meta = {'converted_from': os.path.basename(str(src)), 'source_sha256': sha256_file(src)}
    if dataset_meta is not None:
        clean_meta['dataset_meta'] = {
            'classes': [str(c) for c in dataset_meta.get('classes') or ()],
            'palette': [[int(x) for x in p] for p in (dataset_meta.get('palette') or ())],
        }
    torch.save({'state_dict': {k: v.contiguous() for k, v in state_dict.items()},
                'meta': clean_meta}, str(dst))
    return sha256_file(dst)
