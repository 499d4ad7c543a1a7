# PASCAL Context 59 (mmseg PascalContextDataset59 order). NOT FROM UPSTREAM: ZegCLIP released no
# Context config, split or embeddings. The split is the common ZS3Net-style one used by follow-up
# work (unseen: aeroplane, bird, boat, cat, cow, fence, keyboard, motorbike, sofa, tvmonitor); it is
# not authoritative for the paper's numbers.
_base_ = ['./zegclip_vitb16_512.py']
class_names = (
    'aeroplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle',
    'bird', 'boat', 'book', 'bottle', 'building', 'bus',
    'cabinet', 'car', 'cat', 'ceiling', 'chair', 'cloth',
    'computer', 'cow', 'cup', 'curtain', 'dog', 'door',
    'fence', 'floor', 'flower', 'food', 'grass', 'ground',
    'horse', 'keyboard', 'light', 'motorbike', 'mountain', 'mouse',
    'person', 'plate', 'platform', 'pottedplant', 'road', 'rock',
    'sheep', 'shelves', 'sidewalk', 'sign', 'sky', 'snow',
    'sofa', 'table', 'track', 'train', 'tree', 'truck',
    'tvmonitor', 'wall', 'water', 'window', 'wood',
)
unseen_idx = [0, 6, 7, 14, 19, 24, 31, 33, 48, 54]
seen_idx = [i for i in range(59) if i not in unseen_idx]

dataset_type = 'PascalContextDataset59'
data_root = 'data/VOCdevkit/VOC2010'
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline={{_base_.test_pipeline}}))
val_dataloader = test_dataloader
