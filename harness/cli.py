"""The `zeg-eval` command. Bad input ends in one line naming the file and the problem, never a traceback."""
from __future__ import annotations

import sys

from harness.config.arguments import OneLineParser, at_least
from harness.errors import RunAborted, UserError

SHOWN_METRICS = ("mIoU", "hIoU", "object_recall@small", "boundary_IoU")
MAX_ERROR_LINE = 400  # characters of an error line, "zeg-eval: error: " included


def _cut_middle(text: str, length: int) -> str:
    head = (length - 3) * 2 // 3
    return text[:head] + " … " + text[len(text) - (length - 3 - head):]


def one_line(message: str, limit: int = MAX_ERROR_LINE) -> str:
    """`message` as one printable line of at most `limit` characters: line breaks become spaces,
    control characters '?', and a long middle gives way to " … ", so that the start (the file)
    and the end (the problem, the value) stay. A message of several '; '-separated parts (e.g.
    "2 missing (...); 3 unexpected (...)") loses the middle of its longest parts first, so every
    part keeps its start and end."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    text = "".join(c if c.isprintable() else (" " if c == "\t" else "?") for c in text)
    parts = text.split("; ")
    shortest = 40
    while len("; ".join(parts)) > limit:
        i = max(range(len(parts)), key=lambda k: len(parts[k]))
        excess = len("; ".join(parts)) - limit
        if len(parts[i]) - excess < shortest:
            break
        parts[i] = _cut_middle(parts[i], len(parts[i]) - excess)
    text = "; ".join(parts)
    return text if len(text) <= limit else _cut_middle(text, limit)


def _error(message: str) -> None:
    prefix = "zeg-eval: error: "
    print(prefix + one_line(message, MAX_ERROR_LINE - len(prefix)), file=sys.stderr)


def _build_parser():
    parser = OneLineParser(prog="zeg-eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate models on a dataset with a protocol")
    run.add_argument("protocol", help="a shipped protocol by name (small_targets, occlusion, boundary, all) "
                                      "or a protocol YAML file")
    run.add_argument("--data", help="dataset folder (with dataset.yaml), the yaml itself, or 'sample' "
                                    "(default: the protocol's data)")
    run.add_argument("--predictions", action="append", metavar="[NAME=]DIR",
                     help="a folder of predicted label maps <stem>.png (repeatable); replaces the protocol's models")
    run.add_argument("--model", action="append", metavar="NAME",
                     help="run only this model of the protocol (repeatable)")
    run.add_argument("--out", help="run folder (default runs/<protocol name>); rerunning resumes")
    run.add_argument("--limit", type=at_least(1), help="only the first N images (sorted by name)")
    run.add_argument("--workers", type=at_least(0), help="metric worker processes (default: CPU count, at most 8; 0 = inline)")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    run.add_argument("--precision", choices=("fp32", "fp16", "bf16"),
                     help="autocast for every mmseg model on GPU (default: each model's own, fp32)")
    run.add_argument("--batch-size", type=at_least(1), help="images per model batch (default: each model's own, 1)")
    run.add_argument("--loader-workers", type=at_least(0), help="DataLoader workers decoding images for a model")
    run.add_argument("--save-predictions", action="store_true",
                     help="also write every model's label maps to RUN/predictions/<model>/<stem>.png")
    run.add_argument("--save-inputs", action="store_true",
                     help="also write each condition's images (what the models saw) to RUN/inputs/<condition>/<stem>.png")
    run.add_argument("--shard", metavar="i/n", help="evaluate every n-th image from the i-th (0 <= i < n); "
                                                    "the shards' records merge into one summary")
    run.add_argument("--chunk-size", type=at_least(1), default=64, help="images per committed record chunk (default 64)")
    sample = sub.add_parser("make-sample", help="write the generated sample dataset into a folder")
    sample.add_argument("dir", help="a new (or empty) folder")
    sample.add_argument("--images", type=at_least(1), default=None, help="number of images (default 40)")
    sample.add_argument("--seed", type=at_least(0), default=None, help="random seed (default 0)")
    sample.add_argument("--size", default=None, metavar="WxH", help="image size (default 320x240)")
    coco = sub.add_parser("coco-instances", help="COCO instance JSON -> instance-id maps <stem>.png (pycocotools)")
    coco.add_argument("annotations", help="e.g. annotations/instances_val2017.json")
    coco.add_argument("out", help="the dataset's instances folder (instances_dir of dataset.yaml)")
    coco.add_argument("--categories", help="JSON list of categories with isthing (panoptic files)")
    coco.add_argument("--crowd-id", type=int, metavar="N",
                      help="write crowd regions as id N (1..65535; then set crowd_id: N in dataset.yaml); "
                           "default: crowd pixels stay 0 (no object)")
    # its own parser (harness.zegclip.text_embeddings) takes every argument after the command name
    sub.add_parser("zegclip-embed", add_help=False,
                   help="class text embeddings for any vocabulary (ZegCLIP text tower); --help for options")
    return parser, sub


def cmd_run(args) -> int:
    from harness.run.command import run_from_args

    for name in ("limit", "batch_size", "chunk_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    out, summary = run_from_args(args.protocol, args.data, args.predictions, args.out, args.limit, args.workers,
                                 models=args.model, device=args.device, precision=args.precision,
                                 batch_size=args.batch_size, loader_workers=args.loader_workers,
                                 save_predictions=args.save_predictions, save_inputs=args.save_inputs, shard=args.shard,
                                 chunk_size=args.chunk_size)
    for model, metrics in summary.items():
        shown = {k: metrics[k] for k in SHOWN_METRICS if k in metrics and metrics[k] is not None}
        print(f"{model}: " + ", ".join(f"{k} {v:.2f}" for k, v in shown.items()))
    if summary:
        print(f"run folder: {out}")
    return 0


def cmd_make_sample(args) -> int:
    from harness.data.sample import SampleConfig, make_sample

    config = SampleConfig()
    changes = {}
    if args.images is not None:
        changes["n_images"] = args.images
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.size is not None:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UserError(f"--size must be WxH, e.g. 320x240, not '{args.size}'") from None
        changes.update(width=w, height=h)
    config = SampleConfig(**{**config.__dict__, **changes})
    path = make_sample(args.dir, config)
    print(f"sample: {config.n_images} images in {path}")
    return 0


def cmd_coco_instances(args) -> int:
    from harness.data.coco_instances import write_instance_maps

    if args.crowd_id is not None and not 0 < args.crowd_id < 2**16:
        raise UserError(f"--crowd-id must be in 1..65535, not {args.crowd_id}")
    n = write_instance_maps(args.annotations, args.out, args.categories, args.crowd_id)
    crowds = (f"; crowd regions are id {args.crowd_id}: set crowd_id: {args.crowd_id} in dataset.yaml"
              if args.crowd_id is not None else "; crowd regions left at 0 (no object)")
    print(f"instance maps of {n} images in {args.out}{crowds}")
    return 0


def cmd_zegclip_embed(args) -> int:
    from harness.extras import require

    require("mmseg", "zegclip-embed")
    from harness.zegclip.text_embeddings import main as embed_main  # imports torch/mmseg only here

    return embed_main(args)


COMMANDS = {"run": cmd_run, "make-sample": cmd_make_sample, "coco-instances": cmd_coco_instances,
            "zegclip-embed": cmd_zegclip_embed}


def _add_report(sub) -> None:
    # harness.report imports only argparse at the top; its heavy modules load when the command runs
    from harness import report

    parser = sub.add_parser("report", help="HTML + CSV report of one run, or a comparison of runs")
    report.add_arguments(parser)
    COMMANDS["report"] = report.command


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, sub = _build_parser()
    _add_report(sub)
    try:
        if argv[:1] == ["zegclip-embed"]:
            return cmd_zegclip_embed(argv[1:])
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        _error(str(exc))
        return 2
    except RunAborted as exc:  # not the input's fault (e.g. a worker killed by the OS): rerun to resume
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        print("zeg-eval: interrupted; finished images are saved, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
