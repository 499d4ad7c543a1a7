"""zeg-eval: where zero-shot segmenters fail, beyond one mIoU.

Data flows one way: dataset -> predictor -> per-image records -> aggregation -> report.
Scoring saved predictions imports neither torch nor mmseg; `harness.zegclip` and the runner's
model side import the heavy stack only when a model is run.
"""
__version__ = "0.1.0"  # the one version string: setup.cfg reads it (version = attr: harness.__version__)
