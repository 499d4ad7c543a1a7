"""Run folders in, one self-contained HTML page plus CSV tables out (see docs/report.md)."""
from __future__ import annotations

import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.report import gallery as gallery_mod
from harness.report import plots
from harness.report.names import csv_safe
from harness.report.runs import ModelRun, load_runs
from harness.report.stats import (
    FAMILY_ORDER,
    Bootstrap,
    ModelMetrics,
    interval,
    point_estimates,
)

LOWER_IS_BETTER = ("mE_", "fp_blobs", "mean_occlusion")
NEUTRAL = ("n_", "pct_edge", "occlusion_from_amodal_share", "mean_occlusion")
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
    heatmap_classes: int = 20


def _direction(metric: str) -> int:
    """+1 higher is better, -1 lower is better, 0 neither (counts)."""
    if metric.startswith(NEUTRAL):
        return 0
    return -1 if metric.startswith(LOWER_IS_BETTER) else 1


def _fmt(metric: str, value) -> str:
    if value is None:
        return "absent"
    if not math.isfinite(value):
        return "n/a"
    if metric.startswith(("n_", "pct_edge")) or metric == "n_images":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if metric.startswith("fp_blobs_per_image"):
        return f"{value:.3f}"
    return f"{value:.2f}"


def _num(value) -> str:
    """Full-precision value for data attributes (what the tests and the sorting read)."""
    if value is None:
        return ""
    return "nan" if not math.isfinite(value) else repr(float(value))


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
    rows = []
    for metric in _metric_order(entries):
        cells = []
        direction = _direction(metric)
        for e in entries:
            value = e.point.scalars.get(metric)
            lo, hi = e.ci.get(metric, (math.nan, math.nan))
            cell = {"label": e.label, "value": value, "text": _fmt(metric, value), "num": _num(value),
                    "ci_lo": lo, "ci_hi": hi, "delta": None, "d_lo": math.nan, "d_hi": math.nan, "sig": 0,
                    "is_base": e is base, "status": "absent" if value is None else
                    ("nan" if not math.isfinite(value) else "ok")}
            cell["ci_text"] = f"[{_fmt(metric, lo)}, {_fmt(metric, hi)}]" if math.isfinite(lo) else ""
            bvalue = base.point.scalars.get(metric)
            comparable = (e is not base and value is not None and bvalue is not None
                          and e.model.run.dataset_key == base.model.run.dataset_key)
            if comparable:
                cell["delta"] = value - bvalue
                if metric in e.dists and metric in base.dists:
                    d_lo, d_hi = interval(e.dists[metric] - base.dists[metric], options.level)
                    cell["d_lo"], cell["d_hi"] = d_lo, d_hi
                    if math.isfinite(d_lo) and (d_lo > 0 or d_hi < 0):
                        cell["sig"] = 1 if d_lo > 0 else -1
            cell["d_num"] = _num(cell["delta"])
            cell["d_text"] = "" if cell["delta"] is None else (
                "n/a" if not math.isfinite(cell["delta"]) else f"{cell['delta']:+.2f}")
            cell["d_ci_text"] = f"[{cell['d_lo']:+.2f}, {cell['d_hi']:+.2f}]" if math.isfinite(cell["d_lo"]) else ""
            cell["better"] = 0 if not cell["sig"] or not direction else (1 if cell["sig"] == direction else -1)
            cells.append(cell)
        family = next((e.point.family_of[metric] for e in entries if metric in e.point.family_of), "")
        rows.append({"metric": metric, "family": family, "cells": cells})
    return {"runs": runs, "entries": entries, "base": base, "rows": rows, "warnings": warnings_, "boot": boot,
            "options": options, "timings": {"read_records": t1 - t0, "point_estimates": t2 - t1,
                                            "bootstrap": t3 - t2}}


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
            "small_objects.csv": small}


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


def _per_class_view(entries, base, metric="IoU") -> dict | None:
    same = [e for e in entries if e.model.run.dataset_key == base.model.run.dataset_key
            and metric in e.point.per_class]
    if not same:
        return None
    pc = base.point.per_class
    rows = []
    for i, cls in enumerate(base.model.run.dataset.classes):
        vals = []
        for e in same:
            v = float(e.point.per_class[metric].iloc[i])
            vals.append({"num": _num(v), "text": _fmt(metric, v)})
        split = str(pc["split"].iloc[i]) if "split" in pc else ""
        pixels = int(pc["pixels"].iloc[i]) if "pixels" in pc else 0
        rows.append({"cls": cls, "split": split, "pixels": pixels, "vals": vals})
    return {"metric": metric, "labels": [e.label for e in same], "rows": rows}


def render(data: dict, figures: list, gallery, csv_names: list[str], seconds: float) -> str:
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
        per_class=_per_class_view(entries, base), n_boot=opts.n_boot, seed=opts.seed, level=opts.level,
        n_pooled=len(data["boot"].stems), generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
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
    t2 = time.perf_counter()
    entries = data["entries"]
    col = plots.colors([e.label for e in entries])
    with plots.style():  # names are drawn as text (no mathtext), legible fonts
        figures = [f for f in (plots.size_buckets(entries, col), plots.band_curve(entries, col),
                               plots.occlusion_curves(entries, col), plots.seen_unseen(entries, col),
                               plots.error_breakdown(entries, col),
                               plots.small_object_heatmap(entries, csvs["small_objects.csv"],
                                                          options.heatmap_classes))
                   if f is not None]
    t3 = time.perf_counter()
    gallery = gallery_mod.build_gallery(entries, data["base"], options.gallery_objects, options.gallery_worst)
    t4 = time.perf_counter()
    page = render(data, figures, gallery, list(csvs), t4 - t0)
    html_path = out / "report.html"
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    t5 = time.perf_counter()
    return {"html": html_path, "csv": {n: out / n for n in csvs}, "data": data,
            "timings": {**data["timings"], "deltas_and_table": t1 - t0 - sum(data["timings"].values()),
                        "csv": t2 - t1, "plots": t3 - t2, "gallery": t4 - t3,
                        "html": t5 - t4, "total": t5 - t0}}
