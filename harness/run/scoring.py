"""Scoring: predictions in, a model's per-image records out (no torch, no mmseg here).

Metrics are CPU-bound numpy and run in worker processes. Predictions come from one of two places:

* a predictor that works from the ground truth or from files (baselines, prediction folders)
  runs inside the workers: each worker loads an image's labels, predicts and evaluates it;
* a model running in this process (`stream`: an iterator of (stem, label map)) hands each label map
  to the workers and goes on with the next batch while they evaluate it. At most `max_inflight`
  images wait for their metrics, so memory stays flat whatever the number of images.

Records are committed in chunks in image order (harness.run.records), so an interrupted run resumes
where it stopped; on Ctrl-C whatever finished is committed before the interrupt goes on. A worker
that dies (the OOM killer's SIGKILL) breaks the pool (concurrent.futures notices it): the run stops
with one line (RunAborted) after committing what finished, instead of waiting for the lost image.
"""
from __future__ import annotations

import gc
import importlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from tqdm import tqdm

from harness.conditions.spec import CLEAN_CONDITION, Condition
from harness.data.dataset import DatasetSpec
from harness.data.imageio import read_rgb, write_label_png
from harness.errors import RunAborted, UserError
from harness.evaluation.evaluate import ImageInputs, check_prediction, evaluate_image
from harness.evaluation.protocol import Protocol
from harness.files import atomic_write, inside
from harness.models.base import Predictor
from harness.run.identity import data_digest, input_digest
from harness.run.records import WHOLE, RecordSet, RecordWriter

_WORKER_STATE: dict = {}


@dataclass
class ScoreContext:
    """What a worker needs, sent to it once."""
    dataset: DatasetSpec
    protocol: Protocol
    predictor: Predictor              # predicts here when in_workers; else names each image's input
    identity: str = ""                # digest of what determines the records (harness.run.identity)
    save_dir: Path | None = None      # write every prediction here as <stem>.png
    label: str = ""
    condition: Condition = CLEAN_CONDITION
    inputs_dir: Path | None = None    # write the condition's image of every stem here as <stem>.png


@dataclass
class ScoreResult:
    computed: int = 0          # images evaluated now (the others were recorded before)
    seconds: float = 0.0       # wall time of the loop
    predict_seconds: float = 0.0  # time spent waiting for the stream (the model and its data loading)
    metric_wait_seconds: float = 0.0  # time the loop waited for metric workers (the metrics' overhead)


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def _init_worker(context: ScoreContext):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops the pool
    _exit_with_parent()
    # OpenCV's thread count comes from the parent (_forked_pool): here, in a forked child of a
    # process whose OpenCV thread pool already ran, setting it would wait on threads fork did not copy.
    _WORKER_STATE["context"] = context


