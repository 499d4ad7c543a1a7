"""Throughput of the ZegCLIP port: images/s of slide inference (crop 512, stride 426) with the real
ViT-B/16 config and random weights.

    python bench/bench_zegclip.py                       # CPU, 512x512 (one window per image)
    python bench/bench_zegclip.py --size 512 683        # two windows per image
    python bench/bench_zegclip.py --device cuda --amp bf16   # GPU: autocast+SDPA vs fp32 eager

Each run compares the optimised path (SDPA attention, optional autocast) with the fp32 eager
baseline of the same port (explicit softmax attention, no autocast) and prints the ratio, the
largest score difference between the two, and peak memory (CUDA: max allocated; CPU: peak RSS of
the process).
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1, help='images per forward')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--amp', default=None, choices=[None, 'bf16', 'fp16'],
                        help='autocast dtype of the optimised run (default: bf16 on CUDA, none on CPU)')
    parser.add_argument('--window-batch', type=int, default=4)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--no-baseline', action='store_true', help='skip the fp32 eager baseline')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith('cuda')
    amp = args.amp if args.amp is not None else ('bf16' if cuda else None)

    torch.manual_seed(0)
    model = build(args.config, args.device)
    model.window_batch_size = args.window_batch
    x = torch.randn(args.batch, 3, *args.size, device=args.device)
    n_windows = len(__import__('harness.zegclip', fromlist=['slide_windows']).slide_windows(
        args.size[0], args.size[1], model.test_cfg.crop_size, model.test_cfg.stride))
    info = dict(device=torch.cuda.get_device_name() if cuda else f'cpu x{torch.get_num_threads()} threads',
                torch=torch.__version__, size=args.size, windows_per_image=n_windows,
                batch=args.batch, classes=model.num_classes)
    print('# ' + json.dumps(info))

    set_mode(model, 'sdpa', amp)
    fast_out, fast_ips, fast_t, fast_peak = run(model, x, args.iters, args.warmup, args.device)
    label = f"sdpa{'+' + amp if amp else ' fp32'}"
    print(f'{label:>22}: {fast_ips:7.3f} images/s  (median of {args.iters}: '
          f'{1 / fast_ips:.3f} s/image)  peak {"CUDA alloc" if cuda else "RSS"} {fast_peak:,.0f} MiB')
    result = dict(info, optimised=label, optimised_images_per_s=fast_ips,
                  optimised_peak_mib=fast_peak)
    if not args.no_baseline:
        fast_out = fast_out.float().cpu()
        set_mode(model, 'math', None)
        base_out, base_ips, base_t, base_peak = run(model, x, args.iters, args.warmup, args.device)
        diff = float((fast_out - base_out.float().cpu()).abs().max())
        print(f'{"eager fp32 (baseline)":>22}: {base_ips:7.3f} images/s  (median of {args.iters}: '
              f'{1 / base_ips:.3f} s/image)  peak {"CUDA alloc" if cuda else "RSS"} {base_peak:,.0f} MiB')
        print(f'{"speed-up":>22}: {fast_ips / base_ips:.2f}x   max |score diff| {diff:.2e}')
        result.update(baseline_images_per_s=base_ips, baseline_peak_mib=base_peak,
                      speedup=fast_ips / base_ips, max_abs_score_diff=diff)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
