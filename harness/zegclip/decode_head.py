"""ZegCLIP's decode head: relationship descriptor + cross-attention decoder (FACTS §2.3).

For a patch map F (B x D x h x w, unit norm), a global embedding g (B x D) and class text
embeddings T (C x D):
  * queries q0 = q_proj(concat(g * t_c, t_c)) (B x C x D);
  * ``num_layers`` decoder layers, each: cross-attention of the queries to the h*w patch tokens
    (no self-attention), q <- norm2(q + attn), q <- norm3(q + FFN(q)) (post-norm, ReLU);
  * the mask logits are the LAST layer's pre-softmax attention logits averaged over heads
    (B x C x h*w), reshaped to B x C x h x w. There is no separate class branch.

At test time only the last layer's logits matter, so the fast path runs layers 0..n-2 through
scaled_dot_product_attention and the last layer only up to its logits, in float32.
"""
from __future__ import annotations

import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn


class ZegCLIPCrossAttention(nn.Module):
    """Multi-head cross-attention with separate q/k/v/proj projections (checkpoint names ``q``,
    ``k``, ``v``, ``proj``) that can also return the pre-softmax logits averaged over heads."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def logits(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Head-averaged pre-softmax logits (B x Q x N) only, computed in float32."""
        with torch.autocast(device_type=query.device.type, enabled=False):
            q = self._split(F.linear(query.float(), self.q.weight.float(), self.q.bias.float()))
            k = self._split(F.linear(memory.float(), self.k.weight.float(), self.k.bias.float()))
            return ((q @ k.transpose(-2, -1)) * self.scale).mean(dim=1)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, need_logits: bool = False,
                attn_impl: str = 'sdpa') -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        b, nq, c = query.shape
        q, k, v = self._split(self.q(query)), self._split(self.k(memory)), self._split(self.v(memory))
        logits = None
        if need_logits or attn_impl == 'math':
            attn = (q @ k.transpose(-2, -1)) * self.scale  # B, heads, Q, N
            if need_logits:
                logits = attn.mean(dim=1)
            out = attn.softmax(dim=-1) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = self.proj(out.transpose(1, 2).reshape(b, nq, c))
        return out, logits