def _exit_with_parent(poll_seconds: float = 0.2) -> None:
    """End this worker when the main process is gone (e.g. killed with SIGKILL). A forked worker
    holds both ends of the pool's queues, so it would wait for work forever, and it shares the run
    folder's lock (harness.run.records.RunLock), so a rerun would be refused as long as it lives."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="zeg-eval-parent-watch", daemon=True).start()


def _save_prediction(save_dir: Path, stem: str, pred: np.ndarray) -> None:
    # the stem comes from data (a split file line): the file must land inside save_dir
    atomic_write(inside(save_dir, f"{stem}.png"), lambda tmp: write_label_png(tmp, pred))


def _save_input(inputs_dir: Path, stem: str, dataset: DatasetSpec, condition: Condition) -> None:
    """The condition's image of `stem` as PNG (once: every model of the run sees the same image; the
    transform is deterministic, so this is the image the model was given)."""
    path = inside(inputs_dir, f"{stem}.png")
    if path.is_file():
        return
    image = condition.apply(read_rgb(dataset.image_path(stem)), stem)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def score_stem(stem: str, context: ScoreContext, pred: np.ndarray | None = None):
    """Evaluate one image: load its ground truth, predict it unless `pred` is given, evaluate."""
    dataset = context.dataset
    gt = dataset.load_label(stem)
    instances = dataset.load_instances(stem, gt.shape)
    predictor = context.predictor
    if pred is None:
        pred = predictor.predict(stem, gt, instances)
    where = predictor.where(stem) or f"model '{context.label}', image '{stem}'"
    pred = check_prediction(pred, gt, dataset, where)
    if context.save_dir is not None:
        _save_prediction(context.save_dir, stem, pred)
    if context.inputs_dir is not None:
        _save_input(context.inputs_dir, stem, dataset, context.condition)
    inputs = ImageInputs(gt=gt, pred=pred, instances=instances, amodal=dataset.load_amodal(stem, gt.shape))
    tables = evaluate_image(inputs, dataset, context.protocol)
    # what the records were made from, checked before a rerun reuses them
    tables["images"].update(identity=np.array([context.identity], dtype=object),
                            data_digest=np.array([data_digest(dataset, stem)], dtype=object),
                            input_digest=np.array([input_digest(predictor, stem)], dtype=object))
    return stem, tables


def _score_in_worker(stem, pred=None):
    try:
        return score_stem(stem, _WORKER_STATE["context"], pred)
    except UserError as exc:
        return stem, exc  # returned, not raised: the main process reports it as one line


class _Timed:
    """Wraps an iterator and sums the time spent inside next()."""

    def __init__(self, items: Iterable):
        self.items = iter(items)
        self.seconds = 0.0

    def __iter__(self):
        return self

    def __next__(self):
        start = time.perf_counter()
        try:
            return next(self.items)
        finally:
            self.seconds += time.perf_counter() - start


def score_model(dataset: DatasetSpec, protocol: Protocol, records: RecordSet, stems: list[str], *,
                predictor: Predictor, identity: str = "", done: set | None = None,
                workers: int | None = None, label: str = "", chunk_size: int = 64, part: str = WHOLE,
                save_dir: Path | None = None, max_inflight: int | None = None,
                condition: Condition = CLEAN_CONDITION, inputs_dir: Path | None = None) -> ScoreResult:
    """Evaluate every stem of `stems` not in `done` (default: the images already recorded).

    A predictor that runs in this process (`in_workers` false) has `stream(pending)` called only
    when some images are pending (so a finished model is never loaded); it yields (stem, label
    map) in the order of `pending`.
    """
    writer = RecordWriter(records, chunk_size=chunk_size, part=part)
    if done is None:
        from harness.run.records import done_images

        done = done_images(records)
    pending = [s for s in stems if s not in done]
    result = ScoreResult(computed=len(pending))
    if not pending:
        return result
    if predictor.reads_images or inputs_dir is not None:
        condition.warm_up()  # before the workers (metric pool, DataLoader) are forked from this process
    for folder in (save_dir, inputs_dir):
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
    workers = default_workers() if workers is None else workers
    context = ScoreContext(dataset=dataset, protocol=protocol, predictor=predictor, identity=identity,
                           save_dir=save_dir, label=label, condition=condition, inputs_dir=inputs_dir)
    in_workers = predictor.in_workers
    bar = tqdm(total=len(stems), initial=len(stems) - len(pending), desc=label, unit="img",
               dynamic_ncols=True, disable=None, smoothing=0.1)
    start = time.perf_counter()
    timed = None if in_workers else _Timed(predictor.stream(pending))
    items = timed if timed is not None else ((stem, None) for stem in pending)
    try:
        if workers <= 0 or (in_workers and (workers == 1 or len(pending) < 4)):
            for stem, pred in items:
                _commit(score_stem(stem, context, pred), writer, bar)
        else:
            max_inflight = max_inflight or 4 * workers
            # Python's recipe for fork without exec: frozen objects are left out of every later
            # collection, so the workers neither scan nor copy-on-write the parent's objects.
            gc.freeze()
            pool, processes = _forked_pool(workers, context)
            try:
                if in_workers:
                    _import_in_background(SUMMARY_MODULES)
                result.metric_wait_seconds = _pipeline(pool, items, writer, bar, max_inflight)
            except BrokenProcessPool:
                raise RunAborted(_worker_died(processes)) from None
            finally:
                # queued images are dropped; those being computed (one per worker) finish first
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        writer.flush()  # whatever finished is committed, also on Ctrl-C or an error
        bar.close()
        result.seconds = time.perf_counter() - start
        result.predict_seconds = timed.seconds if timed is not None else 0.0
    return result


def _forked_pool(workers: int, context: ScoreContext):
    """The worker pool, its processes forked with OpenCV single-threaded, and those processes.

    Each worker is one core's worth of work: OpenCV's thread pool in every worker only made the
    workers contend (about 5% more CPU). The count is set in this process for the moment of the
    fork (the workers inherit it; in a forked child, setNumThreads may wait on threads fork did not
    copy) and restored at once, so that a model running here keeps OpenCV's threads. With fork,
    ProcessPoolExecutor forks all its workers at the first submit, made here for that reason (its
    result is not awaited: a worker killed this early shows in the loop like any other).
    A worker that dies (e.g. killed by the OOM killer) breaks the pool: every waiting result then
    raises BrokenProcessPool instead of waiting forever."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_init_worker,
                                   initargs=(context,))
        pool.submit(os.getpid)  # forks every worker now (a worker dying meanwhile breaks the pool later)
    finally:
        cv2.setNumThreads(threads)
    # only to say in the message how a worker died (its signal); the pool does not tell
    processes = list(getattr(pool, "_processes", {}).values())
    return pool, processes


