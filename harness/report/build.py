"""Run folders in, one self-contained HTML page plus CSV tables out (see docs/report.md)."""
from __future__ import annotations

import html
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.evaluation.bootstrap import percentile_interval as interval
from harness.metrics.family import COUNT, MetricInfo
from harness.metrics.registry import FAMILIES
from harness.report import explorer as explorer_mod
from harness.report import export as export_mod
from harness.report import formats, plots
from harness.report import gallery as gallery_mod
from harness.report import robustness as robustness_mod
from harness.report.names import csv_safe
from harness.report.runs import ModelRun, load_runs
from harness.report.stats import (
    FAMILY_ORDER,
    Bootstrap,
    ModelMetrics,
    intervals,
    point_estimates,
)

# The headline panel's metrics, in this order, where the protocol has them: the answer to "does the
# model beat the baseline on small objects, on unseen classes, at boundaries, overall?".
HEADLINE = ("object_recall@small", "mIoU_unseen", "hIoU", "boundary_IoU", "mIoU", "object_recall@occ_gt50")
N_IMAGES = MetricInfo("n_images", "run", unit=COUNT, better=None, interval=False, definition="images evaluated")
_SUB = re.compile(r"^(?P<base>.+?)_(?P<part>FP|FN|renormed|seen|unseen)(?P<at>@.+)?$")
_ENTRY_KEYS_SHOWN_ELSEWHERE = {"kind", "path", "status", "seconds", "images_computed_last_run"}


@dataclass
class Entry:
    model: ModelRun
    point: ModelMetrics
    dists: dict = field(default_factory=dict)   # metric -> [B]
    ci: dict = field(default_factory=dict)      # metric -> (lo, hi)

    @property
    def label(self) -> str:
        return self.model.label


@dataclass
class Options:
    n_boot: int = 1000
    seed: int = 0
    level: float = 95.0
    baseline: str | None = None
    allow_partial: bool = False
    gallery_objects: int = 8
    gallery_worst: int = 3
    gallery_min_area: int = 16   # gallery objects under this many pixels are skipped
    explorer_images: int = 40    # images whose pictures the object explorer embeds
    figure_files: bool = True    # also write every figure as SVG, PDF and 300-dpi PNG under figures/
    heatmap_classes: int = 20
    min_objects: int = 30        # a headline bucket with fewer objects is flagged as too small
    export: tuple = ()           # paper tables to write: "latex", "markdown" (harness.report.export)
    export_metrics: tuple = ()   # their metrics (default: the headline metrics the runs have)


def metric_infos(entries) -> dict[str, MetricInfo]:
    """metric -> what it is (unit, direction, interval, definition), from each family's metadata
    under each run's protocol settings; the first run that has a metric names it."""
    infos = {"n_images": N_IMAGES}
    seen_runs = set()
    for e in entries:
        if id(e.model.run) in seen_runs:
            continue
        seen_runs.add(id(e.model.run))
        for fam, cfg in e.model.run.protocol.families.items():
            for m in FAMILIES[fam].metrics(cfg) if fam in FAMILIES else ():
                infos.setdefault(m.name, m)
    return infos


def _info(infos: dict, metric: str, family: str) -> MetricInfo:
    # a metric a family reports without metadata: a percentage of unknown direction
    return infos.get(metric) or MetricInfo(metric, family, better=None, definition="(no description)")


def parent_of(metric: str, family: str, names: set) -> str | None:
    """The row a sub-metric folds under: the FP / FN parts and the renormed form of an error share,
    and the seen / unseen split of an object or miss metric (`X_seen@b` under `X@b`). The standard
    family's seen / unseen mIoU are headline numbers and stay rows of their own."""
    m = _SUB.match(metric)
    if not m or family == "standard":
        return None
    parent = m["base"] + (m["at"] or "")
    return parent if parent in names and parent != metric else None



