# ZegCLIP ViT-B/16, 512x512, coco-stuff171, transductive. Port of the upstream model (ZiqinZhou66/ZegCLIP @ 9ba4bb5).
# Transductive zero-shot: self-training used unlabelled unseen pixels; no seen-class shift
# at test. Everything else is the inductive config's.
_base_ = ['./zegclip_vitb16_512x512_coco-stuff171_inductive.py']

model = dict(setting='transductive')
