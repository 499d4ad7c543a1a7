"""The report's robustness section: how each model's numbers fall under the run's image conditions.

Every number comes from the run folder's own tables (written by `zeg-eval run`,
harness.run.robustness_files): `robustness.csv` (one row per model, condition and metric: value, clean
value, difference = clean - value with its paired bootstrap interval, relative = value / clean) and
`robustness_summary.csv` (mPC, rPC, CE, mCE per model, metric and corruption). Nothing is recomputed
from the records; the page shows what the files hold (rounded), its data attributes the full values.

* severity curves: per metric (object recall per size bucket, its seen / unseen split, mIoU and its
  split, boundary IoU), the mean over the ImageNet-C corruptions present of the value at each
  severity 1-5, the clean value at 0;
* the heat table: per model, corruption and size bucket, the mean over the corruption's levels of
  `relative` object recall (no-data cells: the bucket has no object, or the clean recall is 0);
* recall against the input resolution factor (resolution-* conditions; 1 = clean);
* the headline table: per model and key metric, the clean value, mPC, rPC (and mCE, relative mCE
  against the protocol's reference model) of the ImageNet-C group, and the condition with the
  largest difference with its interval;
* example inputs: one image under each corruption at its middle level, from RUN/inputs/ when the run
  saved them (`--save-inputs`), else made again from the dataset image (Condition.apply is
  deterministic), else a note.

A run without these files (no conditions, or made before them) has no section; a file that cannot be
read is a UserError naming it.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from harness.conditions.spec import CLEAN, IMAGENET_C, KNOBS, Condition, named
from harness.data.imageio import read_rgb
from harness.errors import UserError
from harness.evaluation.robustness import IMAGENET_C_GROUP, LONG_COLUMNS, SUMMARY_COLUMNS
from harness.metrics.family import MetricInfo
from harness.report import formats, plots
from harness.report.gallery import Sources
from harness.run.robustness_files import ROBUSTNESS, ROBUSTNESS_SUMMARY

# The headline table's metrics, in this order, where the run has them (the size family's small
# bucket is its first absolute bucket when none is called "small").
KEY_METRICS = ("mIoU", "object_recall@{small}", "mIoU_unseen", "hIoU", "boundary_IoU")
MEASURES = ("mPC", "rPC", "mCE", "relative_mCE")
SEVERITIES = (0, 1, 2, 3, 4, 5)
THUMB_WIDTH = 160      # example inputs are shown this wide (JPEG)
THUMB_QUALITY = 80
_TEXT = ("model", "condition", "corruption", "metric", "base_metric", "split", "bucket", "measure")


# ----------------------------------------------------------------------------------------------
# reading the run's tables


@dataclass
class RunRobustness:
    """One run's robustness tables, its models relabelled as the report labels them."""
    run: object                     # harness.report.runs.RunInfo
    long: pd.DataFrame              # robustness.csv (+ run); model = the report's label
    summary: pd.DataFrame           # robustness_summary.csv (+ run)
    conditions: dict = field(default_factory=dict)   # condition name -> Condition
    models: list = field(default_factory=list)       # the report's labels, in the report's order
    reference: str | None = None    # the report's label of the protocol's reference model
    buckets: list = field(default_factory=list)      # the size family's absolute buckets

    def __post_init__(self):
        # every lookup is by (model, metric): the table is split once (tens of thousands of rows
        # for 80 conditions), not filtered per lookup
        self._groups = {key: rows for key, rows in self.long.groupby(["model", "metric"], sort=False)}
        self._empty = self.long.iloc[:0]
        self.metrics = set(self.long["metric"].unique())

    @property
    def label(self) -> str:
        return self.run.label

    def rows(self, model: str, metric: str) -> pd.DataFrame:
        """robustness.csv's rows of one model and metric (every condition, clean included)."""
        return self._groups.get((model, metric), self._empty)

    @cached_property
    def corruptions(self) -> list[str]:
        """The corruptions of the run besides clean: ImageNet-C's in their order, then the knobs,
        then conditions of its own (a named condition is its own corruption)."""
        present = set(self.long["corruption"].unique()) - {CLEAN}
        order = [c for c in (*IMAGENET_C, *KNOBS) if c in present]
        return order + sorted(present - set(order))

    @cached_property
    def heat(self) -> pd.DataFrame:
        """The heat table (heat_table), made once."""
        return heat_table(self)


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """A robustness CSV with its text columns as text (a model called "NA" stays "NA") and its number
    columns as floats; a file that is not such a table is a UserError naming it."""
    numbers = [c for c in columns if c not in _TEXT]
    try:
        frame = pd.read_csv(path, dtype={c: str for c in columns if c in _TEXT}, keep_default_na=False,
                            na_values={c: ["", "nan", "NaN"] for c in numbers})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path.name} ({reason}); rerun `zeg-eval run` on this folder to rewrite it",
                        path) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path.name} lacks the columns {', '.join(missing)}; not a zeg-eval robustness table "
                        "(damaged?): rerun `zeg-eval run` on this folder to rewrite it", path)
    for col in numbers:
        if not pd.api.types.is_float_dtype(frame[col]):
            try:
                frame[col] = frame[col].astype(np.float64)
            except (TypeError, ValueError):
                raise UserError(f"{path.name}: column '{col}' holds a value that is not a number (damaged?); rerun "
                                "`zeg-eval run` on this folder to rewrite it", path) from None
    return frame