def _resolve_baseline(entries: list[Entry], name: str | None) -> Entry:
    if name is None:
        return entries[0]
    exact = [e for e in entries if e.label == name]
    by_name = [e for e in entries if e.model.name == name]
    match = exact or by_name
    if len(match) == 1:
        return match[0]
    known = ", ".join(e.label for e in entries)
    if not match:
        raise UserError(f"--baseline '{name}' is not a model of these runs (models: {known})")
    raise UserError(f"--baseline '{name}' is ambiguous (models: {known}); use run/model")


def _metric_order(entries: list[Entry]) -> list[str]:
    order: dict[str, tuple] = {}
    fam_rank = {f: i + 1 for i, f in enumerate(FAMILY_ORDER)}
    for e in entries:
        for k in e.point.scalars:
            if k not in order:
                order[k] = (fam_rank.get(e.point.family_of.get(k), 0), len(order))
    return sorted(order, key=order.get)


def compute(paths, options: Options) -> dict:
    """Everything the page and the CSVs show, as plain data."""
    t0 = time.perf_counter()
    runs, models = load_runs(paths, options.allow_partial)
    t1 = time.perf_counter()
    entries = [Entry(model=m, point=point_estimates(m)) for m in models]
    t2 = time.perf_counter()
    boot = Bootstrap(models, options.n_boot, options.seed)
    for e in entries:
        e.dists = boot.distributions(e.model, e.point)
        e.ci = {k: interval(v, options.level) for k, v in e.dists.items()}
    t3 = time.perf_counter()
    base = _resolve_baseline(entries, options.baseline)
    warnings_: list[str] = []
    keys = {r.dataset_key for r in runs}
    if len(keys) > 1:
        names = "; ".join(f"{r.label}: {r.dataset.name} ({r.dataset.num_classes} classes)" for r in runs)
        warnings_.append(f"The runs are on different data ({names}). Metrics are not comparable across data; "
                         "deltas are given only against a baseline on the same data.")
    base_images = set(base.model.images)
    for e in entries:
        if e is base or e.model.run.dataset_key != base.model.run.dataset_key:
            continue
        imgs = set(e.model.images)
        if imgs != base_images:
            common = len(imgs & base_images)
            warnings_.append(f"{e.label} was evaluated on {len(imgs)} images, the baseline {base.label} on "
                             f"{len(base_images)} ({common} in common): its delta compares different image sets "
                             "and is paired only on the common images.")
    warnings_.extend(protocol_differences(runs))
    for r in runs:
        if r.partial:
            warnings_.append(f"Run {r.label} is PARTIAL (status '{r.manifest.get('status')}'): it reports only "
                             "the images recorded so far.")
        warnings_.extend(f"{r.label}: {n}" for n in r.notes)
    for e in entries:
        for fam, state in e.point.families.items():
            if state.startswith("failed"):
                warnings_.append(f"{e.label}: metric family '{fam}' could not be computed ({state[8:]}); "
                                 "shown as absent.")
    infos = metric_infos(entries)
    rows = _rows(entries, base, infos, options.level)
    t4 = time.perf_counter()
    robustness = robustness_mod.load_all(runs, entries)   # the runs' robustness.csv / robustness_summary.csv
    t5 = time.perf_counter()
    return {"runs": runs, "entries": entries, "base": base, "rows": rows, "warnings": warnings_, "boot": boot,
            "infos": infos, "robustness": robustness,
            "options": options, "timings": {"read_records": t1 - t0, "point_estimates": t2 - t1,
                                            "bootstrap": t3 - t2, "read_robustness": t5 - t4}}


def protocol_differences(runs) -> list[str]:
    """One line per metric family that two runs compute with different settings (their metrics of
    that family are not comparable), each run against the first."""
    def families(run):
        return (run.manifest.get("protocol") or {}).get("families") or {}

    out = []
    first = runs[0]
    for run in runs[1:]:
        a, b = families(first), families(run)
        for fam in [f for f in a if f in b and isinstance(a[f], dict) and isinstance(b[f], dict)]:
            keys = [k for k in dict.fromkeys([*a[fam], *b[fam]]) if a[fam].get(k) != b[fam].get(k)]
            if keys:
                diff = "; ".join(f"{k}: {json.dumps(a[fam].get(k))} vs {json.dumps(b[fam].get(k))}" for k in keys)
                out.append(f"Runs {first.label} and {run.label} compute family '{fam}' with different settings "
                           f"({diff}): its metrics are not comparable between them.")
    return out


