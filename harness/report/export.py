"""Paper tables: chosen metrics of every model with their intervals, as LaTeX (booktabs) or Markdown.

    zeg-eval report RUN --export latex markdown [--metrics mIoU hIoU object_recall@small]

Two tables per file: the values with their percentile bootstrap intervals, and the deltas against
the baseline with their paired intervals (a dagger where the interval excludes 0). The numbers are
the report's own (the run's summary.json, rounded as on the page by harness.report.formats).
Names are data: LaTeX and Markdown special characters in a model or metric name are escaped.
"""
from __future__ import annotations

import re
from pathlib import Path

from harness.errors import UserError
from harness.report import formats

FORMATS = {"latex": "table.tex", "markdown": "table.md"}
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|!$~&#])")   # what Markdown (or HTML within it) would read


def latex_text(text: str) -> str:
    """A name as LaTeX text: its special characters escaped."""
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def markdown_text(text: str) -> str:
    """A name as Markdown text: the characters that make emphasis, code, links, HTML, entities or a
    table cell break, backslash-escaped (CommonMark allows a backslash before any punctuation)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def choose_metrics(data: dict, wanted, default) -> list[str]:
    """The metrics to export: `wanted` (checked against the report's metrics), else the default
    (the headline metrics the runs have)."""
    known = [r["metric"] for r in data["rows"]]
    if not wanted:
        defined = {r["metric"] for r in data["rows"] if any(c["status"] == "ok" for c in r["cells"])}
        return [m for m in default if m in defined]
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise UserError(f"--metrics: {', '.join(unknown)} not in these runs (e.g. {', '.join(known[:8])}, ...)")
    return list(wanted)


def _cells(data: dict, metrics: list[str]):
    """[(model label, is_base, [(value text, interval text, delta text, delta interval text, sig)])]."""
    rows = {r["metric"]: r for r in data["rows"]}
    out = []
    for i, e in enumerate(data["entries"]):
        cells = []
        for m in metrics:
            c, info = rows[m]["cells"][i], rows[m]["info"]
            cells.append((c["text"], formats.interval_text(c["ci_lo"], c["ci_hi"], info), c["d_text"],
                          c["d_ci_text"], c["shown_sig"]))
        out.append((e.label, e is data["base"], cells))
    return out


def latex(data: dict, metrics: list[str], level: float) -> str:
    cells = _cells(data, metrics)
    base = data["base"].label
    spec = "l" + "r" * len(metrics)
    head = " & ".join(["Model"] + [latex_text(m) for m in metrics]) + r" \\"

    def table(caption: str, body: list[str]) -> list[str]:
        return [f"% {caption}", r"\begin{tabular}{" + spec + "}", r"\toprule", head, r"\midrule", *body,
                r"\bottomrule", r"\end{tabular}", ""]

    values = [" & ".join([latex_text(label)] + [v + (rf" {{\scriptsize {ci}}}" if ci else "")
                                                for v, ci, *_ in row]) + r" \\" for label, _, row in cells]
    deltas = [" & ".join([latex_text(label)] + [(d + (r"$^\dagger$" if sig else "")
                                                 + (rf" {{\scriptsize {dci}}}" if dci else "")) or "--"
                                                for _, _, d, dci, sig in row]) + r" \\"
              for label, is_base, row in cells if not is_base]
    out = [r"% zeg-eval report; needs \usepackage{booktabs}",
           *table(f"values with {level:g}% percentile bootstrap intervals over images", values)]
    if deltas:
        out += table(f"model - {base} with paired {level:g}% bootstrap intervals; "
                     r"$\dagger$: the interval excludes 0", deltas)
    return "\n".join(out)


def markdown(data: dict, metrics: list[str], level: float) -> str:
    cells = _cells(data, metrics)
    base = data["base"].label
    head = "| Model | " + " | ".join(markdown_text(m) for m in metrics) + " |"
    rule = "|---|" + "---:|" * len(metrics)
    out = [f"Values with {level:g}% percentile bootstrap intervals over images.", "", head, rule]
    out += ["| " + " | ".join([markdown_text(label)] + [v + (f" {ci}" if ci else "") for v, ci, *_ in row]) + " |"
            for label, _, row in cells]
    deltas = ["| " + " | ".join([markdown_text(label)] + [(d + ("†" if sig else "") + (f" {dci}" if dci else ""))
                                                          or "–" for _, _, d, dci, sig in row]) + " |"
              for label, is_base, row in cells if not is_base]
    if deltas:
        out += ["", f"Model − {markdown_text(base)} with paired {level:g}% bootstrap intervals; † the interval "
                "excludes 0.", "", head, rule, *deltas]
    return "\n".join(out) + "\n"


def write(data: dict, out_dir: Path, kinds, metrics: list[str], level: float) -> dict[str, Path]:
    """Write the chosen tables (latex -> table.tex, markdown -> table.md) into out_dir."""
    written = {}
    for kind in kinds:
        if kind not in FORMATS:
            raise UserError(f"--export {kind}: unknown format (choose from {', '.join(FORMATS)})")
        text = latex(data, metrics, level) if kind == "latex" else markdown(data, metrics, level)
        path = Path(out_dir) / FORMATS[kind]
        path.write_text(text, encoding="utf-8")
        written[kind] = path
    return written
