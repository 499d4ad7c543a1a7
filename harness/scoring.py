"""Scoring saved predictions: a folder of label maps in, a model's records out.

Images are evaluated in worker processes (metrics are CPU-bound numpy); records are committed in
chunks, so an interrupted run resumes where it stopped (see harness.records).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

from tqdm import tqdm

from harness.dataset import DatasetSpec
from harness.errors import UserError
from harness.evaluate import ImageInputs, check_prediction, evaluate_image
from harness.imageio import read_label_png
from harness.protocol import Protocol
from harness.records import RecordWriter

_WORKER_STATE: dict = {}


def _init_worker(dataset, protocol, pred_dir):
    _WORKER_STATE.update(dataset=dataset, protocol=protocol, pred_dir=pred_dir)


def score_stem(stem: str, dataset: DatasetSpec, protocol: Protocol, pred_dir: Path):
    """Load one image's ground truth and prediction and evaluate it."""
    gt = dataset.load_label(stem)
    pred_path = pred_dir / f"{stem}.png"
    if not pred_path.is_file():
        raise UserError(f"missing prediction for '{stem}'", pred_path)
    pred = check_prediction(read_label_png(pred_path), gt, dataset, pred_path)
    inputs = ImageInputs(gt=gt, pred=pred, instances=dataset.load_instances(stem), amodal=dataset.load_amodal(stem))
    return stem, evaluate_image(inputs, dataset, protocol)


def _score_in_worker(stem):
    s = _WORKER_STATE
    try:
        return score_stem(stem, s["dataset"], s["protocol"], s["pred_dir"])
    except UserError as exc:
        return stem, exc  # returned, not raised: the main process reports it as one line


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def score_predictions(dataset: DatasetSpec, protocol: Protocol, pred_dir: Path, model_dir: Path, stems: list[str],
                      workers: int | None = None, label: str = "", chunk_size: int = 64) -> int:
    """Evaluate every stem not yet recorded in `model_dir`; returns how many were computed now."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise UserError("prediction folder does not exist", pred_dir)
    writer = RecordWriter(model_dir, chunk_size=chunk_size)
    done = writer.done_images()
    pending = [s for s in stems if s not in done]
    workers = default_workers() if workers is None else workers
    bar = tqdm(total=len(stems), initial=len(stems) - len(pending), desc=label or pred_dir.name,
               unit="img", dynamic_ncols=True, disable=None)
    try:
        if workers <= 1 or len(pending) < 4:
            results = (score_stem(stem, dataset, protocol, pred_dir) for stem in pending)
            _consume(results, writer, bar)
        else:
            ctx = mp.get_context("fork")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(dataset, protocol, pred_dir)) as pool:
                _consume(pool.imap(_score_in_worker, pending, chunksize=4), writer, bar)
    finally:
        writer.flush()  # whatever finished is committed, also on Ctrl-C or an error
        bar.close()
    return len(pending)


def _consume(results, writer: RecordWriter, bar) -> None:
    for stem, tables in results:
        if isinstance(tables, Exception):
            raise tables
        writer.add(stem, tables)
        bar.update(1)
