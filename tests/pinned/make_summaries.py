"""Writes tests/pinned/summaries.json: summary.json of every shipped protocol's models on the
generated sample and on each real sample, as the code computed them when this file was run.

Made once from the first version's code (commit 2cd0b83, before the redesign of issue 9), so that
tests/test_pinned_summaries.py can check that restructuring the code changes no number. Rerun it
only on purpose, when a metric is meant to change, and say so in the commit.

    .venv/bin/python tests/pinned/make_summaries.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.realdata import REAL_DATASETS, write_real_dataset  # noqa: E402

PROTOCOLS = ("small_targets", "occlusion", "boundary", "all")
DATASETS = ("sample",) + tuple(REAL_DATASETS)


def run_summary(protocol: str, data: str, tmp: Path) -> dict:
    if data != "sample":
        data = str(write_real_dataset(data, tmp / f"data-{data}"))
    out = tmp / f"run-{protocol}-{Path(data).name}"
    cmd = [sys.executable, "-m", "harness.cli", "run", str(REPO / "protocols" / f"{protocol}.yaml"),
           "--data", data, "--out", str(out), "--workers", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    pins = {}
    with tempfile.TemporaryDirectory() as tmp:
        for data in DATASETS:
            for protocol in PROTOCOLS:
                pins[f"{protocol}/{data}"] = run_summary(protocol, data, Path(tmp))
                print(protocol, data, len(pins[f"{protocol}/{data}"]), "models", flush=True)
    (HERE / "summaries.json").write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