def _conditions(manifest: dict, names) -> dict[str, Condition]:
    """name -> Condition: the manifest's descriptions (older manifests: plain names), and for a name
    only the table has, what its name says."""
    out = {}
    for entry in (manifest.get("protocol") or {}).get("conditions") or []:
        try:
            condition = Condition.from_description(entry)
        except (KeyError, TypeError, ValueError, UserError):
            continue
        out[condition.name] = condition
    for name in names:
        if name not in out:
            try:
                out[name] = named(name)
            except UserError:
                out[name] = Condition(name, "named")
    return out


def _size_buckets(run) -> list[str]:
    size = run.protocol.families.get("size")
    return list(getattr(size, "buckets", {}) or {}) if size is not None else []


def load(run, labels: dict[str, str]) -> RunRobustness | None:
    """One run's tables, or None when the run has none (no conditions besides clean, or a run folder
    made before them). labels: the run's model names -> the report's labels (other models of the
    tables, e.g. ones without clean records, are left out)."""
    long_path, summary_path = run.path / ROBUSTNESS, run.path / ROBUSTNESS_SUMMARY
    if not long_path.is_file() or not summary_path.is_file():
        return None
    long = read_table(long_path, LONG_COLUMNS)
    summary = read_table(summary_path, SUMMARY_COLUMNS)
    long = long[long["model"].isin(list(labels))].copy()
    summary = summary[summary["model"].isin(list(labels))].copy()
    if not len(long) or not (long["condition"] != CLEAN).any():
        return None
    for frame in (long, summary):
        frame["model"] = frame["model"].map(labels)
        frame.insert(1, "run", run.label)
    reference = ((run.manifest.get("protocol") or {}).get("robustness") or {}).get("reference")
    present = set(long["model"])
    return RunRobustness(run=run, long=long.reset_index(drop=True), summary=summary.reset_index(drop=True),
                         conditions=_conditions(run.manifest, long["condition"].unique()),
                         models=[lab for lab in labels.values() if lab in present],
                         reference=labels.get(reference) if isinstance(reference, str) else None,
                         buckets=_size_buckets(run))


def load_all(runs, entries) -> list[RunRobustness]:
    """The robustness tables of every run that has them, in the report's run order."""
    out = []
    for run in runs:
        labels = {e.model.name: e.label for e in entries if e.model.run is run}
        rr = load(run, labels)
        if rr is not None:
            out.append(rr)
    return out