def _worker_died(processes) -> str:
    for process in processes:  # the pool's own thread may be reaping them: wait for their exit codes
        process.join(1.0)
    codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
    how = "died abruptly"
    if codes and codes[0] < 0:
        number = -codes[0]
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "signal"
        how = f"was killed ({name}, signal {number}{', e.g. out of memory' if number == signal.SIGKILL else ''})"
    elif codes:
        how = f"exited with code {codes[0]}"
    return (f"a metric worker {how}; finished images are saved, rerun the same command to resume "
            "(fewer --workers need less memory)")


# What the main process needs after the loop (writing records, aggregation): pandas alone takes
# 0.2 s to import, a sixth of scoring 48 maps.
SUMMARY_MODULES = ("pyarrow.parquet", "pandas")


def _import_in_background(modules) -> None:
    """Import `modules` in a thread while the workers compute, instead of afterwards.

    Only once the pool is forked, and only when this process forks nothing more (no model stream,
    whose DataLoader may fork workers): a process forked while a thread holds a module's import
    lock could wait on that lock forever."""
    def load():
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:  # reported where it is really needed
                return
        gc.freeze()  # modules live until exit: no collection (nor the one at exit) needs to scan them

    threading.Thread(target=load, name="zeg-eval-preload", daemon=True).start()


def _pipeline(pool, items, writer: RecordWriter, bar, max_inflight: int) -> float:
    """Submit items to the pool, keep at most `max_inflight` waiting, commit results in order."""
    inflight: deque = deque()
    waited = 0.0
    for stem, pred in items:
        inflight.append(pool.submit(_score_in_worker, stem, pred))
        while inflight and (len(inflight) >= max_inflight or inflight[0].done()):
            start = time.perf_counter()
            out = inflight.popleft().result()
            waited += time.perf_counter() - start
            _commit(out, writer, bar)
    while inflight:
        start = time.perf_counter()
        out = inflight.popleft().result()
        waited += time.perf_counter() - start
        _commit(out, writer, bar)
    return waited


def _commit(out, writer: RecordWriter, bar) -> None:
    stem, tables = out
    if isinstance(tables, Exception):
        raise tables
    writer.add(stem, tables)
    bar.update(1)
