"""The report's figures (matplotlib/seaborn, Agg).

Every function takes the report's entries (see harness.report.build.Entry) and returns a Figure
record, or None when no model has the metrics it needs (the page then says which family is absent).
`save` writes each figure as SVG, PDF and 300-dpi PNG (for a paper) and keeps a screen-resolution
PNG for the page. Models are told apart by a colour-blind-safe palette (seaborn "colorblind", after
Okabe & Ito) and the run they come from by line style; legends sit outside the axes.
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
    fig: object               # the matplotlib figure until `save` closes it
    caption: str = ""
    png_b64: str = ""         # the page's picture (set by `save`)
    files: tuple = ()         # the SVG / PDF / PNG written next to the page, relative to it (set by `save`)


PAGE_DPI, PAPER_DPI = 110, 300
RUN_STYLES = ("-", "--", ":", "-.")


@contextlib.contextmanager
def style():
    """The figures' matplotlib settings: text is never parsed as mathtext (a class or model name
    holding `$` is drawn as typed; see harness.report.names), and fonts readable at page width."""
    with plt.rc_context({"text.parse_math": False, "pdf.fonttype": 42, "font.size": 11, "axes.titlesize": 12,
                         "axes.labelsize": 11, "legend.fontsize": 10, "xtick.labelsize": 10,
                         "ytick.labelsize": 10}):
        yield


def colors(labels) -> dict:
    palette = sns.color_palette("colorblind", max(10, len(labels)))
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def linestyles(entries) -> dict:
    """model label -> line style: one per run, so that the same model in two runs is told apart."""
    runs: list = []
    for e in entries:
        if e.model.run.label not in runs:
            runs.append(e.model.run.label)
    return {e.label: RUN_STYLES[runs.index(e.model.run.label) % len(RUN_STYLES)] for e in entries}


def _legend_outside(ax_or_fig, **kw):
    """A legend to the right of the axes (never over the data)."""
    return ax_or_fig.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False, **kw)


def _stem(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def save(figure: Figure, out_dir, files: bool = True, page: bool = True) -> Figure:
    """Keep a screen PNG for the page (unless not `page`: a figure only for a paper); with `files`,
    also write figures/<key>.svg, .pdf and a 300-dpi .png into out_dir (about a second per format and
    figure: the tight box is measured once)."""
    from pathlib import Path

    fig = figure.fig
    fig.canvas.draw()   # lays the figure out once (constrained layout), then its tight box in inches
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)
    written = []
    if files:
        folder = Path(out_dir) / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        for ext, kw in (("svg", {}), ("pdf", {}), ("png", {"dpi": PAPER_DPI})):
            path = folder / f"{_stem(figure.key)}.{ext}"
            fig.savefig(path, format=ext, bbox_inches=box, **kw)
            written.append(f"figures/{path.name}")
    buf = io.BytesIO()
    if page:
        fig.savefig(buf, format="png", dpi=PAGE_DPI, bbox_inches=box)
    plt.close(fig)
    figure.fig, figure.files = None, tuple(written)
    figure.png_b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return figure


def _value(entry, metric) -> float:
    v = entry.point.scalars.get(metric)
    return math.nan if v is None else float(v)


def _ci(entry, metric) -> tuple[float, float]:
    return entry.ci.get(metric, (math.nan, math.nan))


def _line_panel(ax, entries, names, metric_of, col, ylabel, xs=None, logx=False):
    xs = list(range(len(names))) if xs is None else xs
    styles = linestyles(entries)
    for e in entries:
        ys = np.array([_value(e, metric_of(n)) for n in names])
        lo = np.array([_ci(e, metric_of(n))[0] for n in names])
        hi = np.array([_ci(e, metric_of(n))[1] for n in names])
        ax.plot(xs, ys, marker="o", color=col[e.label], linestyle=styles[e.label], label=e.label)
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
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 3.3 * len(rows)), squeeze=False, layout="constrained")
    for r, (attr, names) in enumerate(rows):
        kind = "absolute area" if attr == "buckets" else "share of the image"
        _line_panel(axes[r, 0], es, names, lambda n: f"object_recall@{n}", col, f"object recall (%)\n{kind}")
        _line_panel(axes[r, 1], es, names, lambda n: f"object_IoU@{n}", col, f"object IoU (%)\n{kind}")
    _legend_outside(axes[0, 1])
    fig.suptitle("Objects by size bucket (bands: bootstrap 95% CI)")
    return Figure("size", "Object recall and object IoU by size", fig,
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
    _legend_outside(ax)
    return Figure("band", "Boundary band curve", fig,
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
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
    _line_panel(axes[0], es, names, lambda n: f"object_recall@{n}", col, "object recall (%)")
    _line_panel(axes[1], es, names, lambda n: f"object_IoU@{n}", col, "object IoU (%)")
    for ax in axes:
        ax.set_xlabel("occlusion level bucket")
    _legend_outside(axes[1])
    sources = {str(e.point.per_bucket.query("family == 'occlusion' and bucket == 'all'")["source"].iloc[0])
               for e in es if len(e.point.per_bucket) and "source" in e.point.per_bucket
               and len(e.point.per_bucket.query("family == 'occlusion' and bucket == 'all'"))}
    note = f" Occlusion level source: {', '.join(sorted(sources))}." if sources else ""
    return Figure("occlusion", "Occlusion-level curves", fig,
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
    _legend_outside(ax)
    ax.grid(True, axis="y", alpha=0.3)
    return Figure("seen_unseen", "Seen vs unseen classes", fig,
                  "mIoU over seen and unseen classes and their harmonic mean hIoU; whiskers: 95% interval.")


def error_breakdown(entries, col) -> Figure | None:
    parts = (("mE_boundary_oU", "boundary"), ("mE_extent_oU", "extent"), ("mE_segment_oU", "segment"))
    es = [e for e in entries if all(p in e.point.scalars for p, _ in parts)]
    if not es:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(es) + 1.6))
    left = np.zeros(len(es))
    palette = sns.color_palette("colorblind", 3)
    for j, (metric, name) in enumerate(parts):
        vals = np.nan_to_num(np.array([_value(e, metric) for e in es]))
        ax.barh([e.label for e in es], vals, left=left, color=palette[j], label=f"{name} error")
        left += vals
    ax.invert_yaxis()
    ax.set_xlabel("share of the class union (%), class mean")
    _legend_outside(ax)
    ax.grid(True, axis="x", alpha=0.3)
    return Figure("errors", "Error breakdown", fig,
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
    return Figure("small_heatmap", "Small-object recall per class", fig,
                  f"Hit rate of small objects for the {len(classes)} classes with the most small objects "
                  "(n = most small objects of the class in any model's data); blank: no small object.")


def _edge(x) -> str:
    if x is None:
        return "∞"
    return f"{x:g}" if not float(x).is_integer() else f"{int(x):,}"


def _edges(lo, hi, right_closed: bool) -> str:
    """A bucket's range as harness.metrics.buckets reads it: sizes [lo, hi), occlusion (lo, hi]."""
    if right_closed:
        return f"≤ {_edge(hi)}" if lo is None else f"({_edge(lo)}, {_edge(hi)}]"
    return f"[{_edge(0 if lo is None else lo)}, {_edge(hi)})"