def _cell(e: Entry, base: Entry, metric: str, info: MetricInfo, level: float) -> dict:
    """One model's value, interval, delta against the baseline and its interval for one metric."""
    value = e.point.scalars.get(metric)
    lo, hi = e.ci.get(metric, (math.nan, math.nan))
    cell = {"label": e.label, "value": value, "text": formats.value_text(value, info), "num": formats.data_number(value),
            "ci_lo": lo, "ci_hi": hi, "ci_text": formats.interval_text(lo, hi, info),
            "delta": None, "d_lo": math.nan, "d_hi": math.nan, "sig": 0, "is_base": e is base,
            "status": "absent" if value is None else ("nan" if not math.isfinite(value) else "ok")}
    bvalue = base.point.scalars.get(metric)
    if (e is not base and value is not None and bvalue is not None and formats.has_delta(info)
            and e.model.run.dataset_key == base.model.run.dataset_key):
        cell["delta"] = value - bvalue
        if metric in e.dists and metric in base.dists:
            cell["d_lo"], cell["d_hi"] = interval(e.dists[metric] - base.dists[metric], level)
            if math.isfinite(cell["d_lo"]) and (cell["d_lo"] > 0 or cell["d_hi"] < 0):
                cell["sig"] = 1 if cell["d_lo"] > 0 else -1
    cell["d_num"] = formats.data_number(cell["delta"])
    cell["d_text"] = formats.delta_text(cell["delta"], info)
    cell["d_ci_text"] = formats.interval_text(cell["d_lo"], cell["d_hi"], info, signed=True)
    # emphasis: significant, and not a delta that reads 0.00 (the CSV keeps the interval's verdict)
    cell["shown_sig"] = bool(cell["sig"]) and not formats.rounds_to_zero(cell["delta"], info)
    direction = {"higher": 1, "lower": -1}.get(info.better, 0)
    cell["better"] = 0 if not cell["shown_sig"] or not direction else (1 if cell["sig"] == direction else -1)
    return cell


def _rows(entries, base, infos, level) -> list[dict]:
    """The summary table: one row per metric (families in registry order), sub-metrics right after
    the row they fold under."""
    order = _metric_order(entries)
    family = {m: next((e.point.family_of[m] for e in entries if m in e.point.family_of), "") for m in order}
    names = set(order)
    parents = {m: parent_of(m, family[m], names) for m in order}
    children: dict[str, list] = {}
    for m in order:
        if parents[m]:
            children.setdefault(parents[m], []).append(m)
    rows = []
    for metric in (m for top in order if not parents[top] for m in [top, *children.get(top, [])]):
        info = _info(infos, metric, family[metric])
        cells = [_cell(e, base, metric, info, level) for e in entries]
        definition = info.definition + (f" ({info.source})" if info.source else "")
        better = {"higher": "higher is better", "lower": "lower is better"}.get(info.better, "no direction")
        rows.append({"metric": metric, "family": family[metric], "cells": cells, "info": info,
                     "parent": parents[metric] or "", "n_children": len(children.get(metric, [])),
                     "tip": f"{metric}: {definition} · unit: {info.unit} · {better}"
                            + ("" if info.interval else " · no bootstrap interval"),
                     "sig": any(c["shown_sig"] for c in cells)})
    return rows


# ----------------------------------------------------------------------------------------------
# CSV


