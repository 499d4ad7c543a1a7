"""Throughput of the ZegCLIP port: images/s of slide inference (crop 512, stride 426) with the real
ViT-B/16 config and random weights.

    python bench/bench_zegclip.py                       # CPU, 512x512 (one window per image)
    python bench/bench_zegclip.py --size 512 683        # two windows per image
    python bench/bench_zegclip.py --device cuda         # GPU: eager fp32, SDPA fp32, SDPA bf16

Each mode (--modes) is measured on the same model and input: `eager` (explicit softmax attention,
fp32: the baseline), `fp32` (torch's fused SDPA attention), `bf16` / `fp16` (SDPA under autocast).
It prints images/s, the ratio to the first mode, the largest score difference from the first mode,
and peak memory (CUDA: max allocated; CPU: peak RSS of the process, so it only grows).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CONFIG = ROOT / 'configs/zegclip/zegclip_vitb16_512x512_coco-stuff171_inductive.py'


def build(config: str, device: str):
    from mmseg.apis import init_model
    model = init_model(config, None, device=device)
    return model


def set_mode(model, attn_impl: str, amp):
    for mod in (model.backbone, model.text_encoder, model.decode_head):
        mod.set_attn_impl(attn_impl)
    model.amp_dtype = amp


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


@torch.no_grad()
def run(model, x, iters: int, warmup: int, device: str):
    metas = [dict(ori_shape=tuple(x.shape[2:]), img_shape=tuple(x.shape[2:]))] * x.shape[0]
    out = None
    for _ in range(warmup):
        out = model.inference(x, metas)
    sync(device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        out = model.inference(x, metas)
        sync(device)
        times.append(time.perf_counter() - t0)
    per_image = statistics.median(times) / x.shape[0]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith('cuda')
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out, 1.0 / per_image, times, peak


MODES = {  # name -> (attention implementation, autocast dtype)
    'eager': ('math', None),       # the baseline: explicit softmax attention, fp32
    'fp32': ('sdpa', None),        # fused attention (torch SDPA), fp32
    'bf16': ('sdpa', 'bf16'),      # fused attention under bf16 autocast
    'fp16': ('sdpa', 'fp16'),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1, help='images per forward')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--modes', nargs='+', choices=list(MODES), default=None,
                        help='what to measure, the first being the baseline of the ratios '
                             '(default: eager fp32 bf16 on CUDA, eager fp32 on CPU)')
    parser.add_argument('--window-batch', type=int, default=4)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith('cuda')
    modes = args.modes or (['eager', 'fp32', 'bf16'] if cuda else ['eager', 'fp32'])

    torch.manual_seed(0)
    model = build(args.config, args.device)
    model.window_batch_size = args.window_batch
    x = torch.randn(args.batch, 3, *args.size, device=args.device)
    n_windows = len(__import__('harness.zegclip', fromlist=['slide_windows']).slide_windows(
        args.size[0], args.size[1], model.test_cfg.crop_size, model.test_cfg.stride))
    info = dict(device=torch.cuda.get_device_name() if cuda else f'cpu x{torch.get_num_threads()} threads',
                torch=torch.__version__, size=args.size, windows_per_image=n_windows,
                batch=args.batch, classes=model.num_classes, iters=args.iters)
    print('# ' + json.dumps(info))

    results, base_out = {}, None
    memory = 'CUDA alloc' if cuda else 'RSS'
    for mode in modes:
        attn, amp = MODES[mode]
        set_mode(model, attn, amp)
        out, ips, _, peak = run(model, x, args.iters, args.warmup, args.device)
        out = out.float().cpu()
        base_out = out if base_out is None else base_out
        base_ips = results[modes[0]]['images_per_s'] if results else ips
        diff = float((out - base_out).abs().max())
        results[mode] = dict(images_per_s=ips, peak_mib=peak, speedup=ips / base_ips, max_abs_score_diff=diff)
        print(f'{mode:>6} ({attn}, {amp or "fp32"}): {ips:8.3f} images/s  {1 / ips:.4f} s/image  '
              f'x{ips / base_ips:.2f} vs {modes[0]}  max |score diff| {diff:.2e}  peak {memory} {peak:,.0f} MiB')
    print(json.dumps(dict(info, modes=results)))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