# ----------------------------------------------------------------------------------------------
# what the section shows, as numbers


def _finite_mean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def severity_curve(rows: pd.DataFrame) -> np.ndarray:
    """[6] of one model's and metric's rows (RunRobustness.rows): the clean value at severity 0,
    then per severity 1-5 the mean over the ImageNet-C corruptions present at it of the metric's
    value (NaN where none is)."""
    value = rows["value"].to_numpy(dtype=np.float64)
    severity = rows["severity"].to_numpy(dtype=np.float64)
    clean = value[(rows["condition"] == CLEAN).to_numpy()]
    corrupted = rows["corruption"].isin(IMAGENET_C).to_numpy() & np.isfinite(value)
    out = [float(clean[0]) if clean.size else math.nan]
    for s in SEVERITIES[1:]:
        out.append(_finite_mean(value[corrupted & (severity == s)]))
    return np.array(out)


def resolution_curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(factors, values) of one model's and metric's rows: the clean value at factor 1, then each
    resolution-* condition's, by factor descending."""
    clean = rows[rows["condition"] == CLEAN]
    scaled = rows[rows["corruption"] == "resolution"].sort_values("severity", ascending=False, kind="stable")
    xs = [1.0, *scaled["severity"].astype(float)]
    ys = [float(clean["value"].iloc[0]) if len(clean) else math.nan, *scaled["value"].astype(float)]
    return np.array(xs), np.array(ys)


def heat_columns(rr: RunRobustness) -> list[tuple[str, str]]:
    """(column name, metric) of the heat table: each absolute size bucket, then every object."""
    cols = [(b, f"object_recall@{b}") for b in rr.buckets if f"object_recall@{b}" in rr.metrics]
    if "object_recall" in rr.metrics:
        cols.append(("all objects", "object_recall"))
    return cols


