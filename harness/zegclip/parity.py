"""Numerical parity with the upstream code (reference_outputs.json of the shared facts).

The reference file records what upstream ZegCLIP computes (COCO-Stuff ViT-B/16 inductive config,
float32, CPU) on a seeded random state dict and a seeded image. :func:`recipe_state_dict` and
:func:`reference_image` rebuild those inputs; :func:`compare_with_reference` runs the port and
returns every difference, so that tests and ``python -m harness.zegclip.parity`` share one path.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Dict, Mapping, Optional

import numpy as np
import torch

from harness import shipped

_SHIPPED = shipped.root()  # the checkout, or the installed package's copy of it
# Layout list + reference outputs (copies of the shared facts, kept in the repository).
DEFAULT_FACTS_DIR = Path(os.environ.get('ZEGCLIP_FACTS_DIR',
                                        _SHIPPED / 'third_party' / 'zegclip' / 'parity'))
COCO_INDUCTIVE_CONFIG = _SHIPPED / 'configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py'


def recipe_state_dict(shapes: Mapping[str, list], seed: int = 915) -> Dict[str, torch.Tensor]:
    """The reference recipe: one generator, keys in Python-sorted order; LayerNorm-like weights
    1 + 0.02 N(0, 1), the loss buffer ones with last 0.1 (no draws), everything else 0.02 N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        shape = list(shapes[name])
        if name.endswith('empty_weight'):
            value = torch.ones(shape)
            value[-1] = 0.1
        elif name.endswith('.weight') and ('ln_' in name or 'norm' in name):
            value = 1 + 0.02 * torch.randn(shape, generator=gen)
        else:
            value = 0.02 * torch.randn(shape, generator=gen)
        out[name] = value
    return {name: out[name] for name in shapes}  # upstream (module) order


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over sorted keys of name.encode() then the float32 bytes (the reference's check)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_image(height: int = 480, width: int = 640) -> np.ndarray:
    """RGB uint8: floor(127.5 + 127.5 sin(0.031 x (c+1) + 0.017 y (3-c) + c)), float64."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [np.floor(127.5 + 127.5 * np.sin(0.031 * x * (c + 1) + 0.017 * y * (3 - c) + c))
                for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def printed_tolerance(value: float, atol: float, digits: int = 6) -> float:
    """atol plus half a unit in the last place of a value printed with ``digits`` significant
    digits (the reference file stores 6)."""
    if value == 0:
        return atol
    return atol + 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1)


def max_abs(ours, theirs) -> float:
    return float(np.abs(np.asarray(ours, dtype=np.float64).ravel()
                        - np.asarray(theirs, dtype=np.float64).ravel()).max())


def max_excess(ours, theirs, atol: float) -> float:
    """max(|ours - theirs| - tolerance) over printed reference values (<= 0 means within)."""
    ours = np.asarray(ours, dtype=np.float64).ravel()
    theirs = np.asarray(theirs, dtype=np.float64).ravel()
    if ours.shape != theirs.shape:
        raise ValueError(f'shape {ours.shape} vs {theirs.shape}')
    tol = np.array([printed_tolerance(t, atol) for t in theirs])
    return float((np.abs(ours - theirs) - tol).max())


@torch.no_grad()
def compare_with_reference(model, reference: Mapping, image_path: Optional[str] = None,
                           atol: float = 1e-6) -> dict:
    """Run ``model`` (the COCO inductive config with the recipe weights loaded) on the reference
    image through mmseg's test pipeline and return the differences with ``reference``.

    Runs: (a) backbone and (b) encode_decode on the top-left 512x512 crop (one forward; the
    backbone output is captured), (c) slide inference on the full 512x683 input through
    ``mmseg.apis.inference_model`` (predictions resized to 480x640).
    """
    import cv2
    from mmengine.dataset import Compose, pseudo_collate
    from mmseg.apis import inference_model

    rgb = reference_image()
    out: dict = {}
    out['image_sha256_ok'] = (hashlib.sha256(rgb.tobytes()).hexdigest()
                              == reference['image']['sha256_rgb_uint8'])
    if image_path is not None:
        cv2.imwrite(str(image_path), rgb[:, :, ::-1])  # BGR on disk, lossless PNG
        source = str(image_path)
    else:
        source = np.ascontiguousarray(rgb[:, :, ::-1])

    # Preprocessed input, exactly as the test pipeline + data preprocessor build it.
    pipeline_cfg = [dict(t) for t in model.cfg.test_pipeline if t['type'] != 'LoadAnnotations']
    if not isinstance(source, str):
        pipeline_cfg[0] = dict(type='LoadImageFromNDArray')
        data = dict(img=source)
    else:
        data = dict(img_path=source)
    packed = Compose(pipeline_cfg)(data)
    batch = model.data_preprocessor(pseudo_collate([packed]), False)
    inputs = batch['inputs']
    ref_in = reference['preprocess']['input_tensor']
    out['input_shape'] = list(inputs.shape)
    out['input_sha256_ok'] = (hashlib.sha256(inputs.contiguous().numpy().tobytes()).hexdigest()
                              == ref_in['sha256'])
    out['input_sum_delta'] = abs(float(inputs.double().sum()) - ref_in['sum'])

    # (a) + (b): one forward on the crop, capturing the backbone output.
    captured = {}
    handle = model.backbone.register_forward_hook(lambda m, i, o: captured.__setitem__('a', o))
    try:
        scores = model.encode_decode(inputs[:, :, :512, :512])
    finally:
        handle.remove()
    patch, glob = captured['a']
    ra = reference['a_backbone_crop_0_0_512x512']
    out['a_global_first8_excess'] = max_excess(glob[0, :8], ra['global_first8'], atol)
    out['a_patch_0_0_excess'] = max_excess(patch[0, :4, 0, 0], ra['patch_0_0to4_0_0'], atol)
    out['a_patch_31_31_excess'] = max_excess(patch[0, :4, 31, 31], ra['patch_0_0to4_31_31'], atol)
    out['a_maxabs_printed'] = max(max_abs(glob[0, :8], ra['global_first8']),
                                  max_abs(patch[0, :4, 0, 0], ra['patch_0_0to4_0_0']),
                                  max_abs(patch[0, :4, 31, 31], ra['patch_0_0to4_31_31']))
    out['a_patch_sum_delta'] = abs(float(patch.double().sum()) - ra['patch_sum'])
    out['a_patch_sumabs_delta'] = abs(float(patch.double().abs().sum()) - ra['patch_sumabs'])
    out['a_patch_numel'] = patch.numel()
    rb = reference['b_encode_decode_crop_0_0_512x512']
    out['b_shape'] = list(scores.shape)
    out['b_min_delta'] = abs(float(scores.min()) - rb['min'])
    out['b_max_delta'] = abs(float(scores.max()) - rb['max'])
    out['b_mean_delta'] = abs(float(scores.double().mean()) - rb['mean'])
    out['b_px_excess'] = max(max_excess(scores[0, :, 100, 200], rb['scores_y100_x200'], atol),
                             max_excess(scores[0, :, 400, 37], rb['scores_y400_x37'], atol))
    out['b_maxabs_printed'] = max(max_abs(scores[0, :, 100, 200], rb['scores_y100_x200']),
                                  max_abs(scores[0, :, 400, 37], rb['scores_y400_x37']))
    out['b_argmax'] = [int(scores[0, :, 100, 200].argmax()), int(scores[0, :, 400, 37].argmax())]
    out['b_argmax_ref'] = [rb['argmax_y100_x200'], rb['argmax_y400_x37']]
    del scores

    # (c): the whole mmseg inference path.
    result = inference_model(model, source)
    seg = result.seg_logits.data  # C x 480 x 640, slide-averaged and resized
    labels = result.pred_sem_seg.data[0].numpy()
    rc = reference['c_simple_test_full_512x683']
    out['c_shape'] = [1] + list(seg.shape)
    out['c_min_delta'] = abs(float(seg.min()) - rc['slide_inference_min'])
    out['c_max_delta'] = abs(float(seg.max()) - rc['slide_inference_max'])
    out['c_mean_delta'] = abs(float(seg.double().mean()) - rc['slide_inference_sum'] / seg.numel())
    out['c_px_excess'] = max(max_excess(seg[:, 240, 320], rc['slide_scores_y240_x320'], atol),
                             max_excess(seg[:, 10, 600], rc['slide_scores_y10_x600'], atol))
    out['c_maxabs_printed'] = max(max_abs(seg[:, 240, 320], rc['slide_scores_y240_x320']),
                                  max_abs(seg[:, 10, 600], rc['slide_scores_y10_x600']))
    top2 = seg.topk(2, dim=0).values
    margin = (top2[0] - top2[1]).numpy()
    out['c_n_px_margin_lt_1e-6'] = int((margin < 1e-6).sum())
    out['c_n_px_margin_lt_1e-6_ref'] = rc['n_px_top2_margin_lt_1e-6']
    hist = {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    ref_hist = rc['label_hist']
    l1 = sum(abs(hist.get(k, 0) - ref_hist.get(k, 0)) for k in set(hist) | set(ref_hist))
    out['c_label_hist'] = hist
    # Each pixel whose label differs moves one count out of one class into another, so half the
    # L1 distance of the histograms is a lower bound on the disagreeing pixels.
    out['c_label_hist_l1_half'] = l1 // 2
    out['c_label_min_agreement_bound'] = 1.0 - (l1 / 2) / labels.size
    out['c_labels_at_points'] = [int(labels[240, 320]), int(labels[10, 600])]
    out['c_labels_at_points_ref'] = [rc['label_y240_x320'], rc['label_y10_x600']]
    out['c_margin_at_points'] = [float(margin[240, 320]), float(margin[10, 600])]
    out['c_label_sha256_equal'] = (hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest()
                                   == rc['label_uint8_sha256'])
    # Upstream (mmseg 0.24) took softmax before argmax; the same step here shows whether the
    # label map is bit-identical to upstream's float32 run.
    soft_labels = seg.softmax(dim=0).argmax(dim=0).numpy().astype(np.uint8)
    out['c_label_sha256_after_softmax_equal'] = (
        hashlib.sha256(soft_labels.tobytes()).hexdigest() == rc['label_uint8_sha256'])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m harness.zegclip.parity',
                                     description='Port vs upstream reference outputs.')
    parser.add_argument('--facts', default=str(DEFAULT_FACTS_DIR))
    parser.add_argument('--checkpoint-out', default=None,
                        help='also write the recipe state dict as an mmcv-1.x style checkpoint')
    args = parser.parse_args(argv)
    from mmseg.apis import init_model

    facts = Path(args.facts)
    reference = json.loads((facts / 'reference_outputs.json').read_text())
    shapes = json.loads((facts / 'state_dict_vitb_coco_inductive.json').read_text())['keys']
    state_dict = recipe_state_dict(shapes)
    print('state_dict sha256 ok:',
          state_dict_sha256(state_dict) == reference['state_dict_check']['sha256'])
    model = init_model(str(COCO_INDUCTIVE_CONFIG), None, device='cpu')
    model.load_state_dict(state_dict)
    if args.checkpoint_out:
        torch.save({'state_dict': state_dict, 'meta': {}}, args.checkpoint_out)
    result = compare_with_reference(model, reference)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
