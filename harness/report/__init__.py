"""`zeg-eval report`: run folders in, one self-contained HTML page plus CSV tables out.

    zeg-eval report RUN [--out DIR]
    zeg-eval report --compare RUN_A RUN_B ... [--baseline MODEL] --out DIR
    zeg-eval report RUN --export latex markdown [--metrics mIoU hIoU ...]

See docs/report.md. `add_arguments` fills the subcommand's parser, `command` runs it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.config.arguments import at_least
from harness.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run folder(s) written by `zeg-eval run`")
    parser.add_argument("--compare", nargs="+", metavar="RUN", default=[],
                        help="run folders to compare side by side (models of all runs in one table)")
    parser.add_argument("--out", help="output folder (default: RUN/report for one run, "
                                      "reports/<run>_vs_<run> for several)")
    parser.add_argument("--baseline", metavar="MODEL",
                        help="model the deltas are taken against (name, or run/model where names repeat); "
                             "default: the first model")
    parser.add_argument("--bootstrap", type=at_least(0), default=1000, metavar="B",
                        help="bootstrap resamples for the confidence intervals (default 1000; 0: none)")
    parser.add_argument("--seed", type=at_least(0), default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--level", type=float, default=95.0, help="confidence level in percent (default 95)")
    parser.add_argument("--partial", action="store_true",
                        help="report a run that is still in progress or was interrupted (marked partial)")
    parser.add_argument("--gallery", type=at_least(0), default=8, metavar="N",
                        help="objects in the disagreement gallery (default 8; 0: none)")
    parser.add_argument("--worst", type=at_least(0), default=3, metavar="K", help="worst images per model (default 3)")
    parser.add_argument("--gallery-min-area", type=at_least(0), default=16, metavar="PX",
                        help="gallery objects under this many pixels are skipped (default 16)")
    parser.add_argument("--explorer-images", type=at_least(0), default=40, metavar="N",
                        help="images whose pictures the object explorer embeds (default 40; the objects the models "
                             "disagree on most)")
    parser.add_argument("--export", nargs="+", choices=("latex", "markdown"), default=[], metavar="FORMAT",
                        help="also write paper tables: latex (booktabs, table.tex) and/or markdown (table.md)")
    parser.add_argument("--metrics", nargs="+", default=[], metavar="METRIC",
                        help="the exported tables' metrics (default: the headline metrics, e.g. object_recall@small "
                             "mIoU_unseen hIoU boundary_IoU mIoU)")


def default_out(runs: list[str]) -> Path:
    if len(runs) == 1:
        return Path(runs[0]) / "report"
    return Path("reports") / "_vs_".join(Path(r).resolve().name for r in runs[:4])


def command(args: argparse.Namespace) -> int:
    from harness.report.build import Options, build_report

    runs = list(args.runs) + list(args.compare or [])
    if not runs:
        raise UserError("give a run folder (zeg-eval report RUN) or several (--compare RUN_A RUN_B ...)")
    out = Path(args.out) if args.out else default_out(runs)
    options = Options(n_boot=args.bootstrap, seed=args.seed, level=args.level, baseline=args.baseline,
                      allow_partial=args.partial, gallery_objects=args.gallery, gallery_worst=args.worst,
                      gallery_min_area=args.gallery_min_area, explorer_images=args.explorer_images,
                      export=tuple(args.export), export_metrics=tuple(args.metrics))
    result = build_report(runs, out, options)
    print(f"report: {result['html']}  ({result['timings']['total']:.1f} s)")
    print("tables: " + ", ".join(str(p) for p in [*result["csv"].values(), *result["export"].values()]))
    return 0
