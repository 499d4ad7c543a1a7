"""The ZegCLIP segmentor on mmseg 1.x (FACTS §2, §2.4).

* ``encode_decode``: image encoder -> class text matrix -> decode head -> bilinear resize of the
  mask logits to the crop size -> sigmoid -> minus ``seen_shift`` on seen classes (0.1 for the
  inductive setting, 0 for transductive / fully supervised). Scores lie in [-shift, 1].
* ``slide_inference``: windows as mmseg computes them (crop 512, stride 426), run as batches of
  ``window_batch_size`` crops, summed and divided by per-pixel counts over ALL text classes.
* The class text matrix is a non-persistent buffer: read from a .npy file, or computed with the
  text encoder from ``class_names`` + ``templates`` on first use (after weights are loaded) and
  optionally cached to that .npy path.
* Loading weights into this model is strict by default (``strict_load``), also through
  ``mmseg.apis.init_model``: a state dict whose names or shapes differ raises
  :class:`harness.zegclip.checkpoint.CheckpointError` with a one-line report.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.registry import MODELS

from .checkpoint import CheckpointError, compare_state_dict

SETTINGS = ('inductive', 'transductive', 'fully')
_AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
               'fp16': torch.float16, 'float16': torch.float16}


def resolve_data_path(path: Union[str, os.PathLike]) -> Path:
    """A data path as given; if relative and absent, relative to the shipped defaults' root (the
    checkout, or the installed package's copy: harness.shipped), where ``third_party/...`` lies."""
    from harness.shipped import root

    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    candidate = root() / p
    return candidate if candidate.exists() else p


def slide_windows(h_img: int, w_img: int, crop_size, stride) -> List[tuple]:
    """(y1, y2, x1, x2) of mmseg's sliding windows, row-major."""
    h_crop, w_crop = crop_size
    h_stride, w_stride = stride
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    windows = []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2 = min(hi * h_stride + h_crop, h_img)
            x2 = min(wi * w_stride + w_crop, w_img)
            windows.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return windows


