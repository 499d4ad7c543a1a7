# A tiny mmseg 1.x model for the runner's tests: random weights, checks the plumbing, not accuracy.
# 12 classes (the generated sample); override with cfg_options {model.decode_head.num_classes: N}.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size_divisor=8)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c', depth=18, stem_channels=8, base_channels=8, num_stages=4, out_indices=(3, ),
        dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg, norm_eval=False, contract_dilation=True),
    decode_head=dict(
        type='FCNHead', in_channels=64, in_index=0, channels=16, num_convs=1, concat_input=False,
        dropout_ratio=0.0, num_classes=12, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 192), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
