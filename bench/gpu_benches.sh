#!/usr/bin/env bash
# Every GPU figure of zeg-eval in one run, for a CUDA machine (prepared to be run as one command on
# a machine lent for a few minutes):
#   1. ZegCLIP slide inference (real ViT-B/16 COCO config, random weights): eager fp32 attention vs
#      fused SDPA fp32 vs SDPA under bf16 autocast (bench/bench_zegclip.py);
#   2. the whole loop (model on the GPU, metrics in CPU workers) against inference alone
#      (bench/bench_runner.py --zegclip);
#   3. `zeg-eval run --device cuda` end to end on a real dataset, fp32 and bf16, against the same
#      run on the CPU: the summaries side by side (random weights: many near-ties in the scores,
#      so a few pixels may flip; the figure says how many metrics moved and by how much);
#   4. the condition loop (corruptions, JPEG, resolution applied in the DataLoader workers on the
#      CPU) against inference alone, ZegCLIP in bf16 (bench/bench_conditions.py; goal: under 10%).
#
#   bash bench/gpu_benches.sh OUT_DIR [DATA_DIR]
#
# DATA_DIR is a zeg-eval dataset folder with images (default: the generated sample). The script
# needs torch with CUDA and the OpenMMLab stack. On a machine that has torch but not the rest and
# no network, put the wheels in .whl/ first (on a machine with network, from the repository root):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
#     --platform any -d .whl mmengine==0.10.7 mmsegmentation==1.2.2 addict yapf termcolor prettytable \
#     wcwidth ftfy platformdirs setuptools==80.10.2 connected-components-3d==4.1.1 \
#     imagecorruptions-imaug==1.1.5 numba==0.68.1 llvmlite==0.50.0 scikit-image==0.26.0 imageio tifffile \
#     lazy-loader scikit-learn==1.9.1 joblib threadpoolctl
#   (the last line for step 4's ImageNet-C conditions; without it step 4 measures the plain knobs only)
#   and mmcv-2.1.0.tar.gz (PyPI's source) in .whl/ too: it is compiled there with its CPU ops only
#   (ZegCLIP runs none of mmcv's ops, but mmseg imports them), about a minute on 16 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: gpu_benches.sh OUT_DIR [DATA_DIR]}
DATA=${2:-}                     # e.g. a copy of a real dataset (step 3)
DEVICE=${DEVICE:-cuda}          # DEVICE=cpu tries the script out on a machine without a GPU
QUICK=${QUICK:-0}               # QUICK=1: tiny sizes, to check the script itself
mkdir -p "$OUT"
SITE=${SITE:-/tmp/zeg-site}
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

if ! $PY -c "import mmseg.models, mmcv._ext" 2>/dev/null; then
  echo "== installing the OpenMMLab stack from .whl/ into $SITE"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || exit 1
  start=$(date +%s)
  # CPU ops only: mmcv's setup.py builds the CUDA ops whenever it sees a GPU, so hide it meanwhile
  CUDA_VISIBLE_DEVICES="" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$(nproc) $PY -m pip install -q --no-index --no-deps \
    --no-build-isolation --target "$SITE" .whl/mmcv-2.1.0.tar.gz || exit 1
  echo "mmcv 2.1.0 compiled in $(( $(date +%s) - start )) s"
fi
$PY - <<'EOF' | tee "$OUT/versions.txt"
import os, torch, mmcv, mmengine, mmseg, numpy
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{gpu}; torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, "
      f"mmseg {mmseg.__version__}, numpy {numpy.__version__}, {len(os.sched_getaffinity(0))} CPUs")
EOF

if [[ $QUICK == 1 ]]; then ITERS=2; IMAGES=6; else ITERS=20; IMAGES=200; fi

echo "== 1. slide inference, one COCO-sized image (512x683: two 512 windows)"
$PY bench/bench_zegclip.py --device "$DEVICE" --size 512 683 --iters $ITERS --warmup 2 \
  --modes eager fp32 bf16 | tee "$OUT/zegclip_b1.txt"
echo "== 1b. eight images per forward (16 windows)"
$PY bench/bench_zegclip.py --device "$DEVICE" --size 512 683 --batch 8 --window-batch 16 \
  --iters $(( ITERS / 2 )) --warmup 1 --modes eager fp32 bf16 | tee "$OUT/zegclip_b8.txt"

echo "== 2. the whole loop vs inference alone ($IMAGES images of the generated sample, bf16)"
$PY bench/bench_runner.py --device "$DEVICE" --zegclip --precision bf16 --batch-size 8 \
  --families standard,size,occlusion,boundary --images $IMAGES --repeat 1 --json "$OUT/runner.json" \
  | tee "$OUT/runner.txt"

echo "== 3. zeg-eval run end to end: $DEVICE fp32 and bf16 against the CPU"
$PY bench/device_parity.py --device "$DEVICE" --out "$OUT/e2e" ${DATA:+--data "$DATA"} \
  | tee "$OUT/e2e.txt"

echo "== 4. the condition loop over inference alone (ZegCLIP bf16, 512x512, conditions in the loader workers)"
if $PY -c "import imagecorruptions" 2>/dev/null; then
  CONDS=${CONDITIONS:-gaussian_noise-3,glass_blur-3,fog-3,jpeg_compression-3,resolution-0.5,jpeg-20}
else
  CONDS=${CONDITIONS:-noise-16,blur-2,resolution-0.5,jpeg-20}; echo "(no imagecorruptions: the knobs only)"
fi
$PY bench/bench_conditions.py --device "$DEVICE" --zegclip --precision bf16 --batch-size 8 \
  --loader-workers $(( $(nproc) / 2 )) --images $(( IMAGES / 4 + 2 )) --conditions "$CONDS" --repeat 1 \
  --json "$OUT/conditions.json" | tee "$OUT/conditions.txt"
