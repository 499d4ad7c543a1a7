"""Running the `zeg-eval` command in tests: in this process (fast), or in a fresh one where that is
what is tested (signals, imports, torchrun)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def zeg_eval_inprocess(capsys, *args) -> tuple[int, str, str]:
    """`zeg-eval ARGS` through harness.cli.main in this process: (returncode, stdout, stderr)."""
    from harness import cli

    capsys.readouterr()
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def zeg_eval_subprocess(*args, env=None, cwd=None, timeout=300) -> tuple[int, str, str]:
    """`zeg-eval ARGS` in a fresh process: (returncode, stdout, stderr)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def one_line_error(rc, stderr, *needles, max_length=400) -> str:
    """The command failed with exit 2 and one short line (no traceback) holding every needle."""
    assert rc == 2, (rc, stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert len(lines[0]) <= max_length, lines[0]
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def manifest(run: Path) -> dict:
    return read_json(Path(run) / "manifest.json")


def summary(run: Path) -> dict:
    return read_json(Path(run) / "summary.json")


def tree(root: Path) -> set:
    """Every path under root (to check that nothing is written outside a run folder)."""
    return {p.relative_to(root) for p in Path(root).rglob("*")}