@MODELS.register_module()
class ZegCLIP(EncoderDecoder):
    """ZegCLIP (upstream name ``ZegCLIP``) as an mmseg 1.x segmentor.

    Args:
        backbone, text_encoder, decode_head: module configs (``ZegCLIPVisionTransformer``,
            ``ZegCLIPTextEncoder``, ``ZegCLIPHead``).
        class_names: all test classes in label order.
        text_embedding: .npy (C x D) of class embeddings (e.g. the upstream files); relative paths
            are also looked up in the shipped defaults (harness.shipped). If None, the matrix is computed from
            ``class_names`` and ``templates`` with the text encoder at first use (after weights
            are loaded) and cached under ``text_embedding_cache_dir`` (default
            ``zegclip_text/`` in zeg-eval's cache folder, harness.cache), keyed by the text-encoder
            weights, the names and the templates.
        templates: 'single', 'multi' or a list of templates, for computing the matrix.
        seen_idx, unseen_idx: class ids of the zero-shot split (informative; ``seen_idx`` also
            selects the channels that get ``seen_shift``).
        setting: 'inductive' | 'transductive' | 'fully'.
        seen_shift: subtracted from the sigmoid scores of seen classes; default 0.1 if inductive,
            else 0.
        window_batch_size: crops per forward pass in slide inference.
        amp_dtype: None (fp32), 'bf16' or 'fp16': autocast for encoder and decoder (the final
            logits, resize and sigmoid stay float32).
        strict_load: raise on state dicts that do not match (names or shapes).
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: dict,
                 decode_head: dict,
                 class_names: Optional[Sequence[str]] = None,
                 text_embedding: Optional[str] = None,
                 templates: Union[str, Sequence[str]] = 'multi',
                 seen_idx: Optional[Sequence[int]] = None,
                 unseen_idx: Optional[Sequence[int]] = None,
                 setting: str = 'inductive',
                 seen_shift: Optional[float] = None,
                 window_batch_size: int = 4,
                 amp_dtype: Optional[str] = None,
                 strict_load: bool = True,
                 text_embedding_cache_dir: Optional[str] = None,
                 neck=None,
                 auxiliary_head=None,
                 train_cfg=None,
                 test_cfg=None,
                 data_preprocessor=None,
                 pretrained=None,
                 init_cfg=None):
        if neck is not None or auxiliary_head is not None:
            raise ValueError('ZegCLIP has no neck or auxiliary head')
        if pretrained is not None:
            raise ValueError('pretrained is not supported; load a ZegCLIP checkpoint instead')
        if setting not in SETTINGS:
            raise ValueError(f'setting must be one of {SETTINGS}, got {setting!r}')
        if amp_dtype is not None and amp_dtype not in _AMP_DTYPES:
            raise ValueError(f'amp_dtype must be None or one of {sorted(_AMP_DTYPES)}')
        # Skip EncoderDecoder.__init__ to build in the checkpoint order: backbone, text encoder,
        # decode head.
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.text_encoder = MODELS.build(text_encoder)
        self._init_decode_head(decode_head)
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))

        self.setting = setting
        self.templates = templates
        self.class_names = list(class_names) if class_names is not None else None
        self.text_embedding_path = None if text_embedding is None else str(text_embedding)
        self.text_embedding_cache_dir = text_embedding_cache_dir
        self.window_batch_size = max(int(window_batch_size), 1)
        self.amp_dtype = amp_dtype
        self.strict_load = strict_load

        matrix = self._read_text_embedding_file()
        if matrix is None:
            if self.class_names is None:
                raise ValueError('give text_embedding (a .npy file) or class_names')
            n_classes = len(self.class_names)
            matrix = torch.zeros(n_classes, self.text_encoder.embed_dim)
            self._text_source = 'encoder'  # computed at first use
            self._text_ready = False
        else:
            n_classes = matrix.shape[0]
            if self.class_names is not None and len(self.class_names) != n_classes:
                raise ValueError(f'{self.text_embedding_path}: {n_classes} rows but '
                                 f'{len(self.class_names)} class_names')
            self._text_source = 'file'
            self._text_ready = True
        self.register_buffer('class_embeddings', matrix, persistent=False)

        self.seen_idx = (list(range(n_classes)) if seen_idx is None
                         else sorted(int(i) for i in seen_idx))
        self.unseen_idx = [] if unseen_idx is None else sorted(int(i) for i in unseen_idx)
        bad = [i for i in self.seen_idx + self.unseen_idx if not 0 <= i < n_classes]
        if bad or set(self.seen_idx) & set(self.unseen_idx):
            raise ValueError(f'seen/unseen ids must be disjoint and in [0, {n_classes}): bad {bad[:5]}')
        if seen_shift is None:
            seen_shift = 0.1 if setting == 'inductive' else 0.0
        self.seen_shift = float(seen_shift)
        shift = torch.zeros(n_classes)
        shift[self.seen_idx] = self.seen_shift
        self.register_buffer('score_shift', shift, persistent=False)

        # Segmentor-level class count: every row of the text matrix is scored.
        self.num_classes = n_classes
        self.out_channels = n_classes
        self.register_load_state_dict_pre_hook(self._check_incoming_state_dict)

    # ------------------------------------------------------------------ text side
    def _read_text_embedding_file(self) -> Optional[torch.Tensor]:
        if self.text_embedding_path is None:
            return None
        path = resolve_data_path(self.text_embedding_path)
        if not path.is_file():
            raise FileNotFoundError(f'{self.text_embedding_path}: text embedding file not found '
                                    '(or leave text_embedding=None and give class_names to compute it)')
        array = np.load(path)
        if array.ndim != 2 or array.shape[1] != self.text_encoder.embed_dim:
            raise ValueError(f'{path}: expected (C, {self.text_encoder.embed_dim}), got {array.shape}')
        # float16 in the upstream files; promoted to float32 as upstream does when it meets
        # the image features.
        return torch.from_numpy(np.ascontiguousarray(array)).float()

    def get_class_embeddings(self) -> torch.Tensor:
        """(C, D) float32 class text matrix; computed with the text encoder if not read from file."""
        if not self._text_ready:
            from .text_embeddings import cached_class_embeddings
            matrix = cached_class_embeddings(self.text_encoder, self.class_names, self.templates,
                                             cache_dir=self.text_embedding_cache_dir)
            self.class_embeddings.copy_(matrix.to(self.class_embeddings))
            self._text_ready = True
        return self.class_embeddings

    def set_class_embeddings(self, matrix: torch.Tensor, seen_idx: Optional[Sequence[int]] = None):
        """Replace the class text matrix (C', D) (e.g. a new vocabulary); classes not in
        ``seen_idx`` get no shift (all of them when ``seen_idx`` is None)."""
        matrix = torch.as_tensor(matrix).float().to(self.class_embeddings.device)
        if matrix.dim() != 2 or matrix.shape[1] != self.class_embeddings.shape[1]:
            raise ValueError(f'expected (C, {self.class_embeddings.shape[1]}), got {tuple(matrix.shape)}')
        self.class_embeddings = matrix
        self._text_source = 'user'
        self._text_ready = True
        shift = torch.zeros(matrix.shape[0], device=matrix.device)
        self.seen_idx = sorted(int(i) for i in seen_idx) if seen_idx is not None else []
        self.unseen_idx = [i for i in range(matrix.shape[0]) if i not in set(self.seen_idx)]
        shift[self.seen_idx] = self.seen_shift
        self.score_shift = shift
        self.num_classes = self.out_channels = matrix.shape[0]

    # ------------------------------------------------------------------ loading
    def _check_incoming_state_dict(self, module, state_dict, prefix, local_metadata, strict,
                                   missing_keys, unexpected_keys, error_msgs):
        if self._text_source == 'encoder':
            self._text_ready = False  # new text-encoder weights: recompute at next use
        if not self.strict_load:
            return
        incoming = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        expected = {k: v.shape for k, v in self.state_dict().items()}
        report = compare_state_dict(expected, incoming)
        if not report.ok:
            raise CheckpointError(f'state_dict does not match {type(self).__name__} '
                                  f'(strict_load=True): {report.summary()}')

    # ------------------------------------------------------------------ inference
    def _autocast(self, device: torch.device):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=_AMP_DTYPES[self.amp_dtype])

    def extract_feat(self, inputs: torch.Tensor):
        """(patch_map B x D x h x w, global_embedding B x D)."""
        return self.backbone(inputs)

    def mask_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Decode-head mask logits at token resolution (B x C x h x w, float32)."""
        text = self.get_class_embeddings()
        with self._autocast(inputs.device):
            feats = self.extract_feat(inputs)
            return self.decode_head(feats, text).float()

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas=None) -> torch.Tensor:
        """Scores (B x C x H x W): sigmoid of the resized mask logits minus the seen shift."""
        logits = self.mask_logits(inputs)
        logits = F.interpolate(logits, size=inputs.shape[2:], mode='bilinear',
                               align_corners=self.align_corners)
        scores = logits.sigmoid_()
        return scores.sub_(self.score_shift.to(scores.dtype).view(1, -1, 1, 1))

    def slide_inference(self, inputs: torch.Tensor, batch_img_metas=None) -> torch.Tensor:
        b, _, h_img, w_img = inputs.shape
        windows = slide_windows(h_img, w_img, self.test_cfg.crop_size, self.test_cfg.stride)
        preds = inputs.new_zeros((b, self.out_channels, h_img, w_img), dtype=torch.float32)
        count = inputs.new_zeros((1, 1, h_img, w_img), dtype=torch.float32)
        # Windows of one image share a shape, so they run as one batch (chunked).
        per_pass = max(self.window_batch_size // b, 1)
        for start in range(0, len(windows), per_pass):
            chunk = windows[start:start + per_pass]
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk], dim=0)
            scores = self.encode_decode(crops, batch_img_metas)
            for j, (y1, y2, x1, x2) in enumerate(chunk):
                preds[:, :, y1:y2, x1:x2] += scores[j * b:(j + 1) * b]
                count[:, :, y1:y2, x1:x2] += 1
        return preds / count

    def inference(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode == 'whole':
            return self.encode_decode(inputs, batch_img_metas)
        raise ValueError(f'test_cfg.mode must be "slide" or "whole", got {mode!r}')

    def _forward(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        return self.encode_decode(inputs)

    def loss(self, inputs, data_samples):
        raise NotImplementedError('ZegCLIP training is not ported (inference only)')
