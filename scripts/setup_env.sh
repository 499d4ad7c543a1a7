#!/usr/bin/env bash
# The full stack in .venv (models, COCO tools, tests): the exact set of requirements/lock.txt, measured
# on this machine (../shared/STACK.md says why each pin exists). README.md's line 1 needs none of this.
# Idempotent: a second run reuses the venv and pip's wheel cache (mmcv compiles once per machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOCK=requirements/lock.txt
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
VPIP=".venv/bin/python -m pip"
$VPIP install -q -c "$LOCK" pip
# torch first, pinned by the lock: a loose range pulls a multi-GB CUDA build; setuptools<82 keeps
# pkg_resources for mmengine; wheel and ninja build mmcv.
$VPIP install -q -c "$LOCK" torch setuptools wheel ninja
# mmcv 2.1.0 ships only as source on PyPI: build its ops against the installed torch (about 6 min on 2 cores).
if ! .venv/bin/python -c "import mmcv._ext" 2>/dev/null; then
  MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
    $VPIP install -q --no-build-isolation -c "$LOCK" mmcv
fi
$VPIP install -q -c "$LOCK" -e ".[mmseg,coco,robustness,test]"
