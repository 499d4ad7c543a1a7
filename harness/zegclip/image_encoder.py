"""ZegCLIP's image encoder: a CLIP ViT with deep visual prompt tuning (VPT-deep).

Behaviour (FACTS §2.1), for a B x 3 x H x W crop with patch size p:
  * patch tokens from ``conv1`` (no bias); the CLS token gets ``class_embedding`` twice (once as
    the token, once added to its positional row), reproducing the upstream quirk;
  * the positional grid is bilinearly resized (align_corners=False) to the actual token grid;
  * ``ln_pre``, then ``num_tokens`` shallow prompts (``prompt_proj(prompt_embeddings)``) go right
    after CLS; before blocks 1..total_d_layer these prompt positions are replaced by
    ``prompt_proj(deep_prompt_embeddings[i - 1])``;
  * after the last block: ``prompt_norm`` (eps 1e-6), ``ln_post`` and ``@ proj`` on all tokens;
  * returns ``(patch_map, global_embedding)``: B x D x H/p x W/p and B x D, both L2-normalised.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

from .clip_layers import LayerNorm, Transformer


@MODELS.register_module()
class ZegCLIPVisionTransformer(BaseModule):
    """VPT-deep CLIP ViT (upstream name: ``VPTCLIPVisionTransformer``).

    Args:
        input_resolution: training resolution; sets the positional grid (input_resolution / patch_size).
        patch_size, width, layers, heads, output_dim: CLIP ViT geometry (ViT-B/16: 16, 768, 12, 12, 512).
        num_tokens: prompt tokens per layer (100 for COCO-Stuff, 10 for VOC).
        prompt_dim: width of the prompt embeddings before ``prompt_proj``.
        total_d_layer: number of deep prompt layers (blocks 1..total_d_layer get fresh prompts).
        prompt_drop: dropout on the projected prompts (training only).
        attn_impl: 'sdpa' (scaled_dot_product_attention) or 'math' (explicit softmax).
        drop_path_rate, out_indices, get_embeddings: accepted for config compatibility; the upstream
            model never applies drop path and only the last block's output is used.
    """

    def __init__(self,
                 input_resolution: int = 512,
                 patch_size: int = 16,
                 width: int = 768,
                 layers: int = 12,
                 heads: int = 12,
                 output_dim: int = 512,
                 num_tokens: int = 100,
                 prompt_dim: int = 768,
                 total_d_layer: int = 11,
                 prompt_drop: float = 0.0,
                 attn_impl: str = 'sdpa',
                 drop_path_rate: float = 0.0,
                 out_indices=(11, ),
                 get_embeddings: bool = True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not get_embeddings:
            raise ValueError('ZegCLIPVisionTransformer only supports get_embeddings=True')
        if not 0 <= total_d_layer <= layers - 1:
            raise ValueError(f'total_d_layer must be in [0, {layers - 1}], got {total_d_layer}')
        if input_resolution % patch_size:
            raise ValueError('input_resolution must be a multiple of patch_size')
        self.input_resolution = input_resolution
        self.patch_size = patch_size
        self.width = width
        self.output_dim = output_dim
        self.num_tokens = num_tokens
        self.total_d_layer = total_d_layer
        self.drop_path_rate = drop_path_rate  # kept for config compatibility; unused upstream too
        self.out_indices = tuple(out_indices)
        grid = input_resolution // patch_size
        scale = width ** -0.5

        # Registration order mirrors the upstream state_dict order.
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        val = math.sqrt(6.0 / float(3 * patch_size * patch_size + prompt_dim))
        self.prompt_embeddings = nn.Parameter(torch.empty(1, num_tokens, prompt_dim).uniform_(-val, val))
        self.deep_prompt_embeddings = nn.Parameter(
            torch.empty(total_d_layer, num_tokens, prompt_dim).uniform_(-val, val))
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.ln_pre = LayerNorm(width)
        self.ln_post = LayerNorm(width)
        self.prompt_norm = LayerNorm(width, eps=1e-6)
        self.prompt_proj = nn.Linear(prompt_dim, width)
        self.transformer = Transformer(width, layers, heads, causal=False, attn_impl=attn_impl)
        self.prompt_dropout = nn.Dropout(prompt_drop)

    def set_attn_impl(self, impl: str) -> None:
        self.transformer.set_attn_impl(impl)

    def _positional_embedding(self, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """(1 + h*w, width) table: CLS row (+ class_embedding, the quirk) and the resized grid."""
        pos = self.positional_embedding
        cls_row = pos[:1] + self.class_embedding  # upstream adds class_embedding to the CLS row
        grid = pos[1:]
        side = int(round(math.sqrt(grid.shape[0])))
        if (h, w) != (side, side):
            grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid.float(), size=(h, w), mode='bilinear', align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(h * w, -1)
        return torch.cat([cls_row, grid.to(pos.dtype)], dim=0).to(dtype)

    def _prompts(self, embeddings: torch.Tensor, batch: int, dtype: torch.dtype) -> torch.Tensor:
        prompts = self.prompt_dropout(self.prompt_proj(embeddings.to(dtype)))
        return prompts.expand(batch, -1, -1)

    def forward(self, x: torch.Tensor):
        b = x.shape[0]
        # Under autocast the convolution returns half precision; the residual stream is kept in
        # the parameters' dtype (float32 unless the model was converted) for accuracy.
        x = self.conv1(x).to(self.class_embedding.dtype)  # B, width, h, w
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)  # B, h*w, width
        cls = self.class_embedding.to(x.dtype).expand(b, 1, -1)
        x = torch.cat([cls, x], dim=1) + self._positional_embedding(h, w, x.dtype)
        x = self.ln_pre(x)

        t = self.num_tokens
        x = torch.cat([x[:, :1], self._prompts(self.prompt_embeddings[0], b, x.dtype), x[:, 1:]], dim=1)
        for i, blk in enumerate(self.transformer.resblocks):
            if 1 <= i <= self.total_d_layer:
                deep = self._prompts(self.deep_prompt_embeddings[i - 1], b, x.dtype)
                x = torch.cat([x[:, :1], deep, x[:, 1 + t:]], dim=1)
            x = blk(x)

        x = self.ln_post(self.prompt_norm(x))
        x = x @ self.proj.to(x.dtype)
        global_embedding = F.normalize(x[:, 0], dim=-1)
        patches = x[:, -h * w:].transpose(1, 2).reshape(b, -1, h, w)
        patch_map = F.normalize(patches, dim=1)
        return patch_map, global_embedding