def heat_values(rows: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Of one model's and metric's rows, per corruption: (the mean relative value over its levels,
    the number of levels that have one)."""
    rel = rows["relative"].to_numpy(dtype=np.float64)
    keep = np.isfinite(rel)
    out = {}
    for corruption, values in pd.Series(rel[keep]).groupby(rows["corruption"].to_numpy()[keep], sort=False):
        out[str(corruption)] = (float(values.mean()), int(values.size))
    return out


def heat_table(rr: RunRobustness) -> pd.DataFrame:
    """Every (model, corruption, bucket) of the heat table: relative object recall, mean over levels
    (NaN, 0 levels: no level has a relative value)."""
    rows = []
    for model in rr.models:
        for name, metric in heat_columns(rr):
            values = heat_values(rr.rows(model, metric))
            for corruption in rr.corruptions:
                value, n = values.get(corruption, (math.nan, 0))
                rows.append({"model": model, "run": rr.label, "corruption": corruption, "bucket": name,
                             "metric": metric, "relative": value, "n_levels": n})
    return pd.DataFrame(rows, columns=["model", "run", "corruption", "bucket", "metric", "relative", "n_levels"])


def key_metrics(rr: RunRobustness) -> list[str]:
    """The headline table's metrics the run has."""
    small = "small" if "small" in rr.buckets or not rr.buckets else rr.buckets[0]
    return [m for m in (k.format(small=small) for k in KEY_METRICS) if m in rr.metrics]


def _measure(summary: pd.DataFrame, model: str, metric: str, measure: str) -> float | None:
    hit = summary[(summary["model"] == model) & (summary["metric"] == metric)
                  & (summary["corruption"] == IMAGENET_C_GROUP) & (summary["measure"] == measure)]
    return float(hit["value"].iloc[0]) if len(hit) else None


def largest_drop(rows: pd.DataFrame) -> dict | None:
    """The condition with the largest difference clean - value (the first in the table's order on a
    tie; `tied`: how many others share it), with its interval; None when no condition has a difference.
    rows: one model's and metric's (RunRobustness.rows)."""
    rows = rows[(rows["condition"] != CLEAN) & np.isfinite(rows["difference"].to_numpy(dtype=np.float64))]
    if not len(rows):
        return None
    row = rows.loc[rows["difference"].idxmax()]
    return {"condition": str(row["condition"]), "difference": float(row["difference"]),
            "lo": float(row["difference_lo"]), "hi": float(row["difference_hi"]),
            "tied": int((rows["difference"] == row["difference"]).sum()) - 1}


# ----------------------------------------------------------------------------------------------
# the page's view



def _ratio_text(value) -> str:
    if value is None:
        return "—"
    return "n/a" if not math.isfinite(value) else formats.fixed(value, 3)


def _info(infos: dict, metric: str) -> MetricInfo:
    return infos.get(metric) or MetricInfo(metric, "")


def headline_rows(rr: RunRobustness, infos: dict) -> list[dict]:
    """Per model and key metric: clean, mPC, rPC, mCE, relative mCE (imagenet_c group) and the
    largest drop, each as {num (full value), text}."""
    out = []
    for model in rr.models:
        for metric in key_metrics(rr):
            info = _info(infos, metric)
            rows = rr.rows(model, metric)
            clean = rows.loc[rows["condition"] == CLEAN, "value"]
            cv = float(clean.iloc[0]) if len(clean) else None
            cells = {"clean": {"num": formats.data_number(cv), "text": formats.value_text(cv, info) if cv is not None else "—"}}
            for measure in MEASURES:
                v = _measure(rr.summary, model, metric, measure)
                text = (formats.value_text(v, info) if v is not None else "—") if measure == "mPC" else _ratio_text(v)
                cells[measure] = {"num": formats.data_number(v), "text": text}
            drop = largest_drop(rows)
            if drop is not None:
                drop.update(num=formats.data_number(drop["difference"]), text=formats.value_text(drop["difference"], info),
                            ci=formats.interval_text(drop["lo"], drop["hi"], info),
                            lo_num=formats.data_number(drop["lo"]), hi_num=formats.data_number(drop["hi"]))
            out.append({"model": model, "metric": metric, "cells": cells, "drop": drop,
                        "is_reference": model == rr.reference})
    return out


def _cell_colour(value: float) -> tuple[str, str]:
    """(background, text colour) of a heat cell: the colour-blind-safe diverging PuOr map centred on
    1 (orange: lost recall, purple: more recall than clean), the text dark or light for contrast."""
    if not math.isfinite(value):
        return "", ""
    r, g, b, _ = relative_cmap()(relative_norm()(value))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return f"rgb({round(255 * r)}, {round(255 * g)}, {round(255 * b)})", ("#111" if luminance > 0.5 else "#fff")


def heat_view(rr: RunRobustness) -> list[dict]:
    """Per model: the heat table's rows (corruption) and cells (bucket)."""
    cols = [name for name, _ in heat_columns(rr)]
    table = {(m, c, b): (v, n) for m, c, b, v, n in rr.heat[["model", "corruption", "bucket", "relative", "n_levels"]]
             .itertuples(index=False)}
    out = []
    for model in rr.models:
        rows = []
        for corruption in rr.corruptions:
            cells = []
            for name in cols:
                v, n = table[(model, corruption, name)]
                v = float(v)
                bg, fg = _cell_colour(v)
                cells.append({"bucket": name, "num": formats.data_number(v), "text": formats.fixed(v, 2) if math.isfinite(v) else "",
                              "style": f"background: {bg}; color: {fg}" if bg else "", "n": int(n)})
            rows.append({"corruption": corruption, "cells": cells})
        out.append({"model": model, "columns": cols, "rows": rows})
    return out


# ----------------------------------------------------------------------------------------------
# example inputs


@dataclass
class Thumb:
    condition: str
    corruption: str
    jpeg_b64: str | None     # None: not available (`why` says so)
    source: str = ""         # "saved input", "made again from the dataset image", "dataset image"
    why: str = ""


def example_conditions(rr: RunRobustness) -> list[Condition]:
    """Clean, then per corruption its middle level (of the levels present, sorted, the one at index
    n // 2: severity 3 of 1-5), in the section's corruption order."""
    by_corruption: dict[str, list[Condition]] = {}
    for name in rr.long["condition"].unique():
        c = rr.conditions[name]
        if not c.is_clean:
            by_corruption.setdefault(c.corruption, []).append(c)
    chosen = [rr.conditions.get(CLEAN, Condition(CLEAN))]
    for corruption in rr.corruptions:
        levels = sorted(by_corruption.get(corruption, []), key=lambda c: (c.level, c.name))
        if levels:
            chosen.append(levels[len(levels) // 2])
    return chosen


def _example_stem(run, conditions) -> str | None:
    """The image the strip shows: the run's first image that has a saved input, else its first."""
    stems = sorted(str(s) for s in run.manifest.get("images") or [])
    folders = [run.path / "inputs" / c.name for c in conditions if not c.is_clean]
    for stem in stems:
        if any((f / f"{stem}.png").is_file() for f in folders):
            return stem
    return stems[0] if stems else None


def thumbnail(rgb: np.ndarray, width: int = THUMB_WIDTH) -> str:
    """The picture `width` px wide as base64 JPEG: shrunk by area averaging, enlarged (an image of a
    resolution condition) by nearest neighbour, so its lost detail stays visible."""
    h, w = rgb.shape[:2]
    size = (width, max(1, round(h * width / w)))
    method = cv2.INTER_AREA if w > width else cv2.INTER_NEAREST
    small = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=method)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def _thumb(condition: Condition, stem: str, run, clean_image) -> Thumb:
    """One condition's picture of `stem`: saved, else made again from the clean image."""
    saved = run.path / "inputs" / condition.name / f"{stem}.png"
    if not condition.is_clean and saved.is_file():
        try:
            return Thumb(condition.name, condition.corruption, thumbnail(read_rgb(saved)), "saved input")
        except (UserError, OSError, ValueError, cv2.error):
            pass
    if clean_image is None:
        return Thumb(condition.name, condition.corruption, None, why="no saved input, no dataset image")
    if condition.is_clean:
        return Thumb(condition.name, condition.corruption, thumbnail(clean_image), "dataset image")
    if not condition.has_transform:
        return Thumb(condition.name, condition.corruption, None, why="a condition of its own: no transform")
    try:
        made = condition.apply(clean_image, stem)
    except Exception as exc:  # noqa: BLE001 - e.g. the corruption library is not installed: a note, not a failure
        return Thumb(condition.name, condition.corruption, None, why=f"cannot be made again ({exc})")
    return Thumb(condition.name, condition.corruption, thumbnail(made), "made again from the dataset image")


def examples(rr: RunRobustness) -> dict:
    """The strip of example inputs: {stem, thumbs, note}."""
    conditions = example_conditions(rr)
    stem = _example_stem(rr.run, conditions)
    if stem is None:
        return {"stem": "", "thumbs": [], "note": "The run lists no images: no example inputs."}
    clean_image = Sources(rr.run).image(stem)
    thumbs = [_thumb(c, stem, rr.run, clean_image) for c in conditions]
    note = ""
    if not any(t.jpeg_b64 for t in thumbs):
        note = (f"No example inputs: the run saved none (`zeg-eval run --save-inputs` writes them to "
                f"{rr.run.path / 'inputs'}) and the dataset's images are not available.")
    return {"stem": stem, "thumbs": thumbs, "note": note}


# ----------------------------------------------------------------------------------------------
# the section and its CSV files


def view(rrs: list[RunRobustness], infos: dict, runs, thumbs: bool = True) -> dict | None:
    """The page's section: per run with conditions its headline, heat tables and example inputs;
    None when no run has conditions."""
    if not rrs:
        return None
    sections = []
    for rr in rrs:
        sections.append({"label": rr.label, "reference": rr.reference, "headline": headline_rows(rr, infos),
                         "has_reference": rr.reference is not None,
                         "heat": heat_view(rr), "corruptions": rr.corruptions,
                         "n_conditions": int(rr.long["condition"].nunique()) - 1,
                         "examples": examples(rr) if thumbs else {"stem": "", "thumbs": [], "note": ""}})
    without = [r.label for r in runs if r.label not in {rr.label for rr in rrs}]
    return {"runs": sections, "without": without, "several": len(runs) > 1}


def tables(rrs: list[RunRobustness]) -> dict[str, pd.DataFrame]:
    """The report's copies of the runs' tables (with a run column, models as the report labels them)
    and the heat table."""
    if not rrs:
        return {}
    long = pd.concat([rr.long for rr in rrs], ignore_index=True)
    summary = pd.concat([rr.summary for rr in rrs], ignore_index=True)
    heat = pd.concat([rr.heat for rr in rrs], ignore_index=True)
    return {"robustness.csv": long, "robustness_summary.csv": summary, "robustness_heat.csv": heat}


# ----------------------------------------------------------------------------------------------
# figures (drawn inside plots.style(): names are text, never mathtext)


@lru_cache(maxsize=1)
def relative_cmap():
    """Relative values' colours: ColorBrewer's PuOr (colour-blind safe), orange below 1, purple above."""
    import matplotlib

    return matplotlib.colormaps["PuOr"]


@lru_cache(maxsize=1)
def relative_norm():
    """0 (all lost) .. 1 (as clean, white) .. 2 (twice the clean value; beyond: the end colour)."""
    from matplotlib.colors import TwoSlopeNorm

    return TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0)


def _lines(rrs: list[RunRobustness]):
    """(run tables, model label) of every line, in the report's order."""
    return [(rr, model) for rr in rrs for model in rr.models]


def _with_values(rrs: list[RunRobustness], corruptions) -> set[str]:
    """The metrics some run has a finite value of under one of `corruptions`."""
    present = set()
    for rr in rrs:
        rows = rr.long[rr.long["corruption"].isin(corruptions) & np.isfinite(rr.long["value"].to_numpy(np.float64))]
        present |= set(rows["metric"])
    return present


def severity_metrics(rrs: list[RunRobustness]) -> list[list[str]]:
    """The severity figure's rows of panels, where some run has a value under an ImageNet-C
    corruption: object recall per size bucket, its seen form, its unseen form, then mIoU, its split
    and boundary IoU."""
    buckets = list(dict.fromkeys(b for rr in rrs for b in rr.buckets))
    groups = [[f"object_recall{s}@{b}" for b in buckets] for s in ("", "_seen", "_unseen")]
    groups.append(["mIoU", "mIoU_seen", "mIoU_unseen", "boundary_IoU"])
    present = _with_values(rrs, IMAGENET_C)
    return [g for g in ([m for m in group if m in present] for group in groups) if g]


def _percent_limits(ax, values) -> None:
    """y from just below the lowest to just above the highest value, within -3 .. 103 (a flat line
    at 100 is not stretched over 95 .. 105)."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=np.float64)
    if not v.size:
        return
    pad = max(3.0, 0.08 * float(v.max() - v.min()))
    ax.set_ylim(max(-3.0, float(v.min()) - pad), min(103.0, float(v.max()) + pad))


def _grid(n: int, ncols: int, height: float, width: float = 11.0, constrained: bool = False):
    """A grid of n panels. Without `constrained`, fixed spacing: laying out a dozen panels with
    matplotlib's constrained layout costs about as much again as drawing them, once per file format."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False,
                             layout="constrained" if constrained else None)
    if not constrained:
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.75 / (height * nrows), top=1 - 0.75 / (height * nrows),
                            wspace=0.32, hspace=0.55)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def severity_figure(rrs: list[RunRobustness], col: dict, styles: dict) -> plots.Figure | None:
    """Each metric against severity 0-5, the mean over the ImageNet-C corruptions present; one line
    per model (colour), run told apart by line style."""
    groups = severity_metrics(rrs)
    if not groups:
        return None
    ncols = min(4, max(len(g) for g in groups))
    # each group starts a row of its own (a longer one wraps): a bucket stays in its column
    slots = [m for g in groups for m in g + [None] * (-len(g) % ncols)]
    fig, axes = _grid(len(slots), ncols, 2.9)
    for ax, metric in zip(axes.flat, slots):
        if metric is None:
            ax.set_visible(False)
            continue
        shown = []
        for rr, model in _lines(rrs):
            ys = severity_curve(rr.rows(model, metric))
            keep = np.isfinite(ys)
            if keep.any():
                ax.plot(np.array(SEVERITIES)[keep], ys[keep], marker="o", color=col[model],
                        linestyle=styles.get(model, "-"), label=model)
                shown.extend(ys[keep])
        _percent_limits(ax, shown)
        ax.set_title(metric)
        ax.set_xticks(SEVERITIES, ["clean", "1", "2", "3", "4", "5"])
        ax.grid(True, alpha=0.3)
    _outer_labels(fig, axes, "severity (0: clean)")
    _legend(fig, axes)
    names = sorted({c for rr in rrs for c in rr.corruptions if c in IMAGENET_C})
    fig.suptitle("Metrics against corruption severity (mean over the ImageNet-C corruptions present)")
    return plots.Figure("robustness_severity", "Robustness: metrics against corruption severity", fig,
                        f"Per severity, the mean over the ImageNet-C corruptions present at it ({', '.join(names)}) "
                        "of each metric (robustness.csv's value); severity 0 is the clean value. A severity no "
                        "corruption has is left out (the line joins its neighbours).")