def _bucket_rows(base) -> list[tuple[str, str, str]]:
    """(group, bucket, axis label) of every bucket of the baseline's protocol with objects: size
    (absolute area in px², share of the image) and occlusion level, with the bucket's range and the
    baseline's object count n on the label."""
    fams = base.model.run.protocol.families
    groups = []
    if "size" in fams:
        groups += [("size (px²)", getattr(fams["size"], "buckets", {}) or {}, False),
                   ("size (share of image)", getattr(fams["size"], "relative_buckets", {}) or {}, False)]
    if "occlusion" in fams:
        groups.append(("occlusion level", getattr(fams["occlusion"], "buckets", {}) or {}, True))
    rows = []
    for group, buckets, right_closed in groups:
        for name, (lo, hi) in buckets.items():
            n = base.point.scalars.get(f"n_objects@{name}")
            if n is None or not math.isfinite(n) or n == 0:
                continue
            rows.append((group, name, f"{name} {_edges(lo, hi, right_closed)}  n={int(n):,}"))
    return rows


def differences(entries, base, col, level: float = 95.0) -> Figure | None:
    """Forest plot: model − baseline of object recall and object IoU per bucket, with the paired
    bootstrap interval of the difference; 0 = no difference. One row per bucket (its edges and the
    baseline's number of objects on the axis), one marker per model (run: line style)."""
    from harness.evaluation.bootstrap import percentile_interval as interval

    others = [e for e in entries if e is not base and e.model.run.dataset_key == base.model.run.dataset_key]
    rows = _bucket_rows(base)
    if not others or not rows:
        return None
    styles = linestyles(entries)
    metrics = ("object_recall", "object_IoU")
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * len(rows) * max(1, len(others)) ** 0.5 + 1.6), sharey=True)
    ys = np.arange(len(rows))[::-1].astype(float)
    step = 0.7 / max(len(others), 1)
    for ax, metric in zip(axes, metrics):
        for k, e in enumerate(others):
            offset = ((len(others) - 1) / 2 - k) * step   # the first model on top
            for y, (_, name, _) in zip(ys, rows):
                m = f"{metric}@{name}"
                v, b = e.point.scalars.get(m), base.point.scalars.get(m)
                if v is None or b is None or not (math.isfinite(v) and math.isfinite(b)):
                    continue
                d = v - b
                lo, hi = (interval(e.dists[m] - base.dists[m], level) if m in e.dists and m in base.dists
                          else (math.nan, math.nan))
                err = [[d - lo], [hi - d]] if math.isfinite(lo) else None
                bars = ax.errorbar(d, y + offset, xerr=err, fmt="o", color=col[e.label], capsize=3, markersize=5,
                                   label=e.label if y == ys[0] or not ax.get_legend_handles_labels()[1].count(e.label)
                                   else None)
                for line in bars[2]:
                    line.set_linestyle(styles[e.label])
        ax.axvline(0, color="0.3", linewidth=1)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_xlabel(f"{metric.replace('_', ' ')}: model − {base.label} (points)")
    groups = [g for g, _, _ in rows]
    for y, (g, g_next) in zip(ys[:-1], zip(groups, groups[1:])):
        if g != g_next:
            for ax in axes:
                ax.axhline(y - 0.5, color="0.6", linewidth=0.8, linestyle=":")
    axes[0].set_yticks(ys, [label for _, _, label in rows])
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    axes[1].legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return Figure("differences", f"Differences to the baseline {base.label} by bucket", fig,
                  f"Model − baseline of object recall and object IoU per bucket (size: absolute area in px² and "
                  f"share of the image; occlusion level), with the paired bootstrap {level:g}% interval of the "
                  "difference; an interval that crosses 0 is no evidence of a difference. Axis: bucket, its edges "
                  "[low, high) and the baseline's number of objects n.")
