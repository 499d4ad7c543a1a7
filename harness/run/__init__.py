"""A run: models over a dataset into a run folder (records, resume, shards, manifest, summaries)."""
