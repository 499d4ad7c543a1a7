"""Metric families. Each family is a pair of pure functions:

* per image: label map(s) in, additive per-class counts or per-object rows out (numpy arrays);
* per dataset: summed counts / object rows in, metrics (percent) out.

Per-image outputs are stored as records (see `harness.run.records`), so every aggregate, slice and
bootstrap can be recomputed without the model. Count-based summaries accept arrays with leading
batch axes (`[..., C]`), which is how the report's bootstrap evaluates thousands of resamples at once.
"""
