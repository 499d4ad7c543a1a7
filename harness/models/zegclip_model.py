"""ZegCLIP (Zhou et al., CVPR 2023) through zeg-eval's port (harness.zegclip): an mmseg model whose
checkpoint is read by the port's loader (upstream key names, the text tower, trusted pickles).

    models:
      - name: zegclip_coco_inductive
        config: configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py
        checkpoint: ${ZEGCLIP_COCO_INDUCTIVE:-checkpoints/zegclip_coco_inductive.pth}
        loader: zegclip
        cfg_options: {model.class_names: "${dataset.classes}", model.text_embedding: null}

Every other key is an mmseg model's (harness.models.mmseg_model).
"""
from __future__ import annotations

from harness.errors import UserError
from harness.models.mmseg_model import MmsegKind


def _load_zegclip_weights(spec, model) -> None:
    try:
        from harness.zegclip.checkpoint import load_zegclip_checkpoint
    except ImportError as exc:
        raise UserError(f"model '{spec.name}': loader 'zegclip' is not available ({type(exc).__name__}: {exc})") \
            from None
    load_zegclip_checkpoint(model, spec.checkpoint, strict=True, trusted=not spec.weights_only)


class ZegclipKind(MmsegKind):
    name = "zegclip"
    loader = "zegclip"

    def weights_loader(self):
        return _load_zegclip_weights
