"""ZegCLIP (Zhou et al., CVPR 2023) ported clean-room to mmsegmentation 1.x.

Importing this package registers in mmseg's ``MODELS`` registry:
``ZegCLIP`` (segmentor), ``ZegCLIPVisionTransformer`` (VPT-deep CLIP ViT image encoder),
``ZegCLIPTextEncoder`` (CLIP text tower), ``ZegCLIPHead`` (decode head) and ``ZegCLIPLoss``
(placeholder holding the loss buffer of the checkpoints). Configs in ``configs/zegclip/`` import it
through ``custom_imports``, so ``mmseg.apis.init_model`` / ``inference_model`` work directly.
See docs/zegclip.md.
"""
from .checkpoint import (
                         CheckpointError,
                         LoadReport,
                         compare_state_dict,
                         convert_checkpoint,
                         load_zegclip_checkpoint,
                         read_checkpoint,
                         sha256_file,
)
from .decode_head import ZegCLIPHead, ZegCLIPLoss
from .image_encoder import ZegCLIPVisionTransformer
from .segmentor import ZegCLIP, slide_windows
from .text_embeddings import (
                         TEMPLATE_SETS,
                         compute_text_embeddings,
                         encode_class_names,
                         tokenize,
)
from .text_encoder import ZegCLIPTextEncoder

__all__ = [
    'ZegCLIP', 'ZegCLIPVisionTransformer', 'ZegCLIPTextEncoder', 'ZegCLIPHead', 'ZegCLIPLoss',
    'CheckpointError', 'LoadReport', 'compare_state_dict', 'convert_checkpoint',
    'load_zegclip_checkpoint', 'read_checkpoint', 'sha256_file', 'slide_windows',
    'TEMPLATE_SETS', 'compute_text_embeddings', 'encode_class_names', 'tokenize',
]