def tables(data: dict) -> dict[str, pd.DataFrame]:
    entries, rows = data["entries"], data["rows"]
    metrics = [r["metric"] for r in rows]
    wide = pd.DataFrame([{"model": e.label, "run": e.model.run.label,
                          **{m: e.point.scalars.get(m, np.nan) for m in metrics}} for e in entries])
    long_rows = []
    for r in rows:
        for c, e in zip(r["cells"], entries):
            long_rows.append({"model": e.label, "run": e.model.run.label, "family": r["family"], "metric": r["metric"],
                              "status": c["status"], "value": np.nan if c["value"] is None else c["value"],
                              "ci_lo": c["ci_lo"], "ci_hi": c["ci_hi"], "baseline": data["base"].label,
                              "delta": np.nan if c["delta"] is None else c["delta"], "delta_ci_lo": c["d_lo"],
                              "delta_ci_hi": c["d_hi"], "significant": bool(c["sig"]),
                              "n_images": e.point.n_images})
    per_class = [e.point.per_class.assign(model=e.label, run=e.model.run.label) for e in entries]
    small = plots.small_object_table(entries)
    per_class = pd.concat(per_class, ignore_index=True) if per_class else pd.DataFrame()
    if len(small) and len(per_class):
        per_class = per_class.merge(small.drop(columns="bucket"), on=["model", "class"], how="left")
        per_class["n_small_objects"] = per_class["n_small_objects"].fillna(0).astype(int)
    buckets = []
    for e in entries:
        pb = e.point.per_bucket
        if not len(pb):
            continue
        pb = pb.assign(model=e.label, run=e.model.run.label)
        splits = pb["split"] if "split" in pb else pd.Series("all", index=pb.index)
        for metric in ("object_recall", "object_IoU"):
            # the summary's name of each row's metric: object_recall[_<split>][@<bucket>]
            names = [(metric if sp == "all" else f"{metric}_{sp}") + ("" if k == "all" else f"@{b}")
                     for k, b, sp in zip(pb["bucket_kind"], pb["bucket"], splits)]
            cis = [e.ci.get(n, (np.nan, np.nan)) for n in names]
            pb[f"{metric}_ci_lo"] = [c[0] for c in cis]
            pb[f"{metric}_ci_hi"] = [c[1] for c in cis]
        buckets.append(pb)
    per_bucket = pd.concat(buckets, ignore_index=True) if buckets else pd.DataFrame({"model": []})

    def front(frame, cols):
        return frame[[c for c in cols if c in frame] + [c for c in frame.columns if c not in cols]]

    return {"summary.csv": wide, "summary_long.csv": pd.DataFrame(long_rows),
            "per_class.csv": front(per_class, ["model", "run", "class_id", "class", "split"]),
            "per_bucket.csv": front(per_bucket, ["model", "run", "family", "bucket_kind", "bucket"]),
            "small_objects.csv": small, **robustness_mod.tables(data.get("robustness") or [])}


# ----------------------------------------------------------------------------------------------
# HTML


