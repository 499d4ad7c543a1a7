# PASCAL VOC 2012 without background: 20 classes (aeroplane ... tvmonitor), labels reduced by one
# (background 0 -> 255 ignore). Split: seen 0-14, unseen 15-19 (FACTS §4, upstream).
_base_ = ['./zegclip_vitb16_512.py']
class_names = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
    'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
    'train', 'tvmonitor',
)
palette = [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128]]
unseen_idx = [15, 16, 17, 18, 19]  # pottedplant, sheep, sofa, train, tvmonitor
seen_idx = list(range(15))

dataset_type = 'BaseSegDataset'
data_root = 'data/VOCdevkit/VOC2012'
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        metainfo=dict(classes=class_names, palette=palette),
        data_root=data_root,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline={{_base_.test_pipeline}}))
val_dataloader = test_dataloader
