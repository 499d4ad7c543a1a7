# ZegCLIP ViT-B/16, 512x512, voc12-20, inductive. Port of the upstream model (ZiqinZhou66/ZegCLIP @ 9ba4bb5).
# Inductive zero-shot: trained on seen classes only; at test the sigmoid scores of seen
# classes are lowered by 0.1 (FACTS §2.3), all classes compete in the argmax.
# Official checkpoint: see third_party/zegclip/checkpoints.yaml.
_base_ = ['./_base_/voc12_20.py']

model = dict(
    backbone=dict(num_tokens=10),
    decode_head=dict(num_classes=15),  # training classes; sizes only the (adaptive) loss buffer
    class_names={{_base_.class_names}},
    # upstream class text matrix (single template recipe), MIT, see third_party/zegclip/ATTRIBUTION.md
    text_embedding='third_party/zegclip/text_embedding_voc12_single.npy',
    templates='single',
    seen_idx={{_base_.seen_idx}},
    unseen_idx={{_base_.unseen_idx}},
    setting='inductive')