def _run_header(run) -> dict:
    m = run.manifest
    models = []
    for name, entry in (m.get("models") or {}).items():
        entry = entry if isinstance(entry, dict) else {}
        spec = entry.get("spec") if isinstance(entry.get("spec"), dict) else {}
        checkpoint = entry.get("checkpoint") or spec.get("checkpoint")
        identity = ((entry.get("identities") or {}).get("clean") or {}).get("model") or {}
        sha = identity.get("checkpoint_sha256")
        shown = {"kind", "path", "checkpoint", "config"}
        extra = {k: v for k, v in spec.items() if k not in shown | {"name"} and v not in (None, "", [], {})}
        # per-run timings and resume counters are in manifest.json; the header shows what the model is
        extra.update({k: v for k, v in entry.items() if v not in (None, "", [], {})
                      and k not in _ENTRY_KEYS_SHOWN_ELSEWHERE | {"spec", "identities", "conditions", "shards", "timings",
                                                                  "images_computed_last_run"}})
        models.append({"name": name, "kind": entry.get("kind", spec.get("kind", "?")),
                       "path": spec.get("path") or "", "status": entry.get("status", "?"),
                       "seconds": entry.get("seconds"), "checkpoint": checkpoint or "", "sha256": sha or "",
                       "config": spec.get("config") or "",
                       "extra": " · ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(extra.items()))})
    families = {k: v for k, v in ((m.get("protocol") or {}).get("families") or {}).items()}
    d = run.dataset
    return {"label": run.label, "path": str(run.path), "status": m.get("status", "?"), "partial": run.partial,
            "created": m.get("created", "?"), "finished": m.get("finished", ""), "models": models,
            "dataset": {"name": d.name, "root": str(d.root), "classes": d.num_classes, "unseen": len(d.unseen),
                        "images": len(m.get("images") or [])},
            "protocol": (m.get("protocol") or {}).get("name", "?"),
            "protocol_path": m.get("protocol_path", ""),
            "families": {k: json.dumps(v, default=str) for k, v in families.items()},
            "versions": m.get("versions") or {}}


def _support(e: Entry, metric: str) -> tuple[str, int | None, str]:
    """What a headline number of model e rests on: (text, the count a small-sample warning reads,
    what is counted). Object metrics: the objects of their bucket (n_objects[_split][@bucket]);
    seen / unseen metrics: the classes of that split present in the ground truth; else images."""
    s, n_img = e.point.scalars, e.point.n_images
    images = f"{n_img:,} images"
    stem, _, bucket = metric.partition("@")
    if stem.startswith(("object_recall", "object_IoU")):
        split = stem.rsplit("_", 1)[1] if stem.endswith(("_seen", "_unseen")) else ""
        n = s.get("n_objects" + (f"_{split}" if split else "") + (f"@{bucket}" if bucket else ""))
        if n is not None and math.isfinite(n):
            return f"{int(n):,} objects · {images}", int(n), "objects"
    pc = e.point.per_class
    if {"split", "pixels"} <= set(pc.columns):
        present = pc[pc["pixels"] > 0]
        seen, unseen = int((present["split"] == "seen").sum()), int((present["split"] == "unseen").sum())
        if metric in ("mIoU_unseen", "hIoU"):
            return f"{unseen} unseen, {seen} seen classes · {images}", unseen, "unseen classes"
        return f"{len(present)} classes · {images}", None, "classes"
    return images, None, "images"


def _verdict(c: dict) -> str:
    if c["delta"] is None:
        return ""
    if not math.isfinite(c["d_lo"]):
        return "no interval"
    if c["shown_sig"]:
        return {1: "better", -1: "worse"}.get(c["better"], "differs")
    return "below the shown precision" if c["sig"] else "not significant"


def headline(data: dict, min_objects: int, min_classes: int = 3) -> dict:
    """The first screen: per model, the protocol's key metrics against the baseline (value, delta,
    interval, verdict) and what each rests on, with a warning where a bucket is small enough that
    its interval means little (a bucket of 2 objects resamples to a handful of values)."""
    entries, base, rows = data["entries"], data["base"], data["rows"]
    by_metric = {r["metric"]: r for r in rows}
    metrics = [m for m in HEADLINE if m in by_metric and any(c["status"] == "ok" for c in by_metric[m]["cells"])]
    b = entries.index(base)
    cards = []
    for i, e in enumerate(entries):
        if e is base and len(entries) > 1:
            continue
        lines = []
        for m in metrics:
            row = by_metric[m]
            c, bc = row["cells"][i], row["cells"][b]
            support, n, what = _support(e, m)
            limit = min_objects if what == "objects" else min_classes
            warn = (f"only {n} {what}: the interval is unreliable" if n is not None and n < limit else "")
            lines.append({"metric": m, "tip": row["tip"], "cell": c, "base": bc, "support": support, "warn": warn,
                          "verdict": _verdict(c)})
        cards.append({"label": e.label, "is_base": e is base, "lines": lines,
                      "comparable": e.model.run.dataset_key == base.model.run.dataset_key})
    return {"metrics": metrics, "cards": cards}


def run_to_run(data: dict, metrics: list[str]) -> list[dict]:
    """Compare mode: a model of the same name in two runs on the same data, the later run against the
    first, on the headline metrics: both values, the difference and its paired bootstrap interval
    (the same resamples of the pooled images for both)."""
    infos, level = data["infos"], data["options"].level
    by_name: dict[str, list] = {}
    for e in data["entries"]:
        by_name.setdefault(e.model.name, []).append(e)
    out = []
    for name, es in by_name.items():
        first = es[0]
        for other in es[1:]:
            if other.model.run.dataset_key != first.model.run.dataset_key:
                continue
            lines = []
            for m in metrics:
                a, b = first.point.scalars.get(m), other.point.scalars.get(m)
                if a is None or b is None or not formats.has_delta(_info(infos, m, "")):
                    continue
                info = _info(infos, m, "")
                lo, hi = (interval(other.dists[m] - first.dists[m], level) if m in other.dists and m in first.dists
                          else (math.nan, math.nan))
                d = b - a
                sig = math.isfinite(lo) and (lo > 0 or hi < 0) and not formats.rounds_to_zero(d, info)
                lines.append({"metric": m, "a": formats.value_text(a, info), "b": formats.value_text(b, info),
                              "d": formats.delta_text(d, info), "d_num": formats.data_number(d),
                              "ci": formats.interval_text(lo, hi, info, signed=True),
                              "verdict": "differs" if sig else ("no interval" if not math.isfinite(lo)
                                                                 else "not significant")})
            out.append({"name": name, "a": first.label, "b": other.label, "lines": lines})
    return out


def _per_class_view(entries, base, boot: Bootstrap, level: float) -> dict | None:
    """Per-class IoU of every model on the baseline's data with its delta against the baseline and
    the delta's paired bootstrap interval; classes with no ground-truth pixel are left out."""
    same = [e for e in entries if e.model.run.dataset_key == base.model.run.dataset_key
            and "IoU" in e.point.per_class]
    if base not in same:
        return None
    info = MetricInfo("IoU", "standard")
    pc = base.point.per_class
    pixels = pc["pixels"].to_numpy(dtype=np.float64) if "pixels" in pc else np.ones(len(pc))
    dists = {e.label: boot.class_iou(e.model) for e in same}
    bounds = {}
    for e in same:
        if e is not base and dists[e.label] is not None and dists[base.label] is not None:
            bounds[e.label] = intervals(dists[e.label] - dists[base.label], level)
    others = [e for e in same if e is not base]
    rows = []
    for i, cls in enumerate(base.model.run.dataset.classes):
        if not pixels[i] > 0:
            continue
        bv = float(pc["IoU"].iloc[i])
        vals = []
        for e in others:
            v = float(e.point.per_class["IoU"].iloc[i])
            d = v - bv
            lo, hi = (bounds[e.label][0][i], bounds[e.label][1][i]) if e.label in bounds else (math.nan, math.nan)
            sig = math.isfinite(lo) and (lo > 0 or hi < 0) and not formats.rounds_to_zero(d, info)
            vals.append({"num": formats.data_number(v), "text": formats.value_text(v, info), "d_num": formats.data_number(d),
                         "d_text": formats.delta_text(d, info), "d_ci": formats.interval_text(lo, hi, info, True),
                         "cls": "" if not sig else ("sig better" if d > 0 else "sig worse")})
        rows.append({"cls": cls, "split": str(pc["split"].iloc[i]) if "split" in pc else "",
                     "pixels": int(pixels[i]), "base_num": formats.data_number(bv), "base_text": formats.value_text(bv, info),
                     "vals": vals})
    return {"base": base.label, "labels": [e.label for e in others], "rows": rows,
            "hidden": int((~(pixels > 0)).sum())}


def render(data: dict, figures: list, gallery, csv_names: list[str], seconds: float, explorer=None,
           robustness=None) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    template = env.get_template("report.html.j2")
    entries, base = data["entries"], data["base"]
    families = [f for f in FAMILY_ORDER]
    absent_fams = [f for f in families if not any(e.point.families.get(f) == "ok" for e in entries)]
    opts = data["options"]
    return template.render(
        title="zeg-eval report: " + ", ".join(r.label for r in data["runs"]),
        runs=[_run_header(r) for r in data["runs"]], entries=entries, base=base, rows=data["rows"],
        warnings=data["warnings"], figures=figures, gallery=gallery, csv_names=csv_names,
        families=families, absent_families=absent_fams,
        family_state={e.label: e.point.families for e in entries},
        per_class=_per_class_view(entries, base, data["boot"], opts.level),
        headline=(head := headline(data, opts.min_objects)), explorer=explorer,
        run_pairs=run_to_run(data, head["metrics"]), headline_names=HEADLINE, n_boot=opts.n_boot, seed=opts.seed, level=opts.level,
        n_pooled=len(data["boot"].stems), generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        robustness=robustness,
        seconds=f"{seconds:.1f}", escape=html.escape)


def build_report(paths, out_dir, options: Options | None = None) -> dict:
    """Write report.html and the CSV tables into out_dir; returns a dict of paths and timings."""
    options = options or Options()
    if options.n_boot < 0:
        raise UserError("--bootstrap must be >= 0")
    if not 0 < options.level < 100:
        raise UserError("--level must be between 0 and 100")
    t0 = time.perf_counter()
    data = compute(paths, options)
    t1 = time.perf_counter()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder ({exc.strerror})", out) from None
    csvs = tables(data)
    for name, frame in csvs.items():
        csv_safe(frame).to_csv(out / name, index=False)
    exported = export_mod.write(data, out, options.export,
                                export_mod.choose_metrics(data, options.export_metrics, HEADLINE), options.level)
    t2 = time.perf_counter()
    entries = data["entries"]
    col = plots.colors([e.label for e in entries])
    with plots.style():  # names are drawn as text (no mathtext), legible fonts
        drawn = (plots.differences(entries, data["base"], col, options.level), plots.size_buckets(entries, col),
                 plots.band_curve(entries, col), plots.occlusion_curves(entries, col), plots.seen_unseen(entries, col),
                 plots.error_breakdown(entries, col),
                 plots.small_object_heatmap(entries, csvs["small_objects.csv"], options.heatmap_classes))
        figures = [plots.save(f, out, options.figure_files) for f in drawn if f is not None]
        t_rob = time.perf_counter()
        rob_figures = [plots.save(f, out, options.figure_files, page=f.key not in robustness_mod.PAPER_ONLY)
                       for f in robustness_mod.figures(data["robustness"], col, plots.linestyles(entries),
                                                       options.figure_files)]
    t3 = time.perf_counter()
    gallery = gallery_mod.build_gallery(entries, data["base"], options.gallery_objects, options.gallery_worst,
                                        options.gallery_min_area)
    explorer = explorer_mod.build(entries, data["base"], options.explorer_images, options.gallery_min_area)
    t_view = time.perf_counter()
    robustness = robustness_mod.view(data["robustness"], data["infos"], data["runs"])
    if robustness is not None:
        robustness["figures"] = rob_figures
    t4 = time.perf_counter()
    page = render(data, figures, gallery, list(csvs), t4 - t0, explorer, robustness)
    html_path = out / "report.html"
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    t5 = time.perf_counter()
    return {"html": html_path, "csv": {n: out / n for n in csvs}, "data": data, "export": exported,
            "timings": {**data["timings"], "deltas_and_table": t1 - t0 - sum(data["timings"].values()),
                        "csv": t2 - t1, "plots": t3 - t2, "robustness_plots": t3 - t_rob,
                        "gallery_and_explorer": t_view - t3, "robustness_section": t4 - t_view,
                        "html": t5 - t4, "total": t5 - t0}}
