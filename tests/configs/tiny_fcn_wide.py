# The tiny model with another head width: its checkpoint does not fit tiny_fcn.py (bad-input test).
_base_ = './tiny_fcn.py'
model = dict(decode_head=dict(channels=24, num_convs=2))
