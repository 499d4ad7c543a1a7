# ZegCLIP ViT-B/16, 512x512, coco-stuff171, fully. Port of the upstream model (ZiqinZhou66/ZegCLIP @ 9ba4bb5).
# Fully supervised reference: trained on all classes; no seen-class shift at test.
# Official checkpoint: see third_party/zegclip/checkpoints.yaml.
_base_ = ['./_base_/coco_stuff171.py']

model = dict(
    backbone=dict(num_tokens=100),
    decode_head=dict(num_classes=171),  # training classes; sizes only the (adaptive) loss buffer
    class_names={{_base_.class_names}},
    # upstream class text matrix (multi template recipe), MIT, see third_party/zegclip/ATTRIBUTION.md
    text_embedding='third_party/zegclip/text_embedding_coco_multi.npy',
    templates='multi',
    seen_idx={{_base_.seen_idx}},
    unseen_idx={{_base_.unseen_idx}},
    setting='fully')