def _outer_labels(fig, axes, xlabel: str) -> None:
    """The x label once under the grid, "%" left of the first column (every panel's text costs time
    in every file format)."""
    fig.supxlabel(xlabel, y=0.15 / fig.get_figheight())
    for ax in axes[:, 0]:
        ax.set_ylabel("%")


def _legend(fig, axes):
    """One legend for every panel, right of the first row (never over the data)."""
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if handles:
        visible = [ax for ax in axes[0] if ax.get_visible()]
        visible[-1].legend([handles[k] for k in labels], labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                           borderaxespad=0.0, frameon=False)


def heat_figure(rrs: list[RunRobustness]) -> plots.Figure | None:
    """Per model a corruption x size-bucket heat map of relative object recall (mean over levels)."""
    panels = [(rr, model) for rr in rrs for model in rr.models if heat_columns(rr)]
    if not panels:
        return None
    import matplotlib.pyplot as plt

    rows = max(len(rr.corruptions) for rr, _ in panels)
    cols = max(len(heat_columns(rr)) for rr, _ in panels)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    # a fixed layout in inches (constrained layout would be solved again for every file format: a
    # heat map of 80 conditions holds hundreds of labels): per panel the corruption names on the
    # left (1.5 in), the cells (0.75 in per bucket, 0.3 in per corruption), the title above, the
    # bucket names below; the colour bar on the right
    cell_w, cell_h, left, top, bottom, bar = 0.75 * cols, 0.3 * rows, 1.5, 0.45, 0.85, 1.3
    width, height = ncols * (left + cell_w) + bar, nrows * (top + cell_h + bottom)
    fig = plt.figure(figsize=(width, height))
    axes = np.empty((nrows, ncols), dtype=object)
    for k in range(nrows * ncols):
        r, c = divmod(k, ncols)
        x0 = c * (left + cell_w) + left
        y0 = height - (r + 1) * (top + cell_h + bottom) + bottom
        axes[r, c] = fig.add_axes((x0 / width, y0 / height, cell_w / width, cell_h / height))
        axes[r, c].set_visible(k < len(panels))
    colorbar_axes = fig.add_axes(((width - bar + 0.25) / width, 0.15, 0.18 / width, 0.7))
    cmap, norm = relative_cmap(), relative_norm()
    for ax, (rr, model) in zip(axes.flat, panels):
        names = [n for n, _ in heat_columns(rr)]
        mine = rr.heat[rr.heat["model"] == model].set_index(["corruption", "bucket"])["relative"]
        grid = np.array([[float(mine[(c, b)]) for b in names] for c in rr.corruptions], dtype=np.float64)
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if math.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b <= 0.5
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
            else:
                ax.text(j, i, "no data", ha="center", va="center", fontsize=7, color="0.4")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(rr.corruptions)), rr.corruptions)
        ax.set_title(model)
        ax.set_facecolor("0.92")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=colorbar_axes,
                 label="relative object recall (value / clean)")
    return plots.Figure("robustness_heat", "Robustness: relative object recall by corruption and size", fig,
                        "Object recall under each corruption relative to clean (robustness.csv's relative = value / "
                        "clean), the mean over the corruption's levels; orange: recall lost, white: as clean, purple: "
                        "above clean. \"no data\": the bucket has no object, or its clean recall is 0.")


