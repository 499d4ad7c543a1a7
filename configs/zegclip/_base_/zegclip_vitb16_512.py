# ZegCLIP ViT-B/16 at 512x512 (port of the upstream COCO-Stuff model, FACTS §2); dataset configs
# override the vocabulary, the split, the prompt count and the setting.
custom_imports = dict(imports=['harness.zegclip'], allow_failed_imports=False)
default_scope = 'mmseg'

crop_size = (512, 512)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet, RGB
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)

model = dict(
    type='ZegCLIP',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ZegCLIPVisionTransformer',
        input_resolution=512,
        patch_size=16,
        width=768,
        layers=12,
        heads=12,
        output_dim=512,
        num_tokens=100,
        prompt_dim=768,
        total_d_layer=11,
        drop_path_rate=0.1,
        out_indices=[11],
        get_embeddings=True),
    text_encoder=dict(
        type='ZegCLIPTextEncoder',
        context_length=77,
        vocab_size=49408,
        transformer_width=512,
        transformer_heads=8,
        transformer_layers=12,
        embed_dim=512),
    decode_head=dict(
        type='ZegCLIPHead',
        img_size=512,
        in_channels=512,
        channels=512,
        num_classes=156,
        embed_dims=512,
        num_layers=3,
        num_heads=8,
        use_stages=1,
        use_proj=False),
    class_names=None,
    text_embedding=None,
    templates='multi',
    seen_idx=None,
    unseen_idx=None,
    setting='inductive',
    window_batch_size=4,
    amp_dtype=None,
    strict_load=True,
    train_cfg=None,
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))

# Short side 512 keeping the ratio (mmcv imrescale, cv2 bilinear), no flip.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
test_cfg = dict(type='TestLoop')
val_cfg = dict(type='ValLoop')
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
