"""Names are data: class, model and run names reach the page, the figures and the CSV files as text.

* HTML: the page template autoescapes every value (jinja2 `select_autoescape`), so `<b>` in a class
  name is shown, not parsed;
* matplotlib: mathtext would read `$...$` in a tick label or legend (an unbalanced `$` raises), so
  figures are drawn with `text.parse_math` off (`harness.report.plots.style`);
* CSV: a spreadsheet runs a cell that begins with `=`, `+`, `-`, `@` (or a tab / carriage return) as
  a formula ("CSV injection", OWASP). Text cells that begin so get a leading `'`, the usual
  neutraliser, which spreadsheets show as a text marker; numbers are left as they are.
"""
from __future__ import annotations

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value):
    """One cell: a string that a spreadsheet would run as a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns (object or string dtype) are passed through `csv_text`; numeric
    columns are untouched (a negative delta is a number, not a formula)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(csv_text)
    out.columns = [csv_text(c) if isinstance(c, str) else c for c in out.columns]
    return out
