# The tiny model with sliding-window inference (128x128 crops, stride 96).
_base_ = './tiny_fcn.py'
model = dict(test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(96, 96)))
