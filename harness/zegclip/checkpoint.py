"""Safe, strict loading of ZegCLIP checkpoints.

* Files: mmcv-1.x runner checkpoints (a dict with ``state_dict``, ``meta`` and maybe
  ``optimizer``), mmengine checkpoints, or plain state dicts. A leading ``module.`` is stripped.
* Safety: ``torch.load(weights_only=True)`` first. Files that need arbitrary unpickling are
  refused unless the caller passes ``trusted=True`` (then ``weights_only=False`` is used); the
  message says what the file asked for (e.g. ``posix.system``) and how to convert a trusted one
  (:func:`describe_load_failure` words torch's refusals, also for the mmseg loader).
* Strictness: names and shapes must match the model exactly; otherwise :class:`CheckpointError`
  with ONE line naming the file, counts and a few names of missing / unexpected / mismatched keys.
* :func:`sha256_file` gives the digest that ``third_party/zegclip/checkpoints.yaml`` records.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
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
    with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": a second line on stderr
        warnings.simplefilter('ignore', UserWarning)
        return torch.load(str(path), map_location=map_location, weights_only=weights_only)


# The advice of a refusal, in terms the user acts on (the protocol key, or a one-off conversion).
TRUST_ADVICE = ("It is not a plain state dict; if you trust the file, set 'weights_only: false' for the model "
                "in the protocol (zegclip-embed: --trusted), or convert it once with "
                "harness.zegclip.checkpoint.convert_checkpoint(src, dst, trusted=True)")


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
    except Exception as exc:  # noqa: BLE001 - refusals, truncated zip, bad magic number, I/O error ...
        problem, refusal = describe_load_failure(path, exc)
        if problem is None:
            raise CheckpointError(_unreadable(exc), path) from None
        if not (refusal and trusted):
            raise CheckpointError(f'{problem}. {TRUST_ADVICE}' if refusal else problem, path) from None
        obj = _load_or_explain(path, map_location)
    return split_checkpoint(obj, path)


def _load_or_explain(path: Path, map_location):
    try:
        return _torch_load(path, False, map_location)
    except Exception as exc:  # noqa: BLE001 - any failure here means the file is unusable
        raise CheckpointError(_unreadable(exc), path) from None


_BLOCKED = re.compile(r'unsupported GLOBAL (\S+) whose module \S+ is blocked')
_UNSUPPORTED = re.compile(r'Unsupported global: GLOBAL (\S+) was not an allowed global')
_OPERAND = re.compile(r'Unsupported operand (\d+)')
_PICKLE_PROTOCOLS = (b'\x02', b'\x03', b'\x04', b'\x05')  # after the PROTO opcode 0x80


def _clip(text: str, limit: int = 80) -> str:
    text = ''.join(c if c.isprintable() else '?' for c in ' '.join(text.split()))
    return text if len(text) <= limit else text[:limit - 3] + '...'


def describe_load_failure(path, exc: BaseException) -> Tuple[Optional[str], bool]:
    """What a failed ``torch.load(weights_only=True)`` of ``path`` means, in a few words, and whether
    it is a refusal that trusting the file would get past: ``(phrase, refusal)``; ``(None, False)``
    when nothing better than torch's own message is known (e.g. a truncated zip archive).

    torch's wording changes between versions (2.13: "Trying to load unsupported GLOBAL posix.system
    whose module posix is blocked", "Unsupported global: GLOBAL numpy...", "Unsupported operand 157"),
    and its message starts with advice to pass ``weights_only=False``; neither reaches the user."""
    text = str(exc)
    try:
        with open(path, 'rb') as f:
            head = f.read(2)
    except OSError:
        head = b''
    # torch.save writes a zip archive (PK..) or, in the legacy format, a protocol-2 pickle
    if not (head.startswith(b'PK') or (head[:1] == b'\x80' and head[1:2] in _PICKLE_PROTOCOLS)):
        return ('not a PyTorch checkpoint (no zip archive or pickle in it: the wrong file, truncated or '
                'corrupt?)'), False
    match = _BLOCKED.search(text) or _UNSUPPORTED.search(text)
    if match:
        name = match.group(1)
        name = name if '.' in name else f'builtins.{name}'  # torch shows builtins.eval as 'eval'
        return f'the file asks to run {_clip(name)} while unpickling; refused', True
    match = _OPERAND.search(text)
    if match:  # an opcode the weights-only unpickler lacks (e.g. protocol 4's FRAME): what does it call?
        risky = [g for g in _pickle_globals(path) if not g.startswith(_PLAIN_GLOBALS)]
        if risky:
            return f'the file asks to run {_clip(risky[0])} while unpickling; refused', True
        return (f'not a PyTorch checkpoint that loads safely (its pickle has opcode {match.group(1)}, which '
                'weights-only loading does not read: a plain pickle, or corrupt?)'), False
    if 'Weights only load failed' in text:  # another refusal: "Can only create new object ...", ...
        return f'weights-only loading refuses it ({_clip(_torch_reason(text), 120)})', True
    return None, False


# Globals of any state dict torch.save writes (tensors, storages, OrderedDict, bytes).
_PLAIN_GLOBALS = ('torch.', 'collections.OrderedDict', '_codecs.encode')


def _pickle_globals(path, limit: int = 64 << 20) -> List[str]:
    """The globals (module.name) a checkpoint's pickle refers to, in order, read with pickletools
    (which parses opcodes and runs nothing): data.pkl of a zip archive, or the leading pickles of a
    legacy file. Empty when the pickle cannot be parsed."""
    import io
    import pickletools
    import zipfile

    found: List[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith('data.pkl')]
                if not names or archive.getinfo(names[0]).file_size > limit:
                    return found
                stream = io.BytesIO(archive.read(names[0]))
        else:
            with open(path, 'rb') as f:
                stream = io.BytesIO(f.read(limit))
        for _ in range(5):  # a legacy file: magic number, protocol, sys info, the object, storage keys
            strings: List[str] = []
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name == 'GLOBAL':
                    found.append(str(arg).replace(' ', '.'))
                elif opcode.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
                elif isinstance(arg, str):
                    strings.append(arg)
            if stream.tell() >= len(stream.getbuffer()):
                break
    except Exception:  # noqa: BLE001 - garbage after the pickles, a damaged archive ...
        pass
    return found


def _torch_reason(text: str) -> str:
    """torch's refusal without its advice (re-run with weights_only=False, file an issue, docs)."""
    text = text.split('WeightsUnpickler error:')[-1]
    lines = [line.strip() for line in text.splitlines()]
    noise = ('Weights only load failed', 'weights_only', 'Please file an issue', 'Check the documentation')
    return ' '.join(line for line in lines if line and not any(n in line for n in noise)) or 'no reason given'


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
