"""The `zeg-eval` command. Bad input ends in one line naming the file and the problem, never a traceback."""
from __future__ import annotations

import argparse
import sys

from harness.errors import UserError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeg-eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate models on a dataset with a protocol")
    run.add_argument("protocol", help="protocol YAML, e.g. protocols/small_targets.yaml")
    run.add_argument("--data", help="dataset folder (with dataset.yaml) or the yaml itself")
    run.add_argument("--predictions", action="append", metavar="[NAME=]DIR",
                     help="a folder of predicted label maps <stem>.png (repeatable)")
    run.add_argument("--out", help="run folder (default runs/<protocol name>); rerunning resumes")
    run.add_argument("--limit", type=int, help="only the first N images (sorted by name)")
    run.add_argument("--workers", type=int, help="metric worker processes (default: CPU count, at most 8)")
    return parser


def cmd_run(args) -> int:
    from harness.run import run_from_args

    out, summary = run_from_args(args.protocol, args.data, args.predictions, args.out, args.limit, args.workers)
    for model, metrics in summary.items():
        shown = {k: metrics[k] for k in ("mIoU", "object_recall@small", "boundary_IoU", "hIoU") if k in metrics}
        print(f"{model}: " + ", ".join(f"{k} {v:.2f}" for k, v in shown.items()))
    print(f"run folder: {out}")
    return 0


COMMANDS = {"run": cmd_run}


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"zeg-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zeg-eval: interrupted; finished images are saved, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
