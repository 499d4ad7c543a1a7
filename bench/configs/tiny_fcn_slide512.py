# The tests' tiny model as a 512x512 slide-inference model: images resized to a short side of 512
# (as ZegCLIP's configs: scale (2048, 512), keep ratio), 512-pixel windows with stride 341.
_base_ = '../../tests/configs/tiny_fcn.py'
model = dict(test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