def resolution_figure(rrs: list[RunRobustness], col: dict, styles: dict) -> plots.Figure | None:
    """Object recall per size bucket against the input resolution factor (1 = clean)."""
    with_res = [rr for rr in rrs if (rr.long["corruption"] == "resolution").any()]
    if not with_res:
        return None
    metrics = ["object_recall"] + [f"object_recall@{b}" for b in dict.fromkeys(b for rr in with_res for b in rr.buckets)]
    present = _with_values(with_res, ["resolution"])
    metrics = [m for m in metrics if m in present]
    if not metrics:
        return None
    fig, axes = _grid(len(metrics), min(4, len(metrics)), 2.9)
    factors = sorted({1.0} | {float(f) for rr in with_res
                             for f in rr.long.loc[rr.long["corruption"] == "resolution", "severity"]}, reverse=True)
    for ax, metric in zip(axes.flat, metrics):
        shown = []
        for rr, model in _lines(with_res):
            xs, ys = resolution_curve(rr.rows(model, metric))
            keep = np.isfinite(ys)
            if keep.any():
                ax.plot(xs[keep], ys[keep], marker="o", color=col[model], linestyle=styles.get(model, "-"),
                        label=model)
                shown.extend(ys[keep])
        _percent_limits(ax, shown)
        ax.set_xscale("log", base=2)
        ax.set_xticks(factors, [f"{f:g}" for f in factors])
        ax.minorticks_off()
        ax.set_xlim(max(factors) * 1.25, min(factors) / 1.25)   # clean on the left, smaller to the right
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
    _outer_labels(fig, axes, "resolution factor (1: clean)")
    _legend(fig, axes)
    return plots.Figure("robustness_resolution", "Robustness: object recall against input resolution", fig,
                        "Object recall (all objects and per size bucket) with the image downscaled by each factor "
                        "before the model (resolution-* conditions; 1 = clean; scored at label resolution), from "
                        "robustness.csv.")


PAPER_ONLY = ("robustness_heat",)   # on the page its numbers are the heat table: the figure is for a paper


def figures(rrs: list[RunRobustness], col: dict, styles: dict, files: bool = True) -> list:
    """The section's figures (those the runs have data for), unsaved; the heat map only with
    `files` (the page shows its numbers as the heat table, so it is drawn only to be written)."""
    drawn = (severity_figure(rrs, col, styles), heat_figure(rrs) if files else None,
             resolution_figure(rrs, col, styles))
    return [f for f in drawn if f is not None]
