# ZegCLIP ViT-B/16, 512x512, voc12-20, fully. Port of the upstream model (ZiqinZhou66/ZegCLIP @ 9ba4bb5).
# Fully supervised reference: trained on all classes; no seen-class shift at test.
# Everything else is the inductive config's.
_base_ = ['./zegclip_vitb16_512x512_voc12-20_inductive.py']

model = dict(
    decode_head=dict(num_classes=20),  # training classes; sizes only the (adaptive) loss buffer
    setting='fully')
