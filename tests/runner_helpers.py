"""Helpers of the runner tests (tests/test_runner_*.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PROTOCOL = TESTS / "runner_protocol.yaml"
CONFIGS = TESTS / "configs"


def zeg_eval(*args, env=None, cwd=None, timeout=300):
    """Run the CLI in a fresh process: (returncode, stdout, stderr)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def one_line_error(rc, stderr, *needles):
    assert rc not in (0, None), stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


def manifest(run: Path) -> dict:
    return json.loads((Path(run) / "manifest.json").read_text())


def summary(run: Path) -> dict:
    return json.loads((Path(run) / "summary.json").read_text())


def tree(root: Path) -> set:
    """Every path under root (to check that nothing is written outside a run folder)."""
    return {p.relative_to(root) for p in Path(root).rglob("*")}
