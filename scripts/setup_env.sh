#!/usr/bin/env bash
# Creates .venv with the pinned stack (see ../shared/STACK.md for why each pin exists).
# Idempotent: a second run reuses the venv and pip's wheel cache (mmcv compiles once per machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
$VPIP install -q --upgrade "pip==25.3"
# torch first, pinned: a loose range pulls a multi-GB CUDA build; setuptools<82 keeps pkg_resources for mmengine.
$VPIP install -q "torch==2.13.0" "setuptools==80.10.2" wheel ninja
# mmcv 2.1.0 ships only as source on PyPI: build its ops against the installed torch (about 6 min on 2 cores).
if ! .venv/bin/python -c "import mmcv._ext" 2>/dev/null; then
  MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
    $VPIP install -q --no-build-isolation "mmcv==2.1.0"
fi
$VPIP install -q -e ".[test]"
