"""CLIP transformer building blocks shared by the image and the text encoder.

Parameter names follow the CLIP / ZegCLIP checkpoint layout (``attn.in_proj_weight``,
``ln_1``, ``mlp.c_fc`` ...), so official weights load by name. Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` (``attn_impl='sdpa'``); ``attn_impl='math'``
spells the same computation out (explicit softmax) and serves as the eager fp32 baseline.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

ATTN_IMPLS = ('sdpa', 'math')


class LayerNorm(nn.LayerNorm):
    """LayerNorm that always normalises in float32 and returns the input dtype (as CLIP does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), CLIP's activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def multi_head_attention(x: torch.Tensor, attn: nn.MultiheadAttention, *, causal: bool = False,
                         impl: str = 'sdpa') -> torch.Tensor:
    """Self-attention of batch-first tokens ``x`` (B, N, C) with the weights of ``attn``.

    Equivalent to ``attn(x, x, x, need_weights=False)`` on sequence-first input (with an upper
    triangular -inf mask when ``causal``), without the layout transposes.
    """
    b, n, c = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, N, head_dim)
    if impl == 'sdpa':
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    elif impl == 'math':
        logits = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-2, -1)
        if causal:
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
            logits = logits.masked_fill(mask, float('-inf'))
        out = logits.softmax(dim=-1) @ v
    else:
        raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got {impl!r}')
    out = out.transpose(1, 2).reshape(b, n, c)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)); x + mlp(ln_2(x)). Tokens are batch-first."""

    def __init__(self, width: int, heads: int, causal: bool = False, attn_impl: str = 'sdpa'):
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} is not divisible by heads {heads}')
        # Registration order mirrors the upstream state_dict order: attn, ln_1, ln_2, mlp.
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, width * 4)),
            ('gelu', QuickGELU()),
            ('c_proj', nn.Linear(width * 4, width)),
        ]))
        self.causal = causal
        self.attn_impl = attn_impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + multi_head_attention(self.ln_1(x), self.attn, causal=self.causal,
                                     impl=self.attn_impl)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of ``layers`` residual attention blocks under the name ``resblocks``."""

    def __init__(self, width: int, layers: int, heads: int, causal: bool = False,
                 attn_impl: str = 'sdpa'):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, causal, attn_impl) for _ in range(layers)])

    def set_attn_impl(self, impl: str) -> None:
        if impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got {impl!r}')
        for blk in self.resblocks:
            blk.attn_impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x)
        return x
