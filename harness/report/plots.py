"""The report's figures (matplotlib/seaborn, Agg), each returned as a base64 PNG for inlining.

Every function takes the report's entries (see harness.report.build.Entry) and returns a Figure
record, or None when no model has the metrics it needs (the page then says which family is absent).
"""
from __future__ import annotations

import base64
import contextlib
import io
import math
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harness.metrics.buckets import in_bucket  # noqa: E402

_BAND = re.compile(r"^mIoU@band(\d+)px$")


@dataclass
class Figure:
    key: str
    title: str
    png_b64: str
    caption: str = ""


@contextlib.contextmanager
def style():
    """The figures' matplotlib settings: text is never parsed as mathtext (a class or model name
    holding `$` is drawn as typed; see harness.report.names), and fonts readable at page width."""
    with plt.rc_context({"text.parse_math": False, "font.size": 11, "axes.titlesize": 12,
                         "axes.labelsize": 11, "legend.fontsize": 10, "xtick.labelsize": 10,
                         "ytick.labelsize": 10}):
        yield


def colors(labels) -> dict:
    palette = sns.color_palette("tab10", max(10, len(labels)))
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _encode(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _value(entry, metric) -> float:
    v = entry.point.scalars.get(metric)
    return math.nan if v is None else float(v)


def _ci(entry, metric) -> tuple[float, float]:
    return entry.ci.get(metric, (math.nan, math.nan))


def _line_panel(ax, entries, names, metric_of, col, ylabel, xs=None, logx=False):
    xs = list(range(len(names))) if xs is None else xs
    for e in entries:
        ys = np.array([_value(e, metric_of(n)) for n in names])
        lo = np.array([_ci(e, metric_of(n))[0] for n in names])
        hi = np.array([_ci(e, metric_of(n))[1] for n in names])
        ax.plot(xs, ys, marker="o", color=col[e.label], label=e.label)
        if np.isfinite(lo).any():
            ax.fill_between(xs, lo, hi, color=col[e.label], alpha=0.18, linewidth=0)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
    else:
        ax.set_xticks(xs, names)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def size_buckets(entries, col) -> Figure | None:
    es = [e for e in entries if e.point.families.get("size") == "ok"]
    if not es:
        return None
    rows = []
    for attr in ("buckets", "relative_buckets"):
        names = []
        for e in es:
            for name in getattr(e.model.run.protocol.families["size"], attr, {}) or {}:
                if name not in names:
                    names.append(name)
        if names:
            rows.append((attr, names))
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 3.3 * len(rows)), squeeze=False)
    for r, (attr, names) in enumerate(rows):
        kind = "absolute area" if attr == "buckets" else "share of the image"
        _line_panel(axes[r, 0], es, names, lambda n: f"object_recall@{n}", col, f"object recall (%)\n{kind}")
        _line_panel(axes[r, 1], es, names, lambda n: f"object_IoU@{n}", col, f"object IoU (%)\n{kind}")
    axes[0, 1].legend(fontsize=8, loc="best")
    fig.suptitle("Objects by size bucket (bands: bootstrap 95% CI)")
    return Figure("size", "Object recall and object IoU by size", _encode(fig),
                  "Hit rate (pixel recall ≥ threshold) and mean object IoU of the ground-truth objects in each "
                  "size bucket; shaded: paired bootstrap 95% interval over images.")


def band_curve(entries, col) -> Figure | None:
    es = [e for e in entries if any(_BAND.match(k) for k in e.point.scalars)]
    if not es:
        return None
    widths = sorted({int(m.group(1)) for e in es for k in e.point.scalars if (m := _BAND.match(k))})
    fig, ax = plt.subplots(figsize=(6, 3.6))
    _line_panel(ax, es, widths, lambda w: f"mIoU@band{w}px", col, "mIoU in the band (%)", xs=widths, logx=True)
    ax.set_xlabel("band width around the ground-truth boundary (px)")
    ax.legend(fontsize=8)
    return Figure("band", "Boundary band curve", _encode(fig),
                  "mIoU restricted to a band of the given width around ground-truth boundaries (trimap IoU); "
                  "shaded: 95% interval.")


def occlusion_curves(entries, col) -> Figure | None:
    es = [e for e in entries if e.point.families.get("occlusion") == "ok"]
    if not es:
        return None
    names = []
    for e in es:
        for name in getattr(e.model.run.protocol.families["occlusion"], "buckets", {}) or {}:
            if name not in names:
                names.append(name)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    _line_panel(axes[0], es, names, lambda n: f"object_recall@{n}", col, "object recall (%)")
    _line_panel(axes[1], es, names, lambda n: f"object_IoU@{n}", col, "object IoU (%)")
    for ax in axes:
        ax.set_xlabel("occlusion level bucket")
    axes[1].legend(fontsize=8)
    sources = {str(e.point.per_bucket.query("family == 'occlusion' and bucket == 'all'")["source"].iloc[0])
               for e in es if len(e.point.per_bucket) and "source" in e.point.per_bucket
               and len(e.point.per_bucket.query("family == 'occlusion' and bucket == 'all'"))}
    note = f" Occlusion level source: {', '.join(sorted(sources))}." if sources else ""
    return Figure("occlusion", "Occlusion-level curves", _encode(fig),
                  "Object recall and IoU by occlusion level (amodal masks where the dataset has them, else the "
                  "bounding-box proxy); shaded: 95% interval." + note)


