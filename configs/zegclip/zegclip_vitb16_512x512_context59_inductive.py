# ZegCLIP ViT-B/16, 512x512, PASCAL Context 59, inductive.
# NOT FROM UPSTREAM: ZegCLIP released no Context config, split, embeddings or checkpoint. The split is
# the common ZS3Net-style one (see _base_/context59.py); the prompt count (100) and the 15-template
# recipe are our choices. The class text matrix is computed with the checkpoint's own text encoder
# at first use and cached (no upstream .npy exists).
_base_ = ['./_base_/context59.py']

model = dict(
    backbone=dict(num_tokens=100),
    decode_head=dict(num_classes=49),
    class_names={{_base_.class_names}},
    text_embedding=None,
    templates='multi',
    seen_idx={{_base_.seen_idx}},
    unseen_idx={{_base_.unseen_idx}},
    setting='inductive')
