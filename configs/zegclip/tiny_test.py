# Tiny ZegCLIP for tests: same structure as ViT-B/16 (VPT-deep ViT, CLIP text encoder, 3-layer
# decoder), narrow and shallow so that it builds and runs on CPU in milliseconds. Random weights;
# the class text matrix is computed with the (tiny) text encoder at first use.
_base_ = ['./_base_/zegclip_vitb16_512.py']

crop_size = (64, 64)
model = dict(
    backbone=dict(input_resolution=64, patch_size=8, width=32, layers=3, heads=4, output_dim=24,
                  num_tokens=4, prompt_dim=32, total_d_layer=2, out_indices=[2]),
    text_encoder=dict(context_length=77, vocab_size=49408, transformer_width=16,
                      transformer_heads=2, transformer_layers=2, embed_dim=24),
    decode_head=dict(img_size=64, in_channels=24, channels=24, num_classes=4, embed_dims=24,
                     num_layers=3, num_heads=4, dim_feedforward=48),
    class_names=('cat', 'dog', 'grass', 'sky', 'road', 'tree'),
    text_embedding=None,
    templates='single',
    seen_idx=[0, 2, 3, 5],
    unseen_idx=[1, 4],
    setting='inductive',
    window_batch_size=4,
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(48, 48)))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