class ZegCLIPDecoderLayer(nn.Module):
    """Post-norm decoder layer without self-attention.

    ``self_attn`` and ``norm1`` exist only so that the checkpoint keys load; upstream never calls
    them either.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        # Registration order mirrors the upstream state_dict order.
        self.self_attn = nn.MultiheadAttention(d_model, nhead)  # unused (checkpoint compatibility)
        self.multihead_attn = ZegCLIPCrossAttention(d_model, nhead)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)  # unused (checkpoint compatibility)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, need_logits: bool = False,
                attn_impl: str = 'sdpa') -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        out, logits = self.multihead_attn(query, memory, need_logits, attn_impl)
        query = self.norm2(query + self.dropout2(out))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(query))))
        query = self.norm3(query + self.dropout3(ffn))
        return query, logits


class ZegCLIPDecoder(nn.Module):
    """Holds the layers under ``layers`` (checkpoint keys ``decoder_1.layers.{j}.*``)."""

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int,
                 dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([
            ZegCLIPDecoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_layers)
        ])


@MODELS.register_module()
class ZegCLIPHead(BaseDecodeHead):
    """Decode head of ZegCLIP (upstream name: ``ATMSingleHeadSeg``).

    Args:
        img_size: training crop size (kept for config compatibility; the segmentor resizes the
            mask logits to the actual crop size).
        in_channels: width of the image features (= CLIP embedding width, 512 for ViT-B/16).
        channels: decoder width (must equal ``embed_dims``).
        num_classes: classes seen in training (156 for the COCO-Stuff inductive setting). Only
            sizes the loss buffer: the classes scored at test time are the rows of the text
            embedding matrix handed in by the segmentor.
        embed_dims, num_layers, num_heads: decoder geometry (512, 3, 8).
        dim_feedforward, decoder_dropout: FFN width and dropout (2048, 0.1).
        use_stages, use_proj: only the upstream values (1, False) are supported.
        attn_impl: 'sdpa' or 'math' for layers whose logits are not needed.
    """

    def __init__(self,
                 img_size: int = 512,
                 in_channels: int = 512,
                 channels: int = 512,
                 num_classes: int = 156,
                 embed_dims: int = 512,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 dim_feedforward: int = 2048,
                 decoder_dropout: float = 0.1,
                 use_stages: int = 1,
                 use_proj: bool = False,
                 attn_impl: str = 'sdpa',
                 loss_decode=None,
                 init_cfg=None,
                 **kwargs):
        if use_stages != 1 or use_proj:
            raise NotImplementedError('ZegCLIPHead supports use_stages=1, use_proj=False only '
                                      '(the configuration of every released ZegCLIP model)')
        if in_channels != embed_dims or channels != embed_dims:
            raise ValueError('in_channels, channels and embed_dims must be equal without use_proj')
        if loss_decode is None:
            loss_decode = dict(type='ZegCLIPLoss', num_classes=num_classes)
        kwargs.setdefault('dropout_ratio', 0.0)
        with warnings.catch_warnings():  # mmseg's "build_loss would be deprecated" notice
            warnings.filterwarnings('ignore', message='.*build_loss.*deprecated')
            super().__init__(in_channels=in_channels, channels=channels, num_classes=num_classes,
                             loss_decode=loss_decode, init_cfg=init_cfg, **kwargs)
        # mmseg's 1x1 classifier does not exist in ZegCLIP: masks come from attention logits.
        del self.conv_seg
        loss = self.loss_decode
        del self.loss_decode  # re-registered last, as in the upstream state_dict order
        self.img_size = img_size
        self.embed_dims = embed_dims
        self.attn_impl = attn_impl
        self.q_proj = nn.Linear(embed_dims * 2, embed_dims)
        self.decoder_1 = ZegCLIPDecoder(num_layers, embed_dims, num_heads, dim_feedforward,
                                        decoder_dropout)
        self.loss_decode = loss

    def set_attn_impl(self, impl: str) -> None:
        self.attn_impl = impl

    @staticmethod
    def queries_from_text(q_proj: nn.Linear, global_embedding: torch.Tensor,
                          text_embeddings: torch.Tensor) -> torch.Tensor:
        """Relationship descriptor: q_proj(concat(g_b * t_c, t_c)) -> B x C x D."""
        b = global_embedding.shape[0]
        text = text_embeddings.to(global_embedding.dtype)
        if text.dim() == 2:
            text = text.unsqueeze(0).expand(b, -1, -1)
        rel = torch.cat([global_embedding.unsqueeze(1) * text, text], dim=-1)
        return q_proj(rel)

    def forward(self, inputs: Sequence[torch.Tensor], text_embeddings: torch.Tensor,
                return_all: bool = False):
        """inputs: (patch_map B x D x h x w, global_embedding B x D); text_embeddings: C x D
        (or B x C x D).

        Returns the mask logits B x C x h x w (float32). With ``return_all=True`` returns
        ``(mask_logits, [per-layer logits B x C x h*w], final queries)`` running every layer fully.
        """
        patch_map, global_embedding = inputs[0], inputs[1]
        b, d, h, w = patch_map.shape
        memory = patch_map.flatten(2).transpose(1, 2)  # B, h*w, D
        query = self.queries_from_text(self.q_proj, global_embedding, text_embeddings)
        layers = self.decoder_1.layers
        if return_all:
            per_layer: List[torch.Tensor] = []
            for layer in layers:
                query, logits = layer(query, memory, need_logits=True, attn_impl=self.attn_impl)
                per_layer.append(logits)
            return per_layer[-1].float().reshape(b, -1, h, w), per_layer, query
        for layer in layers[:-1]:
            query, _ = layer(query, memory, need_logits=False, attn_impl=self.attn_impl)
        logits = layers[-1].multihead_attn.logits(query, memory)
        return logits.reshape(b, -1, h, w)

    def loss(self, inputs, batch_data_samples, train_cfg):
        raise NotImplementedError('ZegCLIP training is not ported; this head is for inference '
                                  'with released or converted checkpoints')


class _SetCriterionBuffer(nn.Module):
    """Holds ``empty_weight`` (num_classes + 1 ones, the last = no-object weight) as in the
    upstream loss; its length depends on the training classes, so a checkpoint's buffer of another
    length replaces it on load (it has no effect on inference)."""

    def __init__(self, num_classes: int, no_object_weight: float):
        super().__init__()
        weight = torch.ones(num_classes + 1)
        weight[-1] = no_object_weight
        self.register_buffer('empty_weight', weight)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        key = prefix + 'empty_weight'
        value = state_dict.get(key)
        if (isinstance(value, torch.Tensor) and value.dim() == 1
                and value.shape != self.empty_weight.shape):
            self.empty_weight = torch.empty_like(value, device=self.empty_weight.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


@MODELS.register_module()
class ZegCLIPLoss(nn.Module):
    """Placeholder for upstream's focal + dice set loss: it carries the checkpoint buffer
    ``criterion.empty_weight`` so that official checkpoints load strictly. Not callable."""

    def __init__(self, num_classes: int = 156, no_object_weight: float = 0.1,
                 loss_name: str = 'loss_zegclip'):
        super().__init__()
        self.criterion = _SetCriterionBuffer(num_classes, no_object_weight)
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, *args, **kwargs):
        raise NotImplementedError('ZegCLIP training losses are not ported')
