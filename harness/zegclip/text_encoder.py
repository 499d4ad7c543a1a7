"""CLIP's text tower, as stored under ``text_encoder.*`` in ZegCLIP checkpoints.

token embedding + positional embedding -> causal transformer -> ``ln_final`` -> the feature at the
end-of-text token (the largest token id) -> ``@ text_projection``. The output is NOT normalised;
callers L2-normalise (see :mod:`harness.zegclip.text_embeddings`).

The shipped ZegCLIP configs never run this module at test time (they read precomputed class
embeddings); it is what computes embeddings for a new vocabulary.
"""
from __future__ import annotations

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

from .clip_layers import LayerNorm, Transformer


@MODELS.register_module()
class ZegCLIPTextEncoder(BaseModule):
    """CLIP text encoder (upstream name: ``CLIPTextEncoder``; renamed because mmseg 1.x already
    registers a different ``CLIPTextEncoder``)."""

    def __init__(self,
                 context_length: int = 77,
                 vocab_size: int = 49408,
                 transformer_width: int = 512,
                 transformer_heads: int = 8,
                 transformer_layers: int = 12,
                 embed_dim: int = 512,
                 attn_impl: str = 'sdpa',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        # Registration order mirrors the upstream state_dict order.
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, transformer_width))
        self.text_projection = nn.Parameter(
            transformer_width ** -0.5 * torch.randn(transformer_width, embed_dim))
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.ln_final = LayerNorm(transformer_width)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads,
                                       causal=True, attn_impl=attn_impl)

    def set_attn_impl(self, impl: str) -> None:
        self.transformer.set_attn_impl(impl)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (N, L) int64 CLIP BPE ids, L <= context_length -> (N, embed_dim)."""
        if tokens.dim() != 2:
            raise ValueError(f'tokens must be (N, L), got shape {tuple(tokens.shape)}')
        n, length = tokens.shape
        if length > self.context_length:
            raise ValueError(f'token length {length} exceeds context_length {self.context_length}')
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.transformer(x)
        x = self.ln_final(x)
        eot = tokens.argmax(dim=-1)
        x = x[torch.arange(n, device=x.device), eot]
        return x @ self.text_projection.to(x.dtype)