def seen_unseen(entries, col) -> Figure | None:
    metrics = ("mIoU_seen", "mIoU_unseen", "hIoU")
    es = [e for e in entries if any(m in e.point.scalars for m in metrics)]
    if not es:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(es) + 2), 3.6))
    width = 0.8 / len(es)
    x = np.arange(len(metrics))
    for i, e in enumerate(es):
        ys = np.array([_value(e, m) for m in metrics])
        cis = np.array([_ci(e, m) for m in metrics])
        err = np.vstack([ys - cis[:, 0], cis[:, 1] - ys])
        err = np.where(np.isfinite(err), err, 0)
        ax.bar(x + (i - (len(es) - 1) / 2) * width, np.nan_to_num(ys), width, yerr=err, capsize=3,
               color=col[e.label], label=e.label)
    ax.set_xticks(x, ["seen mIoU", "unseen mIoU", "hIoU"])
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return Figure("seen_unseen", "Seen vs unseen classes", _encode(fig),
                  "mIoU over seen and unseen classes and their harmonic mean hIoU; whiskers: 95% interval.")


def error_breakdown(entries, col) -> Figure | None:
    parts = (("mE_boundary_oU", "boundary"), ("mE_extent_oU", "extent"), ("mE_segment_oU", "segment"))
    es = [e for e in entries if all(p in e.point.scalars for p, _ in parts)]
    if not es:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(es) + 1.6))
    left = np.zeros(len(es))
    palette = sns.color_palette("Set2", 3)
    for j, (metric, name) in enumerate(parts):
        vals = np.nan_to_num(np.array([_value(e, metric) for e in es]))
        ax.barh([e.label for e in es], vals, left=left, color=palette[j], label=f"{name} error")
        left += vals
    ax.invert_yaxis()
    ax.set_xlabel("share of the class union (%), class mean")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)
    return Figure("errors", "Error breakdown", _encode(fig),
                  "Errors beyond IoU (Bernhard et al. 2024): boundary, extent and segment errors as shares of "
                  "the union; with mIoU they add up to about 100%.")


def small_object_table(entries, top: int = 20) -> pd.DataFrame:
    """Per (model, class name): small objects and their recall; small = the first absolute size bucket."""
    rows = []
    for e in entries:
        if e.point.families.get("size") != "ok":
            continue
        obj = e.model.tables["objects"]
        buckets = e.model.run.protocol.families["size"].buckets
        if not len(obj) or not buckets:
            continue
        name = "small" if "small" in buckets else next(iter(buckets))
        lo, hi = buckets[name]
        sel = in_bucket(obj["area"].to_numpy(dtype=np.float64), lo, hi)
        small = obj[sel]
        classes = e.model.run.dataset.classes
        g = small.groupby("class")["hit"].agg(["size", "mean"])
        for cls, r in g.iterrows():
            rows.append({"model": e.label, "class": classes[int(cls)], "bucket": name,
                         "n_small_objects": int(r["size"]), "small_object_recall": 100 * float(r["mean"])})
    return pd.DataFrame(rows, columns=["model", "class", "bucket", "n_small_objects", "small_object_recall"])


def small_object_heatmap(entries, table: pd.DataFrame, top: int = 20) -> Figure | None:
    if not len(table):
        return None
    counts = table.groupby("class")["n_small_objects"].max().sort_values(ascending=False, kind="stable")
    classes = list(counts.index[:top])
    labels = [e.label for e in entries if e.label in set(table["model"])]
    grid = (table[table["class"].isin(classes)]
            .pivot_table(index="class", columns="model", values="small_object_recall", aggfunc="first")
            .reindex(index=classes, columns=labels))
    names = [f"{c} (n={int(counts[c])})" for c in classes]
    fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 3, 0.32 * len(classes) + 1.5))
    sns.heatmap(grid.to_numpy(dtype=np.float64), ax=ax, vmin=0, vmax=100, cmap="viridis", annot=True, fmt=".0f",
                annot_kws={"fontsize": 7}, xticklabels=labels, yticklabels=names, cbar_kws={"label": "recall (%)"})
    ax.tick_params(axis="x", rotation=30)
    return Figure("small_heatmap", "Small-object recall per class", _encode(fig),
                  f"Hit rate of small objects for the {len(classes)} classes with the most small objects "
                  "(n = most small objects of the class in any model's data); blank: no small object.")
